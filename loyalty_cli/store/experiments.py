"""Experiments' rows (migration m011): each experiment as started and stopped, the ledger entries
earned under a variant, and what `report experiment` and `purchases explain` read.

Every row written here is chained (store.chain: kinds "experiments", "experiment_stops",
"variant_entries"), so `db check` replays them.
"""

from __future__ import annotations

from collections import namedtuple

from loyalty_cli.store import in_parts

Row = namedtuple("Row", "id name variant share starts_on stops_on started_at source")
COLUMNS = "id, name, variant, share, starts_on, stops_on, started_at, source"


def all_experiments(tx) -> list[Row]:
    """Every experiment, oldest start first."""
    return [Row(*r) for r in tx.execute(f"SELECT {COLUMNS} FROM experiments ORDER BY starts_on, id")]


def find(tx, name: str) -> Row | None:
    """The experiment with exactly this name, or None."""
    row = tx.execute(f"SELECT {COLUMNS} FROM experiments WHERE name = ?", (name,)).fetchone()
    return Row(*row) if row else None


def insert(tx, name: str, variant: str, share: str, starts_on: str, started_at: str, source: str) -> int:
    """Record a new experiment (its id: the next after the highest); returns the id."""
    (last,) = tx.execute("SELECT coalesce(max(id), 0) FROM experiments").fetchone()
    eid = last + 1
    tx.execute(f"INSERT INTO experiments ({COLUMNS}) VALUES (?,?,?,?,?,NULL,?,?)",
               (eid, name, variant, share, starts_on, started_at, source))
    tx.journal.add("experiments", (eid, name, variant, share, starts_on, started_at, source))
    return eid


def stop(tx, name: str, stops_on: str) -> None:
    """End the experiment's variant for sales dated from `stops_on` on (set once)."""
    tx.execute("UPDATE experiments SET stops_on = ? WHERE name = ?", (stops_on, name))
    tx.journal.add("experiment_stops", (name, stops_on))


def sales_from(tx, day: str) -> int:
    """How many sales and refunds are recorded dated `day` or later."""
    return tx.execute("SELECT count(*) FROM purchases WHERE purchased_at >= ?", (day,)).fetchone()[0]


def credits_from(tx, day: str) -> int:
    """How many signup and referral credits are recorded dated `day` or later (they may earn under a
    variant too)."""
    return tx.execute("SELECT count(*) FROM ledger WHERE at >= ? AND kind IN ('signup', 'referral')",
                      (day,)).fetchone()[0]


def write_marks(tx, marks: list[tuple[int, str]]) -> None:
    """Record [(ledger entry id, experiment name)]: entries earned under that experiment's variant."""
    tx.executemany("INSERT INTO variant_entries (id, experiment) VALUES (?,?)", marks)
    tx.journal.extend("variant_entries", [tuple(m) for m in marks])


def marks_of_member(tx, member_id: str) -> dict[int, str]:
    """{entry id: experiment} of the member's entries earned under a variant."""
    return dict(tx.execute("SELECT v.id, v.experiment FROM variant_entries v JOIN ledger e ON e.id = v.id "
                           "WHERE e.member_id = ?", (member_id,)).fetchall())


def marks_of(tx, entry_ids: list[int]) -> dict[int, str]:
    """{entry id: experiment} of those of `entry_ids` earned under a variant."""
    found = {}
    for part, marks in in_parts(entry_ids):
        found.update(tx.execute(f"SELECT id, experiment FROM variant_entries WHERE id IN ({marks})",
                                part).fetchall())
    return found


def marked_entries(tx) -> list[tuple]:
    """(entry id, experiment, member, at, kind) of every entry marked as earned under a variant (db check)."""
    return tx.execute("SELECT v.id, v.experiment, e.member_id, e.at, e.kind FROM variant_entries v "
                      "LEFT JOIN ledger e ON e.id = v.id ORDER BY v.id").fetchall()


def credits_between(tx, first: str, end: str) -> list[tuple]:
    """(entry id, member, at, kind, ref) of every signup, earn, bonus and referral credit dated from
    the day `first` up to the datetime `end` (db check: which of them a variant should have earned)."""
    return tx.execute("SELECT id, member_id, at, kind, ref FROM ledger WHERE at >= ? AND at <= ? "
                      "AND kind IN ('signup', 'earn', 'bonus', 'referral') ORDER BY id", (first, end)).fetchall()


# -- report experiment ----------------------------------------------------------------------
def members_joined_by(tx, end: str) -> list[tuple[str, str]]:
    """(member id, joined_on) of every member enrolled by the end of the window (erased ones too:
    their purchases still count, as in every report)."""
    return tx.execute("SELECT member_id, joined_on FROM members WHERE joined_on <= ? ORDER BY member_id",
                      (end[:10],)).fetchall()


def purchase_totals(tx, first: str, end: str) -> list[tuple]:
    """Per member, of the purchases dated from day `first` to datetime `end`: (member, sales, sales
    amount, refunds amount, distinct days with a sale)."""
    return tx.execute(
        "SELECT member_id, sum(CASE WHEN kind = 'sale' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN kind = 'sale' THEN amount ELSE 0 END), sum(CASE WHEN kind = 'refund' THEN amount ELSE 0 END), "
        "count(DISTINCT CASE WHEN kind = 'sale' THEN substr(purchased_at, 1, 10) END) "
        "FROM purchases WHERE purchased_at >= ? AND purchased_at <= ? GROUP BY member_id ORDER BY member_id",
        (first, end)).fetchall()


def points_totals(tx, first: str, end: str) -> list[tuple]:
    """Per member, the points the programme issued from day `first` to datetime `end` (signup, earn,
    bonus and referral credits, less the reversals of refunds): (member, points)."""
    return tx.execute(
        "SELECT member_id, sum(points) FROM ledger WHERE at >= ? AND at <= ? "
        "AND kind IN ('signup', 'earn', 'bonus', 'referral', 'reversal') GROUP BY member_id ORDER BY member_id",
        (first, end)).fetchall()


# -- purchases explain ----------------------------------------------------------------------
def purchase(tx, purchase_id: str):
    """(purchase_id, member_id, kind, amount, purchased_at, category, refund_of, points, basis_points,
    lot_id) of a purchase, or None."""
    return tx.execute("SELECT purchase_id, member_id, kind, amount, purchased_at, category, refund_of, points, "
                      "basis_points, lot_id FROM purchases WHERE purchase_id = ?", (purchase_id,)).fetchone()


def purchase_store(tx, purchase_id: str) -> str | None:
    """The branch a purchase was rung up at (None: none named)."""
    return tx.execute("SELECT store FROM purchases WHERE purchase_id = ?", (purchase_id,)).fetchone()[0]


def sale_entries(tx, member_id: str, purchase_id: str) -> list[tuple]:
    """(id, at, kind, points, ref, note) of the member's entries referring to the purchase (its earn
    and bonus entries, a referral it paid the referrer is the referrer's)."""
    return tx.execute("SELECT id, at, kind, points, ref, note FROM ledger WHERE ref = ? AND member_id = ? "
                      "ORDER BY id", (purchase_id, member_id)).fetchall()


def referral_entry(tx, purchase_id: str) -> tuple | None:
    """(id, member, points) of the referral bonus the purchase paid, or None."""
    return tx.execute("SELECT id, member_id, points FROM ledger WHERE ref = ? AND kind = 'referral'",
                      (purchase_id,)).fetchone()


def lots_of_sale(tx, purchase_id: str) -> list[tuple]:
    """(lot id, points, expires_on, available_on, remaining, origin, member_id) of the sale's lots: the
    one it created and any a cancelled voucher returned to it or a merge moved (to the member kept)."""
    return tx.execute("SELECT id, points, expires_on, available_on, remaining, origin, member_id FROM lots "
                      "WHERE id = (SELECT lot_id FROM purchases WHERE purchase_id = ?) "
                      "OR (purchase_id = ? AND origin IS NOT NULL) ORDER BY id", (purchase_id, purchase_id)).fetchall()


def refunds(tx, purchase_id: str) -> list[tuple]:
    """(refund id, at, amount, points reversed, member) of the sale's refunds, in date order; the member
    the points were reversed from (the member kept, for a refund after the sale's member was merged)."""
    return tx.execute("SELECT purchase_id, purchased_at, amount, points, member_id FROM purchases WHERE refund_of = ? "
                      "ORDER BY purchased_at, purchase_id", (purchase_id,)).fetchall()


def expired_from_lots(tx, lot_ids: list[int]) -> int:
    """Points of these lots written off by expire entries."""
    if not lot_ids:
        return 0
    return tx.execute(f"SELECT coalesce(sum(u.points), 0) FROM lot_uses u JOIN ledger e ON e.id = u.entry_id "
                      f"WHERE e.kind = 'expire' AND u.lot_id IN ({','.join('?' * len(lot_ids))})",
                      lot_ids).fetchone()[0]


def member_facts(tx, member_id: str) -> tuple | None:
    """(birthday, first_sale, joined_on, erased_at, tier) of a member, or None."""
    return tx.execute("SELECT birthday, first_sale, joined_on, erased_at, tier FROM members WHERE member_id = ?",
                      (member_id,)).fetchone()


def tier_changes_of(tx, member_id: str) -> list[tuple]:
    """(id, at, from_tier, to_tier, reason, ref) of the member's tier changes, in recorded order."""
    return tx.execute("SELECT id, at, from_tier, to_tier, reason, ref FROM tier_changes WHERE member_id = ? "
                      "ORDER BY id", (member_id,)).fetchall()


def versions(tx) -> list[tuple]:
    """(id, applies_from, source) of every programme version, in the order they apply."""
    return tx.execute("SELECT id, applies_from, source FROM program_versions ORDER BY applies_from, id").fetchall()
