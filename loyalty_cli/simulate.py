"""`program simulate`: the shop's own history replayed under today's rules and under a proposal,
each in a scratch database, compared line by line. The shop's database is only read.

How (issue 19):

1. The opening state on the eve of the period and the period's events are read from the shop's
   database once, in one snapshot, into a source file (store.simulate.extract): every member
   enrolled by the end (birth month, joined date, referrer, tier held on the eve with the date it
   was reached and any manual floor, first sale if before the period), the lots still open on the
   eve with what was left of them, the purchases before the period that tier windows and the
   period's refunds look back at, and the period's sales, refunds, redemptions, awards,
   adjustments, transfers and cancelled vouchers.
2. Two replays, in two processes at once (one per programme), each into a scratch database of
   its own: the same opening state, then every event in time order through the ledger's own
   code - `purchases.record_sale` / `record_refund` (the earning engine, tier upgrades, referral
   bonuses), `Book.credit` / `Book.debit`, `Book.expire_all` and `tiers.recalc` - on the bulk
   import's fast path (deferred indexes, a large page cache; no fsync, no chain).
3. The figures of both scratch ledgers from the first day of the period, side by side.

Choices where the issue is silent (the README says them too):

- The baseline is the programme in force today, applied to the whole period; the proposal
  applies from the period's first day. Points, lots and tiers before the period are what really
  happened, in both.
- Members who joined in the period get the signup bonus of the programme replayed.
- A redemption is replayed as it happened: when the programme replayed leaves the member too
  few points it is not clamped but counted as "would have been refused" (with its points), and
  the member's later events go on without it; a cancelled voucher whose redemption was refused
  gives nothing back. An adjustment down or a transfer the member cannot cover is likewise
  refused and counted ("other debits refused"). Transfers keep their real amounts; the monthly
  transfer limit is not applied again.
- Expiry is written off on the first day of every month of the period and on its last day (a
  debit writes off a member's lapsed lots before it anyway), so "points expired" does not depend
  on when the shop happened to run `points expire`.
- Tiers: upgrades happen at the sale that qualifies, as always; downgrades at a recalc: on the
  last day of each month in which the shop ran `tiers recalc` (recalc_runs; nightly runs would
  cost a pass over the whole history each), and once on the period's last day, so the tiers at
  the end are each programme's. Tiers set by hand during the period (`tiers set`) are set again
  at the same moment, with the same floor.
- Refunds in the period of sales made before it reverse what those sales really earned, less
  what of it expired before the period (as in the shop).
- Experiments are replayed as the shop ran them: in their days, their variant group earns under
  the variant merged over the programme replayed (the baseline is then the shop's own history).
- A pooled redemption (households) is replayed as its entries, each member's share from their own
  lots; cancelling its voucher gives each member back what their share took.
- Merges: a member merged before the period is an alias from the start; a merge in the period is
  replayed at its moment (the duplicate's open lots in that replay move to the member kept, who
  takes the higher tier and the first sale), so a later refund of the duplicate's sale reverses
  from the member kept, as in the shop.
"""

from __future__ import annotations

import heapq
import shutil
import tempfile
from pathlib import Path

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, UsageError
from loyalty_cli.i18n import M_, message_of

PERIOD_MONTHS = 12
NO_SEGMENT = "none"  # members without a sale in the RFM window at the end of the period
SCHEDULE_EXPIRE, JOIN, PURCHASE, ENTRY, SCHEDULE_RECALC = 0, 1, 2, 3, 9
LAST_SECOND_SORT = "T99"  # sorts after every time of its day: a recalc as of D sees all of D
CHUNK = 2000


# -- the period -----------------------------------------------------------------------------------
def period(last_purchase: str, start: str | None, last: str | None) -> tuple[str, str]:
    """(first day, last day): by default the twelve months up to the last purchase; --from alone runs
    to the last purchase, --to alone starts twelve months before it."""
    if last is None:
        last = max(last_purchase, start) if start else last_purchase
    if start is None:
        start = values.add_days(values.add_months(last, -PERIOD_MONTHS), 1)
    if start > last:
        raise UsageError(M_("--from {start} is after --to {last}: the period must start on or before its last day", start=start, last=last))
    return start, last


def _month_starts(start: str, last: str) -> list[str]:
    """The first day of each month after `start`'s, up to `last`."""
    days = []
    day = values.add_months(start[:8] + "01", 1)
    while day <= last:
        days.append(day)
        day = values.add_months(day, 1)
    return days


def schedule(start: str, last: str, recalcs: list[str]) -> list[tuple]:
    """The expiry runs and recalcs of the replay, as merge-ready events (see the module's choices)."""
    events = [(f"{d}T00:00:00", SCHEDULE_EXPIRE, "expire", d) for d in _month_starts(start, last) + [last]]
    by_month: dict[str, str] = {}
    for d in recalcs:
        by_month[d[:7]] = max(d, by_month.get(d[:7], d))
    days = sorted(set(by_month.values()) | {last})
    events += [(f"{d}{LAST_SECOND_SORT}", SCHEDULE_RECALC, "recalc", d) for d in days]
    return sorted(events)


# -- the replay (in a worker process) -----------------------------------------------------------
def _tier_on_eve(changes: list[tuple], eve: str, joined_on: str, current: str, start: str):
    """(tier, since, floor tier, floor until) held at the end of the day before the period, from the
    member's tier changes (at, from, to, reason, until) in recorded order."""
    before = [c for c in changes if c[0] < eve]
    if before:
        at, _from, to, reason, until = before[-1]
        floor = (to, until) if reason == "manual" and until and until >= start else (None, None)
        return to, at[:10], *floor
    if changes:
        return changes[0][1], joined_on, None, None
    return current, joined_on, None, None


def _events(src, start: str, last: str):
    """Every event of the period in replay order: (sort time, priority, kind, payload)."""
    from loyalty_cli.store import simulate as rows

    joins = ((f"{j}T00:00:00", JOIN, "join", (mid, j)) for mid, _bm, j, *_ in rows.source_members(src)
             if start <= j <= last)
    purchases = ((p[4], PURCHASE, p[2], p) for p in rows.source_purchases(src))
    entries = ((e[1], ENTRY, e[2], e) for e in rows.source_entries(src))
    manual = [(t[0], ENTRY, "tier", t) for t in rows.source_manual_tiers(src, f"{start}T00:00:00",
                                                                         values.end_of_day(last))]
    merges = [(at, ENTRY, "merge", (dup, keep, at)) for dup, keep, at in rows.source_merges(src)
              if at >= f"{start}T00:00:00"]
    plan = schedule(start, last, rows.source_recalcs(src))
    return heapq.merge(plan, sorted(joins), purchases, entries, manual, merges, key=lambda e: (e[0], e[1]))


def replay(source: str, scratch: str, rules_json: str, start: str, last: str) -> dict:
    """Replay the source file's period under one programme (its rules as stored JSON) into a new
    scratch database at `scratch`; return its figures (see `_figures`). Runs in a worker process:
    a refusal comes back as {"error", "exit_code"}."""
    try:
        return _replay(Path(source), Path(scratch), rules_json, start, last)
    except LoyaltyError as exc:
        return {"error": message_of(exc), "exit_code": exc.exit_code}


def _replay(source: Path, scratch_path: Path, rules_json: str, start: str, last: str) -> dict:
    import gc
    import json

    from loyalty_cli import rules as rules_mod
    from loyalty_cli import tiers
    from loyalty_cli.ledger import Book, MemberState
    from loyalty_cli.purchases import record_refund, record_sale
    from loyalty_cli.store import ledger as ledger_rows
    from loyalty_cli.store import members as member_rows
    from loyalty_cli.store import programme as programme_rows
    from loyalty_cli.store import simulate as rows

    gc.disable()  # millions of short-lived records and no cycles worth collecting (as an import)
    rules = rules_mod.validate(json.loads(rules_json), stored=True)
    eve = start + "T00:00:00"
    opening_at = values.add_days(start, -1) + "T23:59:59"
    src = rows.open_source(source)
    scratch = rows.ScratchStore.create(scratch_path)
    refused: dict[str, list[int]] = {}  # member -> [redemptions refused, their points]
    other_refused = skipped = 0
    try:
        with scratch.bulk_write() as tx:
            programme_rows.set_once(tx, "currency_decimals", str(rules.currency_decimals))
            programme_rows.insert(tx, values.EARLIEST, rules.to_json(), eve, "simulate")
            book = Book(tx)
            lowest = rules.levels[0].name
            changes: dict[str, list] = {}
            for mid, at, from_tier, to_tier, reason, until in rows.source_tier_changes(src):
                changes.setdefault(mid, []).append((at, from_tier, to_tier, reason, until))
            for mid, month, joined_on, referrer, first_sale, _balance, tier in rows.source_members(src):
                if joined_on >= start:
                    held, since, floor, until = lowest, joined_on, None, None
                else:
                    held, since, floor, until = _tier_on_eve(changes.get(mid, []), eve, joined_on, tier, start)
                member_rows.insert(tx, mid, None, None, None, f"2000-{month}-01" if month else None, joined_on,
                                   referrer, held, values.member_key(mid))
                m = MemberState(mid, month, referrer, held, since, floor, until, 0, first_sale, False)
                book.add_member_state(m)
                book.touch(m)
            changes.clear()
            for dup, keep, at in rows.source_merges(src):  # merged before the period: an alias from the start
                if at < eve and dup in book.members:
                    for m in book.members.values():
                        if m.member_id == dup or m.merged_into == dup:
                            m.merged_into = keep
                    rows.mark_merged(tx, dup, keep)
            from loyalty_cli import experiments
            from loyalty_cli.store.experiments import Row

            book._experiments = experiments.Experiments([experiments.Experiment(Row(*r))
                                                         for r in rows.source_experiments(src)])
            _opening(book, rows.source_expired(src), rows.source_lots(src), rows.source_members(src), opening_at, start)
            for pid, mid, kind, amount, at, category, refund_of, points, basis_points, branch in rows.source_history(src):
                m = book.members.get(mid)
                if m is not None:
                    book.add_purchase(m, pid, kind, amount, at, category, refund_of, points, basis_points, None, branch)
            book.flush()
            sales, _, refunds, _ = rows.source_sales(src)
            book.defer_indexes(sales + refunds)
            basis = rules.tier_basis
            vouchers: dict[str, list] = {}
            chunk: list = []

            def run(chunk):
                nonlocal other_refused, skipped
                book.flush(members=False)
                tiers.preload(book, [e[3][1] for e in chunk if e[1] == PURCHASE], basis)
                for _sort, _prio, kind, payload in chunk:
                    if kind == "sale" or kind == "refund":
                        pid, mid, _k, amount, at, category, refund_of, branch = payload
                        m = book.members.get(mid)
                        try:
                            if m is None:
                                raise LoyaltyError(M_("member {mid} is not in the history", mid=mid))
                            if kind == "sale":
                                record_sale(book, m, pid, at, amount, category, branch)
                            else:
                                record_refund(book, m, pid, at, amount, refund_of, None, branch)
                        except LoyaltyError:
                            skipped += 1  # a sale this programme refuses (too many points), or its refund
                    elif kind == "join":  # members.enrol's signup bonus, under the programme replayed
                        mid, joined_on = payload
                        earns, variant = book.earning_rules(mid, joined_on)  # an experiment's variant, for its members
                        if earns.signup_bonus:
                            eid = book.credit(book.members[mid], joined_on + "T00:00:00", "signup", earns.signup_bonus,
                                              note="signup bonus")
                            if variant:
                                book.mark_variant(eid, 1, variant)
                    elif kind == "expire":
                        book.expire_all(payload)
                    elif kind == "recalc":
                        _recalc(book, scratch, tx, payload, ledger_rows, tiers)
                    elif kind == "tier":  # `tiers set` as the shop ran it: applied at once, a floor until its date
                        at, mid, to_tier, until = payload
                        m = book.members.get(mid)
                        if m is not None:
                            book.record_tier_change(m, at, to_tier, "manual", until=until)
                            m.floor_tier, m.floor_until = (to_tier, until) if until else (None, None)
                    elif kind == "merge":
                        _merge(book, tx, *payload)
                    else:
                        other_refused += _entry(book, payload, refused, vouchers)

            for event in _events(src, start, last):
                chunk.append(event)
                if len(chunk) >= CHUNK:
                    run(chunk)
                    chunk = []
            run(chunk)
            book.flush()
            totals = rows.scratch_totals(tx, eve)
            members = rows.scratch_members(tx, eve)
    finally:
        src.close()
        scratch.close()
    return {"totals": totals, "members": members, "refused": refused, "other_refused": other_refused,
            "skipped": skipped}


def _opening(book, expired, lots, members, at: str, start: str) -> None:
    """Each member's lots open on the eve (what was left of them, their expiry dates, the sale they
    came from) as one opening credit, and a balance below zero as one debit: the same state in
    both replays. Dated the eve's last second: before the period, so no figure counts them.

    First, for a sale refunded in the period, the points of it expiry wrote off before the period:
    credited to a lot of that sale and written off at once, so that the refund finds them expired
    (SPEC §6: it never takes them again) as it did in the shop."""
    from itertools import groupby

    lapsed = values.add_days(start, -2)
    for mid, purchase_id, points in expired:
        m = book.members.get(mid)
        if m is None or points <= 0:
            continue
        _, first_lot = book.credit_entries(m, at, [("award", points, None, "opening balance: expired")],
                                           lots=[(lapsed, points, purchase_id)], origin="opening")
        book.write_off_new_lapsed(m, at, first_lot)

    for mid, group in groupby(lots, key=lambda lot: lot[0]):
        m = book.members.get(mid)
        if m is None:
            continue
        found = [(expires_on, remaining, purchase_id) for _, expires_on, remaining, purchase_id in group]
        book.credit_entries(m, at, [("award", sum(r for _, r, _ in found), None, "opening balance")],
                            lots=found, origin="opening")
    for mid, *_rest, balance, _tier in members:
        m = book.members.get(mid)
        if m is not None and balance < 0 and m.balance == 0:
            book.debit(m, at, "adjust", -balance, note="opening balance", allow_negative=True, written_off=True)


def _recalc(book, scratch, tx, as_of: str, ledger_rows, tiers) -> None:
    """`tiers recalc` as of the date, on the scratch database; the book's members then hold what it
    decided (it writes members' rows, which the book would otherwise overwrite at its next flush)."""
    book.flush()
    result = tiers.recalc(scratch, as_of, ran_at=as_of)
    ids = {c["member_id"] for c in result["changes"]}
    ids.update(mid for mid, m in book.members.items() if m.floor_tier is not None)
    for mid, _month, _ref, tier, since, floor, until, *_ in ledger_rows.member_states(tx, sorted(ids)):
        m = book.members[mid]
        m.tier, m.tier_since, m.floor_tier, m.floor_until = tier, since, floor, until


def _merge(book, tx, dup: str, keep: str, at: str) -> None:
    """`members merge DUP --into KEEP` at its moment, as hygiene.merge does it: DUP's lapsed points
    written off, its open lots (what this replay left it) moved to KEEP whole, KEEP's first sale
    DUP's if KEEP had none, KEEP the higher of the two tiers; DUP an alias from then on (a refund of
    its sale reverses from KEEP, a recalc passes it by)."""
    from loyalty_cli.ledger import move_lots
    from loyalty_cli.store import hygiene as hygiene_rows
    from loyalty_cli.store import simulate as rows

    d, k = book.members.get(dup), book.members.get(keep)
    if d is None or k is None:
        return
    book.write_off_lapsed(d, at)
    book.flush(members=False)
    lots = hygiene_rows.open_lots(tx, dup)
    if lots:
        move_lots(book, d, k, at, lots, note=f"merge of {dup} into {keep}")
    if k.first_sale is None and d.first_sale is not None:
        k.first_sale = d.first_sale
        book.touch(k)
    rules = book.rules_for(at)
    if rules.rank(d.tier) > rules.rank(k.tier):
        book.record_tier_change(k, at, d.tier, "merge", ref=dup)
    for m in book.members.values():
        if m.member_id == dup or m.merged_into == dup:
            m.merged_into = keep
    book.flush(members=False)
    rows.mark_merged(tx, dup, keep)


def _entry(book, entry, refused: dict, vouchers: dict) -> int:
    """Replay one ledger entry a person made (redeem, award, adjust, transfer, voucher cancel);
    return 1 when a debit other than a redemption had to be refused.

    A pooled redemption (households) is its entries, one per member whose points it took, sharing
    one ref: each is replayed as that member's redemption. Its voucher names the first entry only:
    the others are known by their ref, so that cancelling the voucher gives each member back the
    lots their own entry took (`vouchers`: (code, member) → lots taken; code: pooled ref → code)."""
    mid, at, kind, points, ref, note, by, voucher = entry
    m = book.members.get(mid)
    if m is None:
        return 0
    if kind == "redeem":
        code = voucher or (vouchers.get(ref) if ref else None)
        try:
            _, taken = book.debit(m, at, "redeem", -points, ref=ref, note=note, by=by)
        except LoyaltyError:
            count = refused.setdefault(mid, [0, 0])
            count[0] += 1
            count[1] -= points
            return 0
        if voucher and ref:
            vouchers[ref] = voucher  # the pooled redemption's other entries share this ref
        if code:
            vouchers[(code, mid)] = taken
        return 0
    if kind in ("award", "adjust") and points > 0:
        book.credit(m, at, kind, points, note=note, by=by)
        return 0
    if kind == "adjust":
        try:
            book.debit(m, at, "adjust", -points, note=note, by=by)
        except LoyaltyError:
            return 1
        return 0
    if kind == "transfer_out":
        receiver = book.members.get(ref)
        if receiver is None:
            return 0
        try:
            _, taken = book.debit(m, at, "transfer_out", -points, ref=ref, by=by)
        except LoyaltyError:
            return 1
        lots: dict = {}
        for _lot, expires_on, take in taken:
            lots[expires_on] = lots.get(expires_on, 0) + take
        book.credit(receiver, at, "transfer_in", -points, ref=mid, by=by, lots=list(lots.items()))
        return 0
    if kind == "voucher_cancel":
        taken = vouchers.pop((ref, mid), None)
        if taken is None:  # its redemption was refused in this replay: nothing comes back
            return 0
        lots = {}
        for _lot, expires_on, take in taken:
            lots[expires_on] = lots.get(expires_on, 0) + take
        _, first_lot = book.credit_entries(m, at, [("voucher_cancel", points, ref, note)], by=by,
                                           lots=list(lots.items()))
        book.write_off_new_lapsed(m, at, first_lot)
    return 0


# -- the whole simulation (in the command's process) -------------------------------------------
def simulate(store_factory, proposal, proposal_source: str, start: str | None, last: str | None, today: str,
             members_wanted: bool = False) -> dict:
    """Simulate `proposal` (validated Rules) against the programme in force on `today`.

    `store_factory()` opens the shop's database for reading (store.simulate.open_read_only); it
    is closed before the replays start. Returns the comparison (see `compare`), and with
    `members_wanted` each member's figures under "members"."""
    from loyalty_cli import reports
    from loyalty_cli.program import load_programme
    from loyalty_cli.store import simulate as rows

    folder = Path(tempfile.mkdtemp(prefix="loyalty-simulate-"))  # 0700: scratch copies hold the shop's history
    try:
        shop = store_factory()
        try:
            with shop.read() as tx:
                programme = load_programme(tx)
                baseline = programme.for_date(today)
                last_purchase = rows.last_purchase_day(tx)
                if last_purchase is None:
                    raise LoyaltyError(M_("there is nothing to simulate: no sale or refund is recorded yet (import the till's sales first: loyalty purchases import FILE)"))
                start, last = period(last_purchase, start, last)
                lifetime = "lifetime" in (baseline.tier_window, proposal.tier_window)
                window_start = values.EARLIEST if lifetime else values.add_months(start, -PERIOD_MONTHS)
            source = folder / "source.db"
            dest = rows.create_source(source)
            try:
                counts = rows.extract(shop, dest, start, values.end_of_day(last), last, window_start)
            finally:
                dest.close()
            if not counts["purchases"]:
                raise LoyaltyError(M_("there is nothing to simulate: no sale or refund is dated from {start} to {last} (the last one is dated {last_purchase})", start=start, last=last, last_purchase=last_purchase))
            segments = _segments(reports.rfm(shop, last)["columns"])
            contacts = None
            if members_wanted:
                with shop.read() as tx:
                    contacts = rows.contacts(tx)
        finally:
            shop.close()
        results = _run_both(folder, source, [baseline.to_json(), proposal.to_json()], start, last)
        for result in results:
            if "error" in result:
                raise LoyaltyError(result["error"])
        src = rows.open_source(source)
        try:
            sales = rows.source_sales(src)
        finally:
            src.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = compare(baseline, proposal, results[0], results[1], segments, sales, programme.currency_decimals)
    report.update({"from": start, "to": last, "baseline": M_("the programme in force on {today}", today=today),
                   "proposal": proposal_source})
    if members_wanted:
        report["members"] = _member_rows(results, segments, contacts)
    return report


def _run_both(folder: Path, source: Path, programmes: list[str], start: str, last: str) -> list[dict]:
    """The two replays at once, one process each (the machine's second core does the second). A
    Ctrl-C, or a replay that fails, stops both: nothing is left running."""
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    workers = []
    try:
        for i, doc in enumerate(programmes):
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_worker, args=(send, str(source), str(folder / f"scratch-{i}.db"), doc,
                                                        start, last), daemon=True)
            process.start()
            send.close()
            workers.append((process, receive))
        results = []
        for process, receive in workers:
            try:
                results.append(receive.recv())
            except EOFError:
                process.join()
                raise LoyaltyError(M_("a replay of the simulation stopped unexpectedly (exit code {exitcode}); nothing was changed", exitcode=process.exitcode)) from None
        return results
    finally:
        for process, receive in workers:
            receive.close()
            if process.is_alive():
                process.terminate()
            process.join()


def _worker(send, source: str, scratch: str, doc: str, start: str, last: str) -> None:
    """One replay in its own process; what it found (or why it failed) goes back through `send`."""
    from loyalty_cli.store.simulate import SCRATCH_ERRORS

    try:
        result = replay(source, scratch, doc, start, last)
    except SCRATCH_ERRORS as exc:  # the scratch database failing (a full disk, most likely): not the shop's
        result = {"error": M_("the simulation's scratch database in {parent} failed ({exc}); nothing was changed (a full disk? TMPDIR chooses where scratch databases go)", parent=Path(scratch).parent, exc=str(exc)),
                  "exit_code": 1}
    except KeyboardInterrupt:
        return
    send.send(result)
    send.close()


def _segments(columns: tuple) -> dict[str, str]:
    """{member_id: RFM segment at the end of the period} of the members with a sale in its window."""
    return dict(zip(columns[0], columns[7]))


# -- the comparison ---------------------------------------------------------------------------------
ISSUED_ORDER = ("earn", "bonus", "signup", "referral", "award", "adjust")


def _figures(rules, result: dict, net_sales: int) -> dict:
    """One replay's figures (points, money as minor units, shares as numbers)."""
    from loyalty_cli.reports import points_value

    by_rule: dict[str, int] = {}
    reversed_ = expired = redeemed = 0
    for kind, rule, credited, debited in result["totals"]:
        if kind == "bonus":
            by_rule[rule] = by_rule.get(rule, 0) + credited
        elif kind in ("earn", "signup", "referral"):
            by_rule[kind] = by_rule.get(kind, 0) + credited
        elif kind in ("award", "adjust"):
            by_rule["manual"] = by_rule.get("manual", 0) + credited
        if kind == "reversal":
            reversed_ += debited
        elif kind == "expire":
            expired += debited
        elif kind == "redeem":
            redeemed += debited
    issued = sum(by_rule.values())
    tiers = {lvl.name: 0 for lvl in rules.levels}
    outstanding = 0
    for _mid, balance, tier, *_ in result["members"]:
        tiers[tier] = tiers.get(tier, 0) + 1
        outstanding += max(balance, 0)
    refused = result["refused"].values()
    cost = points_value(issued - reversed_, rules)
    return {
        "points_issued": issued,
        "points_issued_by_rule": by_rule,
        "points_reversed": reversed_,
        "points_expired": expired,
        "points_redeemed": redeemed,
        "redemptions_refused": sum(c for c, _ in refused),
        "points_refused": sum(p for _, p in refused),
        "other_debits_refused": result["other_refused"],
        "outstanding_points": outstanding,
        "liability": points_value(outstanding, rules),
        "points_cost": cost,
        "points_cost_share": cost / net_sales if net_sales > 0 else None,
        "redemption_rate": redeemed / issued if issued > 0 else None,
        "tiers": tiers,
    }


def compare(baseline, proposal, base: dict, prop: dict, segments: dict[str, str], sales: tuple,
            decimals: int) -> dict:
    """Both replays' figures, their change, the tier moves and the split by RFM segment."""
    n_sales, sales_amount, n_refunds, refund_amount = sales
    net = sales_amount - refund_amount
    a = _figures(baseline, base, net)
    b = _figures(proposal, prop, net)
    change = {}
    for key, value in a.items():
        other = b[key]
        if isinstance(value, dict):
            keys = list(value) + [k for k in other if k not in value]
            change[key] = {k: other.get(k, 0) - value.get(k, 0) for k in keys}
        elif value is None or other is None:
            change[key] = None
        else:
            change[key] = other - value
    for key in ("points_issued_by_rule", "tiers"):
        for k in change[key]:
            a[key].setdefault(k, 0)
            b[key].setdefault(k, 0)
    tiers_a = {mid: tier for mid, _b, tier, *_ in base["members"]}
    up = down = 0
    by_segment: dict[str, dict] = {}
    for mid, _balance, tier, issued, *_ in prop["members"]:
        segment = segments.get(mid, NO_SEGMENT)
        s = by_segment.get(segment)
        if s is None:
            s = by_segment[segment] = {"segment": segment, "members": 0, "points_issued_baseline": 0,
                                       "points_issued_proposed": 0, "moved_up": 0, "moved_down": 0}
        s["members"] += 1
        s["points_issued_proposed"] += issued
        before, after = baseline.rank(tiers_a.get(mid, "")), proposal.rank(tier)  # each programme's own levels
        if after > before:
            up += 1
            s["moved_up"] += 1
        elif after < before:
            down += 1
            s["moved_down"] += 1
    for mid, _balance, _tier, issued, *_ in base["members"]:
        segment = segments.get(mid, NO_SEGMENT)
        if segment in by_segment:
            by_segment[segment]["points_issued_baseline"] += issued
    from loyalty_cli.reports import SEGMENTS

    order = {name: i for i, name in enumerate((*SEGMENTS, NO_SEGMENT))}
    split = sorted(by_segment.values(), key=lambda s: order.get(s["segment"], len(order)))
    for s in split:
        s["points_issued_change"] = s["points_issued_proposed"] - s["points_issued_baseline"]
    return {"sales": n_sales, "sales_amount": sales_amount, "refunds": n_refunds, "refund_amount": refund_amount,
            "net_sales": net, "members_count": len(prop["members"]), "figures": {"baseline": a, "proposed": b, "change": change},
            "tier_moves": {"up": up, "down": down}, "segments": split, "decimals": decimals,
            "skipped": {"baseline": base["skipped"], "proposed": prop["skipped"]},
            "tier_names": {"baseline": [lvl.name for lvl in baseline.levels],
                           "proposed": [lvl.name for lvl in proposal.levels]}}


def _member_rows(results: list[dict], segments: dict[str, str], contacts) -> list[dict]:
    """Per member: both replays' tier, points issued, balance and refused redemptions."""
    base, prop = results
    refused_a, refused_b = base["refused"], prop["refused"]
    out = []
    for (mid, balance_a, tier_a, issued_a, *_), (_m, balance_b, tier_b, issued_b, *_) in zip(base["members"],
                                                                                               prop["members"]):
        email, phone = contacts.get(mid, (None, None))
        out.append({"member_id": mid, "email": email, "phone": phone, "segment": segments.get(mid, NO_SEGMENT),
                    "tier_baseline": tier_a, "tier_proposed": tier_b,
                    "points_issued_baseline": issued_a, "points_issued_proposed": issued_b,
                    "points_issued_change": issued_b - issued_a,
                    "balance_baseline": balance_a, "balance_proposed": balance_b,
                    "balance_change": balance_b - balance_a,
                    "redemptions_refused_baseline": refused_a.get(mid, [0, 0])[0],
                    "redemptions_refused_proposed": refused_b.get(mid, [0, 0])[0]})
    return out
