"""Programme versions in the database: load a TOML file, set one key, show what applies."""

from __future__ import annotations

import datetime as dt

from loyalty_cli import rules as rules_mod
from loyalty_cli import values
from loyalty_cli.errors import InputFileError
from loyalty_cli.ledger import load_programme


def _store_version(store, doc: dict, applies_from: str | None, today: str, source: str,
                   refused=InputFileError) -> dict:
    """Store a new version; `refused`: the error for rules that cannot be stored (a file's, or an option's)."""
    try:
        rules = rules_mod.validate(doc)
    except rules_mod.RulesError as exc:
        raise refused(f"{source}: {exc}") from None
    with store.write() as conn:
        first = conn.execute("SELECT count(*) FROM program_versions").fetchone()[0] == 0
        fixed = conn.execute("SELECT value FROM settings WHERE key = 'currency_decimals'").fetchone()
        if fixed is None and (not first or conn.execute("SELECT 1 FROM purchases LIMIT 1").fetchone()):
            fixed = (str(load_programme(conn).currency_decimals),)
        if fixed is not None and int(fixed[0]) != rules.currency_decimals:
            raise refused(f"{source}: currency_decimals is fixed at {fixed[0]} for this database "
                                 f"(it was set when the database started), got {rules.currency_decimals}")
        conn.execute("INSERT INTO settings (key, value) VALUES ('currency_decimals', ?) ON CONFLICT(key) DO NOTHING",
                     (str(rules.currency_decimals),))
        start = applies_from or (values.BEGINNING if first else today)
        conn.execute("INSERT INTO program_versions (applies_from, rules, loaded_at, source) VALUES (?,?,?,?)",
                     (start, rules.to_json(), dt.datetime.now().isoformat(timespec="seconds"), source))
    return {"applies_from": start, "source": source, "first": first}


def load(store, text: str, source: str, applies_from: str | None, today: str) -> dict:
    """`program load FILE.toml`: a new version from `applies_from` (first: the beginning; later: today)."""
    try:
        doc = rules_mod.parse_toml(text, source)
    except rules_mod.RulesError as exc:
        raise InputFileError(str(exc)) from None
    return _store_version(store, doc, applies_from, today, source)


def set_key(store, key: str, raw: str, applies_from: str | None, today: str) -> dict:
    """`program set KEY VALUE`: the version in force on the date, with one key changed, as a new version."""
    from loyalty_cli.errors import UsageError

    with store.read() as conn:
        programme = load_programme(conn)
        first = not programme.versions
    date = applies_from or (values.BEGINNING if first else today)
    base = programme.for_date(date).doc
    try:
        doc = rules_mod.set_key(base, key, raw)
        rules_mod.validate(doc)
    except rules_mod.RulesError as exc:
        raise UsageError(str(exc)) from None
    return _store_version(store, doc, date, today, f"set {key}", refused=UsageError)


def show(store, as_of: str) -> tuple[dict, list[dict]]:
    """The rules document in force on a date, and every stored version."""
    with store.read() as conn:
        programme = load_programme(conn)
        versions = [{"id": r[0], "applies_from": r[1], "loaded_at": r[2], "source": r[3]}
                    for r in conn.execute("SELECT id, applies_from, loaded_at, source FROM program_versions ORDER BY applies_from, id")]
    return programme.for_date(as_of).doc, versions


def current_rules(store, date: str):
    with store.read() as conn:
        return load_programme(conn).for_date(date)


def currency_decimals(store) -> int:
    """How many decimals money has in this database (fixed when it started)."""
    with store.read() as conn:
        return load_programme(conn).currency_decimals
