"""The programme: its stored versions, which one is in force on a date, loading a TOML file,
setting one key, showing what applies.

`load_programme` is the one place the versions are read and validated: every command that
needs the rules (the ledger's unit of work, tiers, reports) gets its `rules.Programme` here.
"""

from __future__ import annotations

import json

from loyalty_cli import rules as rules_mod
from loyalty_cli import values
from loyalty_cli.errors import InputFileError, UsageError
from loyalty_cli.store import programme as programme_rows
from loyalty_cli.i18n import _, display, message_of, worded


def load_programme(tx) -> rules_mod.Programme:
    """Every stored version, validated, as one Programme (the defaults when none is loaded)."""
    return rules_mod.Programme([(applies_from, rules_mod.validate(json.loads(doc), stored=True))
                                for applies_from, doc in programme_rows.rules_by_date(tx)])


def _store_version(store, doc: dict, applies_from: str | None, today: str, loaded_at: str, source: str,
                   refused=InputFileError) -> dict:
    """Store a new version; `refused`: the error for rules that cannot be stored (a file's, or an option's)."""
    try:
        rules = rules_mod.validate(doc)
    except rules_mod.RulesError as exc:
        raise refused(worded(f"{source}: {exc}", _("{option}: {message}").format(option=source, message=display(exc)))) from None
    with store.write() as tx:
        first = not programme_rows.has_versions(tx)
        _check_decimals(tx, rules, source, first, refused)
        programme_rows.set_once(tx, "currency_decimals", str(rules.currency_decimals))
        start = applies_from or (values.EARLIEST if first else today)
        programme_rows.insert(tx, start, rules.to_json(), loaded_at, source)
    return {"applies_from": start, "source": source, "first": first}


def _check_decimals(tx, rules: rules_mod.Rules, source: str, first: bool, refused=InputFileError) -> None:
    """currency_decimals is fixed once the database has a programme or a purchase: rules in another
    currency are refused (`refused`: the error's class)."""
    fixed = programme_rows.setting(tx, "currency_decimals")
    if fixed is None and (not first or programme_rows.has_purchases(tx)):
        fixed = str(load_programme(tx).currency_decimals)
    if fixed is not None and int(fixed) != rules.currency_decimals:
        raise refused(_("{source}: currency_decimals is fixed at {fixed} for this database (it was set when the "
                        "database started), got {currency_decimals}").format(source=source, fixed=fixed,
                                                                             currency_decimals=rules.currency_decimals))


def load(store, text: str, source: str, applies_from: str | None, today: str, now: str | None = None) -> dict:
    """`program load FILE.toml`: a new version from `applies_from` (first: the beginning; later: today).
    `now`: when it was loaded, as the version list shows it (the caller's clock; default: `today`)."""
    try:
        doc = rules_mod.parse_toml(text, source)
    except rules_mod.RulesError as exc:
        raise InputFileError(message_of(exc)) from None
    return _store_version(store, doc, applies_from, today, now or today, source)


def set_key(store, key: str, raw: str, applies_from: str | None, today: str, now: str | None = None) -> dict:
    """`program set KEY VALUE`: the version in force on the date, with one key changed, as a new version
    (`now` as for `load`)."""
    with store.read() as tx:
        programme = load_programme(tx)
        first = not programme.versions
    date = applies_from or (values.EARLIEST if first else today)
    base = programme.for_date(date).doc
    try:
        doc = rules_mod.set_key(base, key, raw)
        rules_mod.validate(doc)
    except rules_mod.RulesError as exc:
        raise UsageError(message_of(exc)) from None
    return _store_version(store, doc, date, today, now or today, f"set {key}", refused=UsageError)


def show(store, as_of: str) -> tuple[dict, list[dict]]:
    """The rules document in force on a date, and every stored version."""
    with store.read() as tx:
        programme = load_programme(tx)
        versions = [v._asdict() for v in programme_rows.versions(tx)]
    return programme.for_date(as_of).doc, versions


def currency_decimals(store) -> int:
    """How many decimals money has in this database (fixed when it started)."""
    with store.read() as tx:
        return load_programme(tx).currency_decimals


def check_file(store, text: str, source: str) -> rules_mod.Rules:
    """What `load` checks of a programme file, storing nothing (the proposal of `program simulate`):
    the same errors word for word (InputFileError, exit 3). Returns the validated rules."""
    try:
        doc = rules_mod.parse_toml(text, source)
    except rules_mod.RulesError as exc:
        raise InputFileError(str(exc)) from None
    try:
        rules = rules_mod.validate(doc)
    except rules_mod.RulesError as exc:
        raise InputFileError(f"{source}: {exc}") from None
    with store.read() as tx:
        _check_decimals(tx, rules, source, not programme_rows.has_versions(tx))
    return rules
