"""The messages of the tool, for its translations: extract them from the source, read a .po.

    python tools/messages.py extract > build/loyalty.pot

(`make messages` runs it, then msgmerge and msgfmt.) Extraction reads the source with `ast`, so
it needs nothing installed and finds exactly what the tool translates at run time:

- the first argument of `_()`, `N_()` and `M_()` when it is a literal (loyalty_cli/i18n.py);
- the word of `plural(n, "word")` (render.plural translates it);
- the help of every command: its docstring, cleaned as Typer cleans it, up to its example
  block (i18n_click.help_text translates that part and keeps the example's commands).

tests/test_i18n.py uses the same functions to fail when a message has no translation and when
the compiled catalogue is stale.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "loyalty_cli"
PO = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES" / "loyalty.po"
MO = PO.with_suffix(".mo")
EXAMPLE = "\b\nExample"
MARKERS = {"_": 0, "N_": 0, "M_": 0, "plural": 1}


def _name(func) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_command(node) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr in ("command", "callback"):
            return True
    return False


def help_head(doc: str) -> str:
    """The translated part of a command's help: the text before its example block."""
    return doc.partition(EXAMPLE)[0].rstrip()


def extract(root: Path = PACKAGE) -> dict[str, list[str]]:
    """msgid → the places (path:line) it is used, for every message in the package."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(root.parent).as_posix()
        registered = {call.args[0].id for call in ast.walk(tree)  # `app.command("name")(function)`
                      if isinstance(call, ast.Call) and isinstance(call.func, ast.Call) and call.args
                      and isinstance(call.args[0], ast.Name) and _name(call.func.func) in ("command", "callback")}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in MARKERS:
                at = MARKERS[_name(node.func)]
                if len(node.args) > at and isinstance(node.args[at], ast.Constant) and isinstance(node.args[at].value, str):
                    if node.args[at].value:
                        found.setdefault(node.args[at].value, []).append(f"{where}:{node.lineno}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (_is_command(node) or node.name in registered):
                doc = ast.get_docstring(node)
                if doc and help_head(doc):
                    found.setdefault(help_head(doc), []).append(f"{where}:{node.lineno}")
    return found


def _quote(text: str) -> str:
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
               .replace("\b", "\\b").replace("\r", "\\r"))
    lines = escaped.split("\n")
    if len(lines) == 1:
        return f'"{escaped}"'
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def pot(found: dict[str, list[str]]) -> str:
    """A .pot template of `found`."""
    out = ['msgid ""', 'msgstr ""', '"Project-Id-Version: loyalty\\n"', '"MIME-Version: 1.0\\n"',
           '"Content-Type: text/plain; charset=UTF-8\\n"', '"Content-Transfer-Encoding: 8bit\\n"', ""]
    for msgid, places in found.items():
        out.append("#: " + " ".join(places[:4]))
        if "{" in msgid:
            out.append("#, python-brace-format")
        out.append(f"msgid {_quote(msgid)}")
        out.append('msgstr ""')
        out.append("")
    return "\n".join(out)


def _unquote(text: str) -> str:
    body = text.strip()[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "b": "\b", "r": "\r", '"': '"', "\\": "\\"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def read_po(path: Path = PO) -> dict[str, str]:
    """msgid → msgstr of a .po file (the header's empty msgid included); fuzzy entries and obsolete
    ones (`#~`) are left out, as msgfmt leaves them out of the compiled catalogue."""
    entries: dict[str, str] = {}
    msgid = msgstr = None
    field = None
    fuzzy = False

    def flush():
        if msgid is not None and msgstr is not None and not fuzzy:
            entries[msgid] = msgstr

    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            flush()
            msgid = msgstr = field = None
            fuzzy = False
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid "):
            msgid, field = _unquote(line[6:]), "msgid"
        elif line.startswith("msgstr "):
            msgstr, field = _unquote(line[7:]), "msgstr"
        elif line.startswith('"'):
            if field == "msgid":
                msgid += _unquote(line)
            elif field == "msgstr":
                msgstr += _unquote(line)
    return entries


if __name__ == "__main__":
    if sys.argv[1:] == ["extract"]:
        sys.stdout.write(pot(extract()))
    else:
        sys.exit("usage: python tools/messages.py extract > build/loyalty.pot")
