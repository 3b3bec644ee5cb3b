"""`db check`: every invariant of SPEC §7 as a function returning problems (beancount style).

Checks never raise on bad data; each returns a list of `Problem`s naming the
check, the member where there is one, and what was expected against what was
found, so one run reports everything.
"""

from __future__ import annotations

from loyalty_cli.errors import Problem
from loyalty_cli.ledger import GENESIS, entry_hash
from loyalty_cli.store.migrations import SUMMARY_TABLES

LIMIT = 100  # problems reported per check, so a wrecked file does not flood the terminal


def check_sqlite(conn) -> list[Problem]:
    """SQLite's own integrity_check and foreign_key_check."""
    problems = []
    for (msg,) in conn.execute("PRAGMA integrity_check"):
        if msg != "ok":
            problems.append(Problem(f"integrity_check: {msg}", check="sqlite"))
    for table, rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check").fetchmany(LIMIT):
        problems.append(Problem(f"foreign_key_check: {table} row {rowid} refers to a missing {parent}", check="sqlite"))
    return problems


def check_append_only(conn) -> list[Problem]:
    """The triggers that refuse UPDATE, DELETE and REPLACE on the ledger are in place (those of
    m003 and m004 once they have run: a backup made before them gets them when restored)."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    wanted = ["ledger_no_update", "ledger_no_delete", "lot_uses_no_update", "lot_uses_no_delete"]
    ran = {name for (name,) in conn.execute("SELECT name FROM migrations")}
    wanted += [trigger for migration, trigger in (("m003_no_replace", "ledger_no_replace"),
                                                  ("m004_lot_uses_no_replace", "lot_uses_no_replace"))
               if migration in ran]
    return [Problem(f"trigger {name} is missing: the ledger is not protected against edits", check="append_only")
            for name in wanted if name not in have]


def check_hash_chain(conn) -> list[Problem]:
    """Recompute every entry's hash from the previous one: an edit behind the tool's back breaks the chain."""
    problems = []
    prev = GENESIS
    expected_id = None
    for eid, member_id, at, kind, points, ref, note, by, h in conn.execute(
            "SELECT id, member_id, at, kind, points, ref, note, by, hash FROM ledger ORDER BY id"):
        if entry_hash(prev, eid, member_id, at, kind, points, ref, note, by) != h:
            problems.append(Problem(f"entry {eid}: hash does not match its contents and the previous entry "
                                    "(edited or removed behind the tool's back)", check="hash_chain", member_id=member_id))
            if len(problems) >= LIMIT:
                break
        if expected_id is not None and eid != expected_id:
            problems.append(Problem(f"entries {expected_id}..{eid - 1} are missing", check="hash_chain"))
        expected_id = eid + 1
        prev = h
    return problems


def check_balances(conn) -> list[Problem]:
    """Every member's cached balance equals the sum of their entries."""
    rows = conn.execute(
        """SELECT m.member_id, m.balance, coalesce(l.total, 0) FROM members m
           LEFT JOIN (SELECT member_id, sum(points) AS total FROM ledger GROUP BY member_id) l USING (member_id)
           WHERE m.balance != coalesce(l.total, 0) LIMIT ?""", (LIMIT,)).fetchall()
    return [Problem(f"balance shown is {shown} but the entries add up to {total}", check="balance", member_id=mid)
            for mid, shown, total in rows]


def check_lots(conn) -> list[Problem]:
    """Lots are never consumed beyond their size, and open lots minus any hole equal the balance."""
    problems = [
        Problem(f"lot {lot_id}: remaining {remaining} but size {size} minus uses {used} is {size - used}",
                check="lots", member_id=mid)
        for lot_id, mid, size, remaining, used in conn.execute(
            """SELECT l.id, l.member_id, l.points, l.remaining, coalesce(u.used, 0) FROM lots l
               LEFT JOIN (SELECT lot_id, sum(points) AS used FROM lot_uses GROUP BY lot_id) u ON u.lot_id = l.id
               WHERE l.remaining != l.points - coalesce(u.used, 0) OR coalesce(u.used, 0) > l.points LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"open lots hold {open_} points and the hole is {hole}, but the balance is {bal}", check="lots", member_id=mid)
        for mid, bal, open_, hole in conn.execute(
            """SELECT m.member_id, t.total, coalesce(o.open, 0), max(-t.total, 0) FROM members m
               JOIN (SELECT member_id, sum(points) AS total FROM ledger GROUP BY member_id) t USING (member_id)
               LEFT JOIN (SELECT member_id, sum(remaining) AS open FROM lots GROUP BY member_id) o USING (member_id)
               WHERE coalesce(o.open, 0) - max(-t.total, 0) != t.total LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"lot {lot_id} belongs to {lot_member} but its credit (entry {eid}) to {entry_member}", check="lots",
                member_id=entry_member)
        for lot_id, lot_member, eid, entry_member in conn.execute(
            """SELECT l.id, l.member_id, e.id, e.member_id FROM lots l JOIN ledger e ON e.id = l.entry_id
               WHERE l.member_id != e.member_id LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"purchase {pid} names lot {lot_id}, which is not one of its member's lots", check="lots", member_id=mid)
        for pid, mid, lot_id in conn.execute(
            """SELECT p.purchase_id, p.member_id, p.lot_id FROM purchases p LEFT JOIN lots l ON l.id = p.lot_id
               WHERE p.lot_id IS NOT NULL AND (l.id IS NULL OR l.member_id != p.member_id) LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"entry {eid} consumed {used} points of lots but is only {-points}", check="lots", member_id=mid)
        for eid, mid, points, used in conn.execute(
            """SELECT e.id, e.member_id, e.points, u.used FROM ledger e
               JOIN (SELECT entry_id, sum(points) AS used FROM lot_uses GROUP BY entry_id) u ON u.entry_id = e.id
               WHERE u.used > abs(e.points) LIMIT ?""", (LIMIT,))
    ]
    return problems


def check_no_overdraft(conn) -> list[Problem]:
    """No entry other than a refund reversal took a balance below zero."""
    rows = conn.execute(
        """SELECT id, member_id, kind, after FROM (
               SELECT id, member_id, kind, points, sum(points) OVER (PARTITION BY member_id ORDER BY id) AS after FROM ledger)
           WHERE points < 0 AND after < 0 AND kind != 'reversal' LIMIT ?""", (LIMIT,)).fetchall()
    return [Problem(f"entry {eid} ({kind}) left the balance at {after}", check="overdraft", member_id=mid)
            for eid, mid, kind, after in rows]


def check_purchases(conn) -> list[Problem]:
    """Earn, bonus and reversal entries refer to purchases; no purchase reverses more than it earned."""
    problems = [
        Problem(f"entry {eid} ({kind}) refers to purchase {ref!r}, which is not recorded", check="purchases", member_id=mid)
        for eid, mid, kind, ref in conn.execute(
            """SELECT e.id, e.member_id, e.kind, e.ref FROM ledger e LEFT JOIN purchases p ON p.purchase_id = e.ref
               WHERE e.kind IN ('earn', 'bonus', 'reversal') AND p.purchase_id IS NULL LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"purchase {pid} records {cached} points but its entries add up to {total}", check="purchases", member_id=mid)
        for pid, mid, cached, total in conn.execute(
            """SELECT p.purchase_id, p.member_id, p.points, coalesce(e.total, 0) FROM purchases p
               LEFT JOIN (SELECT ref, sum(abs(points)) AS total FROM ledger WHERE kind IN ('earn', 'bonus', 'reversal')
                          GROUP BY ref) e ON e.ref = p.purchase_id
               WHERE p.points != coalesce(e.total, 0) LIMIT ?""", (LIMIT,))
    ]
    problems += [
        Problem(f"purchase {pid} earned {earned} points but its refunds reversed {reversed_}", check="purchases", member_id=mid)
        for pid, mid, earned, reversed_ in conn.execute(
            """SELECT s.purchase_id, s.member_id, s.points, r.total FROM purchases s
               JOIN (SELECT refund_of, sum(points) AS total FROM purchases WHERE kind = 'refund' GROUP BY refund_of) r
                 ON r.refund_of = s.purchase_id
               WHERE r.total > s.points LIMIT ?""", (LIMIT,))
    ]
    return problems


def check_summaries(conn) -> list[Problem]:
    """The cached totals the reports read (per member, per day) equal the purchases and entries they sum up."""
    problems = []
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, source, key in SUMMARY_TABLES:
        if table not in have:
            continue  # a backup from before m002: opening it as the database builds the totals from its data
        rows = conn.execute(
            f"""SELECT * FROM (SELECT * FROM {table} EXCEPT SELECT * FROM ({source}))
                UNION ALL SELECT * FROM (SELECT * FROM ({source}) EXCEPT SELECT * FROM {table}) ORDER BY {key} LIMIT ?""",
            (LIMIT,)).fetchall()
        if table == "member_totals":
            problems += [Problem("purchase totals differ from what the member's purchases add up to", check="summaries",
                                 member_id=mid) for mid in sorted({r[0] for r in rows})]
            continue
        days = sorted({r[0] for r in rows})
        if days:
            problems.append(Problem(f"{table} differs from what it sums up on {', '.join(days[:10])}"
                                    + (" and more days" if len(days) > 10 else ""), check="summaries"))
    return problems


OUTSTANDING_DATES = 6  # as-of dates compared: today and the first and last days with entries after it


def check_outstanding(conn, today: str | None = None) -> list[Problem]:
    """Every "as of D" figure (members list and show, points balance, the dashboard's and `report
    liability`'s outstanding points) reads members.balance minus the entries dated after D, found
    through daily_points (ledger.BALANCES_SQL). Here those balances and their outstanding sum are
    compared with the ledger's own sums of the entries dated up to D, for D = today and the days
    after it that have entries (the first few and the last), so that the reports and the balances
    can never disagree unnoticed, as they did after an expiry run dated next year (issue 15).
    Without `today`, only the balances after every entry are compared."""
    from loyalty_cli.ledger import BALANCES_SQL, entries_after, outstanding
    from loyalty_cli.values import end_of_day

    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'daily_points'").fetchone():
        return []  # a backup from before m002: opening it as the database builds the totals from its data
    today = (today or "9999-12-31")[:10]
    # One pass in member order (the scan check_balances makes too): each member's total, and the
    # sums of their entries dated after today, per day (usually none).
    totals: dict[str, int] = {}
    later: list[tuple[str, str, int]] = []
    for member_id, entry_day, points in conn.execute(
            "SELECT member_id, CASE WHEN at > ? THEN substr(at, 1, 10) ELSE '' END AS d, sum(points) FROM ledger "
            "GROUP BY member_id, d", (end_of_day(today),)):
        totals[member_id] = totals.get(member_id, 0) + points
        if entry_day:
            later.append((member_id, entry_day, points))
    days = sorted({day for _, day, _ in later})
    if len(days) > OUTSTANDING_DATES - 1:
        days = days[:OUTSTANDING_DATES - 2] + days[-1:]
    problems: list[Problem] = []
    named: set = set()
    for day in [today] + days:
        expected = dict(totals)
        for member_id, entry_day, points in later:
            if entry_day > day:
                expected[member_id] -= points
        with entries_after(conn, day):
            shown = conn.execute(f"WITH {BALANCES_SQL} SELECT member_id, balance FROM balances").fetchall()
            figure = outstanding(conn)
        should = sum(b for b in expected.values() if b > 0)
        if figure != should:
            problems.append(Problem(f"outstanding points as of {day}: the reports show {figure:,} but the ledger's "
                                    f"balances dated up to then add up to {should:,}", check="outstanding"))
        for member_id, balance in shown:
            right = expected.get(member_id, 0)
            if balance != right and member_id not in named and len(named) < LIMIT:
                named.add(member_id)
                problems.append(Problem(f"balance as of {day} is shown as {balance} but the entries dated up to then "
                                        f"add up to {right}", check="outstanding", member_id=member_id))
    return problems


def check_tiers(conn) -> list[Problem]:
    """A member's tier is the one their latest recorded tier change gave them."""
    rows = conn.execute(
        """SELECT m.member_id, m.tier, t.to_tier FROM members m
           JOIN tier_changes t ON t.id = (SELECT max(id) FROM tier_changes WHERE member_id = m.member_id)
           WHERE m.tier != t.to_tier LIMIT ?""", (LIMIT,)).fetchall()
    return [Problem(f"tier shown is {shown} but the latest tier change gave {recorded}", check="tiers", member_id=mid)
            for mid, shown, recorded in rows]


def check_member_ids(conn) -> list[Problem]:
    """Member ids match without regard to case (SPEC §4): two stored ids that differ only by case (made
    before that rule) are reported, since commands naming either are refused as ambiguous; so is a
    member whose lookup key (members.member_key) is not its id folded (a row written behind the tool's
    back). Folded in Python, from the ids themselves: a backup from before the key column is checked too."""
    from loyalty_cli.values import member_key

    has_key = any(col[1] == "member_key" for col in conn.execute("PRAGMA table_info(members)"))
    by_key: dict[str, list[str]] = {}
    problems = []
    for mid, stored_key in conn.execute(f"SELECT member_id, {'member_key' if has_key else 'NULL'} FROM members "
                                        "ORDER BY member_id"):
        key = member_key(mid)
        by_key.setdefault(key, []).append(mid)
        if has_key and stored_key != key and len(problems) < LIMIT:
            problems.append(Problem(f"member {mid} has the lookup key {stored_key!r}, not {key!r}: it cannot be "
                                    "found by its id typed in another case", check="member_ids", member_id=mid))
    for same in by_key.values():
        if len(same) > 1 and len(problems) < LIMIT:
            problems.append(Problem(f"members {' and '.join(same)} differ only by case: ids match without regard to "
                                    "case, so commands naming them are refused as ambiguous", check="member_ids",
                                    member_id=same[0]))
    return problems


# Problems a backup may have and still be restored: they predate the rule, and the tool refuses
# what they would make ambiguous rather than doing anything wrong with them.
RESTORABLE = ("member_ids",)

CHECKS = [check_sqlite, check_append_only, check_hash_chain, check_balances, check_lots, check_no_overdraft, check_purchases,
          check_summaries, check_outstanding, check_tiers, check_member_ids]


def run_checks(store, today: str | None = None) -> list[Problem]:
    """Every check, in one read snapshot (`today`, from the CLI: the date the as-of figures start from)."""
    with store.read() as conn:
        problems = []
        for check in CHECKS:
            problems.extend(check(conn, today) if check is check_outstanding else check(conn))
    return problems
