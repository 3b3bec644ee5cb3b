"""Tier rows: members' qualifying purchases, the recalc's queries and writes, manual tiers, tier history."""

from __future__ import annotations

# A member counts as one on a date once they joined by it, or bought by its end: purchases may be
# recorded with dates before the member's `joined_on` (a till's history imported after the members,
# who then joined "today"). A member merged into another by then (members merge) is an alias, not a
# member: not counted. Parameters :as_of (a date) and :end (its last second).
MEMBER_BY = ("(m.joined_on <= :as_of OR EXISTS (SELECT 1 FROM member_totals t "
             "WHERE t.member_id = m.member_id AND t.first_purchase_at <= :end)) "
             "AND NOT EXISTS (SELECT 1 FROM member_merges x WHERE x.member_id = m.member_id AND x.at <= :end)")

INSERT_CHANGE = ("INSERT INTO tier_changes (member_id, at, from_tier, to_tier, reason, until, by, ref) "
                 "VALUES (?,?,?,?,?,?,?,?)")
SET_RECALCULATED = ("UPDATE members SET tier = ?, tier_since = coalesce(?, tier_since), "
                    "floor_tier = CASE WHEN ? THEN floor_tier END, floor_until = CASE WHEN ? THEN floor_until END "
                    "WHERE member_id = ?")


def _column(basis: str) -> str:
    """The purchases column a tier basis counts: the amount (spend) or the points earned without tier bonuses."""
    return "amount" if basis == "spend" else "basis_points"


def purchases_of(tx, member_ids: list[str]) -> list[tuple]:
    """(member_id, purchased_at, kind, amount, basis_points) of the members' purchases (at most 500
    members a call), in member then date order."""
    return tx.execute(
        f"SELECT member_id, purchased_at, kind, amount, basis_points FROM purchases WHERE member_id IN "
        f"({','.join('?' * len(member_ids))}) ORDER BY member_id, purchased_at", member_ids).fetchall()


def candidates(tx, basis: str, first: str | None, last_end: str, joined_by: str,
               higher: list[tuple[int, str]], lowest: str) -> list[tuple]:
    """Members joined by `joined_by` (not merged into another: an alias's tier is left as it was) not
    holding the level their value in the window [first, last_end] reaches (`higher`: (min, name) of the levels above `lowest`, highest first), or holding a floor.

    One statement: every member's qualifying value (grouped over the covering purchases index, in
    member order) and the level it reaches, compared with the tier held, so Python only sees the
    few members who may move. Rows: (member_id, tier, tier_since, floor_tier, floor_until, qualified)."""
    column = _column(basis)
    level = ("CASE " + " ".join("WHEN coalesce(q.v, 0) >= ? THEN ?" for __ in higher) + " ELSE ? END") if higher else "?"
    sql = f"""
        WITH q AS (SELECT member_id, sum(CASE kind WHEN 'sale' THEN {column} ELSE -{column} END) AS v
                   FROM purchases WHERE purchased_at <= ? {"AND purchased_at >= ?" if first else ""} GROUP BY member_id)
        SELECT member_id, tier, tier_since, floor_tier, floor_until, qualified FROM (
            SELECT m.member_id, m.tier, m.tier_since, m.floor_tier, m.floor_until, {level} AS qualified
            FROM members m LEFT JOIN q ON q.member_id = m.member_id WHERE m.joined_on <= ?
            AND m.merged_into IS NULL) AS c
        WHERE qualified != tier OR floor_tier IS NOT NULL"""
    params = [last_end] + ([first] if first else [])
    for minimum, name in higher:
        params += [minimum, name]
    params += [lowest, joined_by]
    return tx.execute(sql, params).fetchall()


def values_since_upgrade(tx, basis: str, windows: list[tuple[str, str, str]], end: str) -> dict[str, int]:
    """For each (member_id, first, last_end) window: the member's value in it (sales and refunds each on
    its own date), less the refunds dated after it up to `end` of sales in it (SPEC §6: the hold does
    not protect an upgrade that refunds have undone)."""
    column = _column(basis)
    tx.execute("CREATE TEMP TABLE IF NOT EXISTS recalc_candidates (member_id TEXT PRIMARY KEY, first TEXT, last TEXT)")
    tx.execute("DELETE FROM recalc_candidates")
    tx.executemany("INSERT INTO recalc_candidates VALUES (?,?,?)", windows)
    result = dict(tx.execute(
        f"""SELECT c.member_id,
                   coalesce((SELECT sum(CASE p.kind WHEN 'sale' THEN p.{column} ELSE -p.{column} END) FROM purchases p
                             WHERE p.member_id = c.member_id AND p.purchased_at >= c.first AND p.purchased_at <= c.last), 0)
                 - coalesce((SELECT sum(r.{column}) FROM purchases r JOIN purchases s ON s.purchase_id = r.refund_of
                             WHERE r.member_id = c.member_id AND r.kind = 'refund' AND r.purchased_at > c.last
                             AND r.purchased_at <= ? AND s.purchased_at >= c.first AND s.purchased_at <= c.last), 0)
            FROM recalc_candidates c""", (end,)).fetchall())
    tx.execute("DELETE FROM recalc_candidates")
    return result


def latest_recalc(tx) -> str | None:
    """The as-of date of the latest recalc run, or None."""
    return tx.execute("SELECT max(as_of) FROM recalc_runs").fetchone()[0]


def members_joined_by(tx, day: str) -> int:
    """How many members joined on or before the day (members merged into another left out: a recalc
    never judges an alias)."""
    return tx.execute("SELECT count(*) FROM members WHERE joined_on <= ? AND merged_into IS NULL", (day,)).fetchone()[0]


def manually_set(tx) -> set[str]:
    """Members whose latest tier change was a manual `tiers set`."""
    return {r[0] for r in tx.execute(
        "SELECT member_id FROM tier_changes t WHERE reason = 'manual' "
        "AND id = (SELECT max(id) FROM tier_changes WHERE member_id = t.member_id)")}


def record_recalc(tx, changes: list[tuple], members: list[tuple], as_of: str, ran_at: str,
                  upgraded: int, downgraded: int) -> None:
    """Write a recalc: its tier changes (tier_changes rows), every planned member's
    (tier, since or None to keep it, floor kept, member_id), and the run itself."""
    tx.executemany(INSERT_CHANGE, changes)
    tx.executemany(SET_RECALCULATED, [(t, s, f, f, m) for t, s, f, m in members])
    tx.execute("INSERT INTO recalc_runs (as_of, ran_at, upgraded, downgraded) VALUES (?, ?, ?, ?)",
               (as_of, ran_at, upgraded, downgraded))
    tx.journal.extend("tier_changes", changes)
    tx.journal.add("recalc_runs", (as_of, ran_at, upgraded, downgraded))


def discard(tx) -> None:
    """Undo everything the write transaction did so far and go on in a fresh one (a dry run)."""
    tx.execute("ROLLBACK")
    tx.journal.abandon()
    tx.execute("BEGIN")


def set_manual(tx, member_id: str, at: str, from_tier: str, to_tier: str, until: str | None, by: str) -> None:
    """A manual tier from `at`, held as a floor through `until` (None: no floor)."""
    tx.execute("INSERT INTO tier_changes (member_id, at, from_tier, to_tier, reason, until, by) VALUES (?,?,?,?,?,?,?)",
               (member_id, at, from_tier, to_tier, "manual", until, by))
    tx.journal.add("tier_changes", (member_id, at, from_tier, to_tier, "manual", until, by, None))
    tx.execute("UPDATE members SET tier = ?, tier_since = ?, floor_tier = ?, floor_until = ? WHERE member_id = ?",
               (to_tier, at[:10], to_tier if until else None, until, member_id))


def held_counts(tx, as_of: str, end: str) -> list[tuple[str, int]]:
    """(tier, members) of the members by the date (MEMBER_BY), by the tier they held at `end` (its
    last second): the last change recorded among those dated up to it."""
    params = {"end": end, "as_of": as_of[:10]}
    if not tx.execute("SELECT 1 FROM tier_changes WHERE at > ? LIMIT 1", (end,)).fetchone():
        # No change after the date: every member holds then the tier they hold now.
        return tx.execute(f"SELECT tier, count(*) FROM members m WHERE {MEMBER_BY} GROUP BY tier", params).fetchall()
    return tx.execute(
        """SELECT coalesce(
                    (SELECT t.to_tier FROM tier_changes t WHERE t.member_id = m.member_id AND t.at <= :end
                     ORDER BY t.id DESC LIMIT 1),
                    (SELECT t.from_tier FROM tier_changes t WHERE t.member_id = m.member_id ORDER BY t.id LIMIT 1),
                    m.tier) AS held, count(*)
           FROM members m WHERE """ + MEMBER_BY + """ GROUP BY held""", params).fetchall()


def last_change_by(tx, member_id: str, end: str) -> tuple[str, str] | None:
    """(to_tier, at) of the member's last change recorded among those dated up to `end`, or None."""
    return tx.execute("SELECT to_tier, at FROM tier_changes WHERE member_id = ? AND at <= ? ORDER BY id DESC "
                      "LIMIT 1", (member_id, end)).fetchone()


def first_from_tier(tx, member_id: str) -> str | None:
    """The tier the member's first recorded change moved them from, or None (no change, or none recorded)."""
    row = tx.execute("SELECT from_tier FROM tier_changes WHERE member_id = ? ORDER BY id LIMIT 1", (member_id,)).fetchone()
    return row[0] if row else None


def history(tx, member_id: str) -> list[tuple]:
    """(at, from, to, reason, until, by, ref) of the member's tier changes, by date then as recorded."""
    return tx.execute("SELECT at, from_tier, to_tier, reason, until, by, ref FROM tier_changes "
                      "WHERE member_id = ? ORDER BY at, id", (member_id,)).fetchall()
