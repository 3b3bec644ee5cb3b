"""Programme versions (one row per loaded version, the rules as JSON) and the database's settings."""

from __future__ import annotations

from collections import namedtuple

Version = namedtuple("Version", "id applies_from loaded_at source")


def rules_by_date(tx) -> list[tuple[str, str]]:
    """(applies_from, rules JSON) of every version, in the order they apply (later loads win on a date)."""
    return tx.execute("SELECT applies_from, rules FROM program_versions ORDER BY applies_from, id").fetchall()


def versions(tx) -> list[Version]:
    """Every stored version, without its rules, in the order they apply."""
    return [Version(*r) for r in tx.execute(
        "SELECT id, applies_from, loaded_at, source FROM program_versions ORDER BY applies_from, id")]


def has_versions(tx) -> bool:
    """Whether any version was loaded."""
    return tx.execute("SELECT 1 FROM program_versions LIMIT 1").fetchone() is not None


def has_purchases(tx) -> bool:
    """Whether any sale or refund is recorded (money amounts then exist in some currency)."""
    return tx.execute("SELECT 1 FROM purchases LIMIT 1").fetchone() is not None


def insert(tx, applies_from: str, rules_json: str, loaded_at: str, source: str) -> None:
    """Store one version."""
    tx.execute("INSERT INTO program_versions (applies_from, rules, loaded_at, source) VALUES (?,?,?,?)",
               (applies_from, rules_json, loaded_at, source))
    tx.journal.add("program_versions", (applies_from, rules_json, loaded_at, source))


def setting(tx, key: str) -> str | None:
    """A database setting's value, or None."""
    row = tx.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_once(tx, key: str, value: str) -> None:
    """Set a setting unless it has a value already (the first one stays)."""
    # Not ON CONFLICT DO NOTHING: the trigger refusing REPLACE (m007) refuses any insert of a key it has.
    if tx.execute("INSERT INTO settings (key, value) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM settings WHERE key = ?)",
                  (key, value, key)).rowcount:
        tx.journal.add("settings", (key, value))
