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
        about = _("versions: ") + "; ".join(_("#{id} from {day} ({source})").format(id=v['id'], day=v['applies_from'], source=v['source']) for v in versions)
    else:
        about = _("no programme loaded yet: these are the defaults (load one with: loyalty program load FILE.toml)")
    sys.stdout.write(_("# rules in force on {date}\n# {about}\n").format(date=date, about=about) + rules.to_toml(doc))


def programme_text(file: Path) -> str:
    """A programme file's text (`load`, and the proposal of `simulate`): UTF-8 and not empty, else
    a bad input file (exit 3)."""
    from loyalty_cli.errors import InputFileError

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(M_("{file}: is not UTF-8 text", file=file)) from None
    if not text.strip():  # /dev/null, an empty file: not a programme that resets every rule to its default
        raise InputFileError(M_("{file} is empty: no programme rules in it (a programme file is TOML, like "
                                "sample_data/program.toml)", file=file))
    return text


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
    text = programme_text(file)
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


# `program simulate` lives in its own module (cli/simulate.py), a command of this group.
from loyalty_cli.cli.simulate import simulate as _simulate  # noqa: E402

app.command("simulate")(_simulate)


# -- experiments (issue 19) -------------------------------------------------------------------
experiment_app = group(N_("A/B experiments: a share of members earns under a variant of the programme."),
                       "loyalty program experiment start dbl v.toml --share 0.5 --from 2027-01-04")
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("start")
def experiment_start(
    name: str = typer.Argument(..., help=N_("The experiment's name (it decides the groups: never reused).")),
    file: Path = typer.Argument(..., metavar="VARIANT.toml",
                                help=N_("Programme keys the variant changes (the earn table, campaigns), merged over "
                                        "the programme in force.")),
    share: str = typer.Option(..., "--share", help=N_("Share of members in the variant group, between 0 and 1 (0.5: half).")),
    from_: str = typer.Option(None, "--from", help=N_("First day sales earn under the variant: today or later "
                                                      "(default: today).")),
):
    """Start an experiment: from --from, a fixed share of members earn under the variant.

    Members are assigned by a hash of the experiment's name and their id, so a member is
    always in the same group, members who join later included. Everyone else earns under
    the programme as it is. Points already awarded never change: --from may not be before
    today, nor a day with sales already recorded. One experiment at a time.

    \b
    Example (v.toml holds two lines:  [earn]  and  points_per_unit = "2"):
      loyalty program experiment start dbl v.toml --share 0.5 --from 2027-01-04
    """
    from loyalty_cli import experiments
    from loyalty_cli.cli.common import today

    start = date_option(from_, "--from") or today()  # the options first: a bad one is a usage error (exit 2)
    experiments.parse_share(share)
    file = existing_file(file, _("variant file"))
    text = programme_text(file)
    r = call(experiments.start, name, text, file.name, share, start, today(), now())
    out(lists=False).done(_("experiment {name} starts on {day}: {share} of members earn under {file}").format(
        name=r['name'], day=r['from'], share=_percent(r['share']), file=file.name), r)


def _percent(share: str) -> str:
    from decimal import Decimal

    return f"{(Decimal(share) * 100).normalize():f}%"


@experiment_app.command("stop")
def experiment_stop(
    name: str = typer.Argument(..., help=N_("The experiment's name.")),
    at: str = typer.Option(None, "--at", help=N_("First day sales earn under the programme again: today or later "
                                                "(default: today).")),
):
    """Stop an experiment: sales dated --at or later earn under the programme again.

    \b
    Example:
      loyalty program experiment stop dbl --at 2027-03-01
    """
    from loyalty_cli import experiments
    from loyalty_cli.cli.common import today

    day = date_option(at, "--at") or today()
    r = call(experiments.stop, name, day, today())
    out(lists=False).done(_("experiment {name} stops on {day}: sales from then on earn under the programme").format(
        name=r['name'], day=r['stopped_from']), r)


@experiment_app.command("list")
def experiment_list():
    """Every experiment: its share, dates and variant.

    \b
    Example:
      loyalty program experiment list --json
    """
    import json

    from loyalty_cli import experiments

    rows = call(experiments.listing)
    o = out()
    running = "running" if o.csv else _("running")  # CSV stays English
    shown = [dict(r, until=r["stopped_from"] or running, variant=json.dumps(r["variant"], ensure_ascii=False,
                                                                               separators=(",", ":")))
             for r in rows]
    o.table(shown, [("name", N_("experiment")), ("share", N_("share")), ("from", N_("starts")), ("until", N_("stopped from")),
                    ("source", N_("file")), ("variant", N_("variant"))],
            title=_("experiments"), empty=N_("no experiments yet (start one with: loyalty program experiment start)"),
            json_obj=rows)
