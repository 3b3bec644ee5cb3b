"""`loyalty program …`: the programme rules, versioned by the date they apply from."""

from __future__ import annotations

from pathlib import Path

import typer

from loyalty_cli.cli.common import call, group, as_of_option, date_option, existing_file, now, out
from loyalty_cli.i18n import M_, N_, _

app = group(N_("Programme rules: earning, expiry, tiers, transfers."), 'loyalty program load sample_data/program.toml')


@app.command("show")
def show(as_of: str = typer.Option(None, "--as-of", help=N_("The rules in force on this date (default: today)."))):
    """Print the rules in force (as TOML) and the stored versions.

    \b
    Example:
      loyalty program show --as-of 2025-12-06
    """
    from loyalty_cli import program, rules

    date = as_of_option(as_of)
    doc, versions = call(program.show, date)
    o = out(lists=False)
    if o.json:
        o.json_doc({"as_of": date, "rules": doc, "versions": versions})
        return
    if o.quiet:
        return
    import sys

    # The versions as TOML comments: on stdout with the rules, which `> program.toml` keeps loadable.
    if versions:
        about = _("versions: ") + "; ".join(f"#{v['id']} from {v['applies_from']} ({v['source']})" for v in versions)
    else:
        about = _("no programme loaded yet: these are the defaults (load one with: loyalty program load FILE.toml)")
    sys.stdout.write(_("# rules in force on {date}\n# {about}\n").format(date=date, about=about) + rules.to_toml(doc))


@app.command("load")
def load(
    file: Path = typer.Argument(..., help=N_("A programme TOML file.")),
    from_: str = typer.Option(None, "--from", help=N_("Date it applies from (first version: the beginning; later: today).")),
):
    """Load a programme file as a new version of the rules.

    Points already awarded never change; purchases earn under the version in force
    on their date.

    \b
    Example:
      loyalty program load sample_data/program.toml
      loyalty program load christmas.toml --from 2026-12-01
    """
    from loyalty_cli import program

    file = existing_file(file, _("programme file"))
    start = date_option(from_, "--from")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        from loyalty_cli.errors import InputFileError

        raise InputFileError(M_("{file}: is not UTF-8 text", file=file)) from None
    if not text.strip():  # /dev/null, an empty file: not a programme that resets every rule to its default
        from loyalty_cli.errors import InputFileError

        raise InputFileError(M_("{file} is empty: no programme rules in it (a programme file is TOML, like sample_data/program.toml)", file=file))
    moment = now()
    r = call(program.load, text, file.name, start, moment[:10], moment)
    out(lists=False).done(_("loaded {name}, in force from {applies_from}").format(name=file.name, applies_from=r['applies_from']), r)


@app.command("set")
def set_(
    key: str = typer.Argument(..., help=N_("A dotted key, e.g. earn.points_per_unit")),
    value: str = typer.Argument(..., help=N_("The new value, e.g. 2 or \"1.5\"")),
    from_: str = typer.Option(None, "--from", help=N_("Date it applies from (default: today).")),
):
    """Change one rule, as a new version of the programme.

    \b
    Example:
      loyalty program set earn.signup_bonus 100 --from 2026-12-01
      loyalty program set earn.pending_days 14   # points spendable 14 days after
    """
    from loyalty_cli import program

    start = date_option(from_, "--from")
    moment = now()
    r = call(program.set_key, key, value, start, moment[:10], moment)
    out(lists=False).done(_("{key} = {value}, in force from {applies_from}").format(key=key, value=value, applies_from=r['applies_from']), r)
