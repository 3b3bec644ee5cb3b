"""The README's first session, run end to end: what it shows is what the tool prints.

The session is the first ```console block under "## A first session". Every `$ `
line is run in a fresh folder holding `sample_data/` (standard output and error
together, as a terminal shows them, piped so plain text), and the lines after it
up to the next `$ ` must be exactly its output. `echo $?` prints the exit code of
the command before. The session's folder is shown as `/home/ana/shop` (where `init`
prints the database's absolute path). Every date the session depends on is pinned in the README
itself (`--as-of`, `--at`), so this test cannot drift with the calendar: when it
fails, either the tool or the README is wrong, and the README is what a new shop
owner reads first.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP_FOLDER = "/home/ana/shop"  # the session's folder, as the README shows it


def first_session(readme: str, heading: str = "## A first session") -> list[tuple[str, list[str]]]:
    """(command line, expected output lines) for each `$ ` line of the first session (or of the
    first ```console block under another heading)."""
    section = readme.split(heading, 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def run_session(steps, workdir: Path, home: Path, **environ: str) -> list[tuple[str, list[str], list[str]]]:
    """Run each step in `workdir` (shown as /home/ana/shop) with HOME `home` (/home/ana, where the
    chain key is made) and the `environ` given; (command, expected, actual) for every step."""
    env = dict(os.environ)
    for name in ("LOYALTY_DB", "LOYALTY_LANG", "NO_COLOR", "COLUMNS", "XDG_CONFIG_HOME", "LANG", "LC_ALL",
                 "LC_MESSAGES"):
        env.pop(name, None)
    env.update(environ)
    env["HOME"] = str(home)
    env["LOYALTY_OPERATOR"] = "readme"
    results = []
    last_code = 0
    for command, expected in steps:
        words = shlex.split(command, comments=True)
        if words == ["echo", "$?"]:
            actual = [str(last_code)]
        else:
            assert words[0] == "loyalty", f"the first session runs only loyalty commands: {command}"
            proc = subprocess.run([sys.executable, "-m", "loyalty_cli", *words[1:]], cwd=workdir, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
            text = proc.stdout.replace(str(workdir.resolve()), SHOP_FOLDER).replace(str(home.resolve()), "/home/ana")
            actual = [line.rstrip() for line in text.splitlines()]  # trailing blanks are invisible
            last_code = proc.returncode
        results.append((command, expected, actual))
    return results


def test_the_first_session_prints_what_the_readme_shows(tmp_path):
    steps = first_session((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(steps) >= 8, "the first session is the README's worked example; it should not shrink to nothing"
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "sample_data").symlink_to(ROOT / "sample_data")
    for command, expected, actual in run_session(steps, shop, tmp_path):
        assert actual == expected, f"README step `$ {command}` printed:\n" + "\n".join(actual)


def test_the_chinese_first_session_prints_what_the_readme_shows(tmp_path):
    """The README's Chinese section: the same first steps with LANG=zh_CN.UTF-8 print Chinese."""
    steps = first_session((ROOT / "README.md").read_text(encoding="utf-8"), "## 中文界面")
    assert len(steps) >= 6
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "sample_data").symlink_to(ROOT / "sample_data")
    for command, expected, actual in run_session(steps, shop, tmp_path, LANG="zh_CN.UTF-8"):
        assert actual == expected, f"README step `$ {command}` printed:\n" + "\n".join(actual)


def test_the_session_parser_reads_commands_and_their_output():
    text = ("## A first session\n\n```console\n$ loyalty init --db a.db   # note\nready\n"
            "$ echo $?\n0\n```\n")
    assert first_session(text) == [("loyalty init --db a.db   # note", ["ready"]), ("echo $?", ["0"])]
