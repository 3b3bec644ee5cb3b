"""`db check`: every invariant of SPEC §7 as a function returning problems (beancount style).

Checks never raise on bad data; each returns a list of `Problem`s naming the
check, the member where there is one, and what was expected against what was
found, so one run reports everything.
"""

from __future__ import annotations

from loyalty_cli.errors import Problem
from loyalty_cli.ledger import GENESIS, entry_hash
from loyalty_cli.store import checks as check_rows
from loyalty_cli.values import end_of_day, member_key
from loyalty_cli.i18n import N_, M_

LIMIT = 100  # problems reported per check, so a wrecked file does not flood the terminal


def check_sqlite(tx) -> list[Problem]:
    """SQLite's own integrity_check and foreign_key_check."""
    problems = [Problem(f"integrity_check: {msg}", check="sqlite") for msg in check_rows.integrity_messages(tx)
                if msg != "ok"]
    for table, rowid, parent, _fk in check_rows.foreign_key_violations(tx, LIMIT):
        problems.append(Problem(M_("foreign_key_check: {table} row {rowid} refers to a missing {parent}", table=table, rowid=rowid, parent=parent), check="sqlite"))
    return problems


def check_schema(tx) -> list[Problem]:
    """Every table, index and trigger that loyalty's migrations made (those that ran on this file: a
    backup made before a migration gets its objects when restored) is there as they made it, and
    nothing else is: the triggers refusing UPDATE, DELETE and REPLACE on the ledger and the other
    history, and no trigger, table or view added by hand, which may copy personal data away before
    an erasure. SQLite's own objects (sqlite_autoindex_*, sqlite_sequence, sqlite_stat*) are allowed."""
    have = check_rows.schema(tx)
    expected = check_rows.expected_schema(tx, tuple(check_rows.migrations_run(tx)))
    problems = []
    for name, (kind, table, sql) in expected.items():
        if name not in have:
            problems.append(Problem(M_("{named} is missing{get}", named=_named(kind, name, table), get=M_(_WHY_MISSING[kind]) if kind in _WHY_MISSING else ''), check="schema"))
        elif have[name] != (kind, table, sql):
            problems.append(Problem(M_("{named} is not as loyalty made it (its definition was changed behind the tool's back); loyalty made it as: {sql}", named=_named(kind, name, table), sql=sql), check="schema"))
    for name, (kind, table, _sql) in sorted(have.items()):
        if name not in expected:
            problems.append(Problem(M_("an extra {named} that loyalty did not make: {why}; drop it (DROP {kind} {name}) "
                                       "after looking at what it does", named=_named(kind, name, table),
                                       why=M_(_WHY_EXTRA.get(kind, N_("it may copy personal data"))), kind=kind.upper(),
                                       name=name), check="schema"))
    return problems


def _named(kind: str, name: str, table: str) -> str:
    """"trigger ledger_no_update on ledger", "table members"."""
    return f"{kind} {name}" + ("" if kind in ("table", "view") else f" on {table}")


_WHY_MISSING = {"trigger": N_(": what it refuses (editing or deleting history) is no longer refused"),
                "index": N_(": queries that use it are slow"), "table": N_(": the database is incomplete")}
_WHY_EXTRA = {"trigger": N_("it may copy personal data or change rows behind the tool's back"),
              "table": N_("it may hold copies of personal data"), "view": N_("it may show personal data"),
              "index": N_("it may keep copies of the values it indexes")}


def check_hash_chain(tx, first: int = 1) -> list[Problem]:
    """Recompute every entry's hash from the previous one (from entry `first` on): an edit behind
    the tool's back breaks the chain."""
    problems = []
    prev = GENESIS
    expected_id = None
    rows = check_rows.ledger_entries(tx, first - 1)  # from the entry before: its hash starts the chain
    if first > 1:
        before = next(rows, None)
        if before is not None:
            prev, expected_id = before[8], before[0] + 1
    for eid, member_id, at, kind, points, ref, note, by, h in rows:
        if entry_hash(prev, eid, member_id, at, kind, points, ref, note, by) != h:
            problems.append(Problem(M_("entry {eid}: hash does not match its contents and the previous entry (edited or removed behind the tool's back)", eid=eid), check="hash_chain", member_id=member_id))
            if len(problems) >= LIMIT:
                break
        if expected_id is not None and eid != expected_id:
            problems.append(Problem(M_("entries {expected_id}..{eid} are missing", expected_id=expected_id, eid=eid - 1), check="hash_chain"))
        expected_id = eid + 1
        prev = h
    return problems


def check_balances(tx) -> list[Problem]:
    """Every member's cached balance equals the sum of their entries."""
    return [Problem(M_("balance shown is {shown} but the entries add up to {total}", shown=shown, total=total), check="balance", member_id=mid)
            for mid, shown, total in check_rows.balance_mismatches(tx, LIMIT)]


def check_lots(tx) -> list[Problem]:
    """Lots are never consumed beyond their size, open lots minus any hole equal the balance, and no
    spend took a sale's points before they became spendable (earn.pending_days)."""
    problems = [
        Problem(M_("lot {lot_id}: remaining {remaining} but size {size} minus uses {used} is {size2}", lot_id=lot_id, remaining=remaining, size=size, used=used, size2=size - used),
                check="lots", member_id=mid)
        for lot_id, mid, size, remaining, used in check_rows.lot_size_mismatches(tx, LIMIT)
    ]
    problems += [
        Problem(M_("open lots hold {open} points and the hole is {hole}, but the balance is {bal}", open=open_, hole=hole, bal=bal), check="lots", member_id=mid)
        for mid, bal, open_, hole in check_rows.lot_balance_mismatches(tx, LIMIT)
    ]
    problems += [
        Problem(M_("lot {lot_id} belongs to {lot_member} but its credit (entry {eid}) to {entry_member}", lot_id=lot_id, lot_member=lot_member, eid=eid, entry_member=entry_member), check="lots",
                member_id=entry_member)
        for lot_id, lot_member, eid, entry_member in check_rows.lot_owner_mismatches(tx, LIMIT)
    ]
    problems += [
        Problem(M_("purchase {pid} names lot {lot_id}, which is not one of its member's lots", pid=pid, lot_id=lot_id), check="lots", member_id=mid)
        for pid, mid, lot_id in check_rows.purchase_lot_mismatches(tx, LIMIT)
    ]
    problems += [
        Problem(M_("entry {eid} consumed {used} points of lots but is only {value}", eid=eid, used=used, value=-points), check="lots", member_id=mid)
        for eid, mid, points, used in check_rows.overconsuming_entries(tx, LIMIT)
    ]
    problems += [
        Problem(M_("entry {eid} ({kind}, {day}) spent points of lot {lot_id}, which were pending until {available_on}", eid=eid, kind=kind, day=day, lot_id=lot_id, available_on=available_on),
                check="lots", member_id=mid)
        for eid, mid, kind, day, lot_id, available_on in check_rows.spent_before_available(tx, LIMIT)
    ]
    return problems


def check_no_overdraft(tx) -> list[Problem]:
    """No entry other than a refund reversal took a balance below zero."""
    return [Problem(M_("entry {eid} ({kind}) left the balance at {after}", eid=eid, kind=kind, after=after), check="overdraft", member_id=mid)
            for eid, mid, kind, after in check_rows.overdrafts(tx, LIMIT)]


def check_purchases(tx) -> list[Problem]:
    """Earn, bonus and reversal entries refer to purchases; no purchase reverses more than it earned."""
    problems = [
        Problem(M_("entry {eid} ({kind}) refers to purchase {ref!r}, which is not recorded", eid=eid, kind=kind, ref=ref), check="purchases", member_id=mid)
        for eid, mid, kind, ref in check_rows.unrecorded_purchase_refs(tx, LIMIT)
    ]
    problems += [
        Problem(M_("purchase {pid} records {cached} points but its entries add up to {total}", pid=pid, cached=cached, total=total), check="purchases", member_id=mid)
        for pid, mid, cached, total in check_rows.purchase_point_mismatches(tx, LIMIT)
    ]
    problems += [
        Problem(M_("purchase {pid} earned {earned} points but its refunds reversed {reversed}", pid=pid, earned=earned, reversed=reversed_), check="purchases", member_id=mid)
        for pid, mid, earned, reversed_ in check_rows.overreversed_sales(tx, LIMIT)
    ]
    return problems


def check_summaries(tx) -> list[Problem]:
    """The cached totals the reports read (per member, per day) equal the purchases and entries they sum up."""
    problems = []
    for table, rows in check_rows.summary_differences(tx, LIMIT):
        if table == "member_totals":
            problems += [Problem(M_("purchase totals differ from what the member's purchases add up to"), check="summaries",
                                 member_id=mid) for mid in sorted({r[0] for r in rows})]
            continue
        days = sorted({r[0] for r in rows})
        if days:
            problems.append(Problem(M_("{table} differs from what it sums up on {join}{more}", table=table,
                                       join=', '.join(days[:10]), more=M_(" and more days") if len(days) > 10 else ""),
                                    check="summaries"))
    return problems


OUTSTANDING_DATES = 6  # as-of dates compared: today and the first and last days with entries after it


def check_outstanding(tx, today: str | None = None) -> list[Problem]:
    """Every "as of D" figure (members list and show, points balance, the dashboard's and `report
    liability`'s outstanding points) reads members.balance minus the entries dated after D, found
    through daily_points (store.ledger.BALANCES_SQL). Here those balances and their outstanding sum are
    compared with the ledger's own sums of the entries dated up to D, for D = today and the days
    after it that have entries (the first few and the last), so that the reports and the balances
    can never disagree unnoticed, as they did after an expiry run dated next year (issue 15).
    Without `today`, only the balances after every entry are compared."""
    if not check_rows.has_daily_points(tx):
        return []  # a backup from before m002: opening it as the database builds the totals from its data
    today = (today or "9999-12-31")[:10]
    # One pass in member order (the scan check_balances makes too): each member's total, and the
    # sums of their entries dated after today, per day (usually none).
    totals: dict[str, int] = {}
    later: list[tuple[str, str, int]] = []
    for member_id, entry_day, points in check_rows.entry_sums_after(tx, end_of_day(today)):
        totals[member_id] = totals.get(member_id, 0) + points
        if entry_day:
            later.append((member_id, entry_day, points))
    days = sorted({day for __, day, __ in later})
    if len(days) > OUTSTANDING_DATES - 1:
        days = days[:OUTSTANDING_DATES - 2] + days[-1:]
    problems: list[Problem] = []
    named: set = set()
    for day in [today] + days:
        expected = dict(totals)
        for member_id, entry_day, points in later:
            if entry_day > day:
                expected[member_id] -= points
        shown, figure = check_rows.balances_as_of(tx, day)
        should = sum(b for b in expected.values() if b > 0)
        if figure != should:
            problems.append(Problem(M_("outstanding points as of {day}: the reports show {figure:,} but the ledger's balances dated up to then add up to {should:,}", day=day, figure=figure, should=should), check="outstanding"))
        for member_id, balance in shown:
            right = expected.get(member_id, 0)
            if balance != right and member_id not in named and len(named) < LIMIT:
                named.add(member_id)
                problems.append(Problem(M_("balance as of {day} is shown as {balance} but the entries dated up to then add up to {right}", day=day, balance=balance, right=right), check="outstanding", member_id=member_id))
    return problems


def check_tiers(tx) -> list[Problem]:
    """A member's tier is the one their latest recorded tier change gave them."""
    return [Problem(M_("tier shown is {shown} but the latest tier change gave {recorded}", shown=shown, recorded=recorded), check="tiers", member_id=mid)
            for mid, shown, recorded in check_rows.tier_mismatches(tx, LIMIT)]


def check_member_ids(tx) -> list[Problem]:
    """Member ids match without regard to case (SPEC §4): two stored ids that differ only by case (made
    before that rule) are reported, since commands naming either are refused as ambiguous; so is a
    member whose lookup key (members.member_key) is not its id folded (a row written behind the tool's
    back). Folded in Python, from the ids themselves: a backup from before the key column is checked too."""
    has_key = check_rows.has_member_keys(tx)
    by_key: dict[str, list[str]] = {}
    problems = []
    for mid, stored_key in check_rows.member_ids(tx, has_key):
        key = member_key(mid)
        by_key.setdefault(key, []).append(mid)
        if has_key and stored_key != key and len(problems) < LIMIT:
            problems.append(Problem(M_("member {mid} has the lookup key {stored_key!r}, not {key!r}: it cannot be found by its id typed in another case", mid=mid, stored_key=stored_key, key=key), check="member_ids", member_id=mid))
    for same in by_key.values():
        if len(same) > 1 and len(problems) < LIMIT:
            problems.append(Problem(M_("members {join} differ only by case: ids match without regard to case, so commands naming them are refused as ambiguous", join=' and '.join(same)), check="member_ids",
                                    member_id=same[0]))
    return problems


def check_first_sales(tx) -> list[Problem]:
    """A member's first sale is one of their sales, and is set once they have one (a NULL earns the
    first-purchase bonus, and the referrer's referral bonus, again)."""
    return [Problem(M_("first_sale is {value} but ", value='NULL' if first is None else repr(first))
                    + (M_("they have sales: their next sale would earn the first-purchase bonus again") if first is None
                       else M_("that is not one of their sales")) + M_(": changed behind the tool's back"),
                    check="first_sale", member_id=mid)
            for mid, first in check_rows.first_sale_mismatches(tx, LIMIT,
                                                               check_rows.has_column(tx, "members", "merged_into"))]


# The checks cheap enough for every incremental `db check` too (a tenth of a second at a million purchases).
INCREMENTAL = [check_schema, check_tiers, check_member_ids, check_first_sales]

# Problems a backup may have and still be restored: they predate the rule, and the tool refuses
# what they would make ambiguous rather than doing anything wrong with them.
RESTORABLE = ("member_ids",)

def _variant_marks(tx) -> list[Problem]:
    """Variant markers agree with their experiments' terms (experiment_checks.check_variant_marks)."""
    from loyalty_cli.experiment_checks import check_variant_marks

    return check_variant_marks(tx)


CHECKS = [check_sqlite, check_schema, check_hash_chain, check_balances, check_lots, check_no_overdraft, check_purchases,
          check_summaries, check_outstanding, check_tiers, check_member_ids, check_first_sales]
CHECKS.append(_variant_marks)  # experiments (issue 19): experiment_checks.py


def check_anchors(tx, lines: list[str] | None, file: str) -> tuple[list[Problem], int]:
    """The chain still passes through every head `db seal` recorded in the anchors file (`lines`,
    None when there is none): it has at least that many blocks and the last of them has the hash
    sealed (seals made before the chain: the same of the ledger's entries). One lookup per anchor.
    Truncating the last blocks, or rewriting an old one and recomputing every later hash and
    signature (someone with the key), passes the chain's own checks but not this. Also returns the
    block count of the latest seal the chain still passes through (0: none)."""
    from loyalty_cli import anchors
    from loyalty_cli.store import chain as chain_rows

    if lines is None:
        return [], 0
    records, problems = anchors.parse(lines, file)
    last_entry, __ = check_rows.chain_head(tx)
    last_block = chain_rows.head(tx)[0] if chain_rows.has_chain(tx) else 0
    block_hash = lambda n: chain_rows.hash_of(tx, n)  # noqa: E731
    heads = {"entries": (last_entry, lambda eid: check_rows.entry_hash_of(tx, eid)), "blocks": (last_block, block_hash)}
    problems += anchors.verify(records, heads, file)
    return problems[:LIMIT], anchors.last_verified_seal(records, last_block, block_hash)


class Outcome:
    """What `db check` found, and what it looked at: `mode` "full" or "incremental" (from block
    `since`, the latest seal), how many `blocks` the chain has, and notes to say beside the problems."""

    def __init__(self):
        self.problems: list[Problem] = []
        self.mode = "full"
        self.since = 0
        self.blocks = 0
        self.notes: list[str] = []

    def as_dict(self) -> dict:
        """SPEC §11's document: {"ok", "problems"} (what was looked at is said on stderr)."""
        return {"ok": not self.problems,
                "problems": [{"check": p.check, "message": p.message, "member_id": p.member_id}
                             for p in self.problems]}


def run(store, today: str | None = None, anchor_lines: list[str] | None = None, anchors_file: str = "",
        key: bytes | None = None, full: bool = True) -> Outcome:
    """`db check`, in one read snapshot. `today`: the date the as-of figures start from; `anchor_lines`:
    the anchors file's lines (None: none); `key`: the chain key (None: signatures not checked).
    Without `full`, and with a seal the chain still passes through, the history is compared from
    that seal on and the cached figures of the members and days it touched (plus whole-database
    sums); otherwise everything."""
    from loyalty_cli import replay as chain_replay

    o = Outcome()
    with store.read() as tx:
        anchor_problems, sealed = check_anchors(tx, anchor_lines, anchors_file)
        since = 0 if full else sealed
        r = chain_replay.replay(tx, key, since)
        o.blocks, o.since = r.blocks, since
        if since:
            o.mode = "incremental"
            for check in INCREMENTAL:
                o.problems += check(tx)
            o.problems += r.problems
            o.problems += _check_touched(tx, r)
        else:
            for check in CHECKS:
                o.problems.extend(check(tx, today) if check is check_outstanding else check(tx))
            o.problems += r.problems
        o.problems += anchor_problems
        o.notes += r.notes
    return o


def _check_touched(tx, r) -> list[Problem]:
    """The cached figures of the members and days the blocks since the seal touched, the ledger's
    hashes from the first entry they wrote, and whole-database sums of the cached figures."""
    problems = []
    if r.first_entry is not None:
        problems += check_hash_chain(tx, r.first_entry)
    check_rows.mark_touched(tx, r.touched, r.days)
    for mid, balance, total, open_ in check_rows.touched_member_states(tx, LIMIT):
        if balance != total:
            problems.append(Problem(M_("balance shown is {balance} but the entries add up to {total}", balance=balance, total=total), check="balance",
                                    member_id=mid))
        if open_ - max(-total, 0) != total:
            problems.append(Problem(M_("open lots hold {open} points and the hole is {value}, but the balance is {total}", open=open_, value=max(-total, 0), total=total), check="lots", member_id=mid))
    problems += [Problem(M_("lot {lot_id}: remaining {remaining} but size {size} minus uses {used} is {size2}", lot_id=lot_id, remaining=remaining, size=size, used=used, size2=size - used),
                         check="lots", member_id=mid)
                 for lot_id, mid, size, remaining, used in check_rows.touched_lot_mismatches(tx, LIMIT)]
    for table, rows in (check_rows.touched_summary_differences(tx, LIMIT) if r.touched or r.days else ()):
        keys = sorted({r[0] for r in rows})
        if keys:
            problems.append(Problem(M_("{table} differs from what it sums up for {join}{more}", table=table,
                                       join=', '.join(map(str, keys[:10])), more=M_(" and more") if len(keys) > 10 else ""),
                                    check="summaries"))
    balances, entries, remaining, points, used = check_rows.totals_everywhere(tx)
    if balances != entries:
        problems.append(Problem(M_("the members' balances add up to {balances:,} but the ledger's entries to {entries:,} (loyalty db check --full names the members)", balances=balances, entries=entries), check="balance"))
    if remaining != points - used:
        problems.append(Problem(M_("the lots' remaining points add up to {remaining:,} but their sizes minus their uses to {points:,} (loyalty db check --full names the lots)", remaining=remaining, points=points - used), check="lots"))
    return problems


def run_checks(store, today: str | None = None, anchor_lines: list[str] | None = None,
               anchors_file: str = "", key: bytes | None = None) -> list[Problem]:
    """Every check, in full (`db restore` checks a backup so, without its anchors)."""
    return run(store, today, anchor_lines, anchors_file, key, full=True).problems


def check_households(tx) -> list[Problem]:
    """Households and memberships as the chain recorded them, and every pooled redemption took only
    points of members in its household at that moment (loyalty_cli.households.check)."""
    from loyalty_cli import households

    return households.check(tx)


CHECKS.append(check_households)
INCREMENTAL.append(check_households)


def check_merges(tx) -> list[Problem]:
    """Merges of duplicate members moved exactly the lots they took, and every alias is one a merge
    made (hygiene.check_merges)."""
    from loyalty_cli import hygiene

    return hygiene.check_merges(tx)


CHECKS.append(check_merges)
INCREMENTAL.append(check_merges)
