"""`db check`'s replay of the chain: every block verified, every record compared with its row, and
the current state rebuilt from the records and compared with the tables that hold it.

One pass over the blocks, in order (store.chain explains what a block is):

- links: each block's hash is recomputed over the previous hash, its id and its body, and its
  signature (HMAC) checked with the chain key when there is one; the counts each block carries
  must follow from the block before.
- history: each record of the blocks in scope (all of them with `full`, else those after the
  last seal) is compared with the row it was written as: the ledger, lots, lot uses, purchases
  and tier changes by position or key. A row changed, missing, or added beside the chain is
  named, with the block that recorded it.
- current state: members (their rights: enrolment, joined date, referrer, erasure), rewards
  (cost, stock, retirement), vouchers (issued, used, cancelled), programme versions, settings,
  recalc runs, feedback scores: rebuilt from every record of the chain and compared whole.
  (Balances, lots' remaining points, tiers and the summaries are compared with the ledger by the
  other checks of `checks.py`, whose ledger this replay has just proved to be the chain's.)

Pure: the rows come from `store.chain` and `store.checks`; nothing here reads a clock or a file.
"""

from __future__ import annotations

from loyalty_cli.errors import Problem
from loyalty_cli.store import chain as chain_rows
from loyalty_cli.store import checks as check_rows
from loyalty_cli.i18n import M_, joined as each_shown

LIMIT = 100
# Kinds whose records rebuild small tables of current state: their blocks are read whatever the scope.
STATE_KINDS = ("members", "member_edits", "erasures", "program_versions", "settings", "rewards", "reward_edits",
               "reward_stock", "reward_retirements", "vouchers", "voucher_closes", "recalc_runs", "feedback",
               "experiments", "experiment_stops", "member_merges", "consent_changes", "campaign_exports")
# Kinds compared row by row for the blocks in scope (the big tables).
HISTORY_KINDS = ("ledger", "lots", "lot_uses", "purchases", "tier_changes", "variant_entries")
PERSONAL = ("name", "email", "phone", "birthday")


class Replay:
    """The outcome of one pass: problems, the members whose rows the blocks in scope touched, and
    how far the chain goes (for `db check`'s summary and `db seal`)."""

    def __init__(self):
        self.problems: list[Problem] = []
        self.touched: set[str] = set()
        self.days: set[str] = set()
        self.blocks = 0
        self.first_entry: int | None = None  # the first ledger entry in scope
        self.notes: list[str] = []
        self.purchase_store: bool | None = None  # whether purchases has its store column (m010), once asked

    def problem(self, message: str, member_id: str | None = None, check: str = "chain") -> None:
        if sum(1 for p in self.problems if p.check == check) < LIMIT:
            self.problems.append(Problem(message, check=check, member_id=member_id))


def replay(tx, key: bytes | None, since: int = 0) -> Replay:
    """Verify the chain and replay it; `since`: compare the history of blocks after this one only
    (0: every block, `db check --full`). `key`: the chain key, or None (`--no-key`: the signatures
    are not checked)."""
    r = Replay()
    if not chain_rows.has_chain(tx):
        return r
    signer = _Signatures(r, key)
    state = _State()
    prev, expected_id = chain_rows.GENESIS, 1
    positions: dict[str, int] = {}
    # Where each kind's records start in the blocks after `since` (their rows' positions), from the
    # counts of block `since`, so that blocks before it need not be parsed, only hashed.
    __, __, __, last_counts = chain_rows.head(tx)
    if since:
        positions = dict(chain_rows.counts_of(tx, since) or {})
    state_kinds = set(STATE_KINDS)
    firsts = _FirstSales()
    for block_id, kinds, signed_by, counts_text, stored_hash, mac, body in chain_rows.blocks(tx):
        if block_id != expected_id:
            r.problem(M_("chain blocks {expected_id:,}..{block_id:,} are missing (deleted behind the tool's back)", expected_id=expected_id, block_id=block_id - 1))
        expected_id = block_id + 1
        try:
            h = chain_rows.block_hash(prev, block_id, kinds, signed_by, counts_text, body)
        except (TypeError, AttributeError):  # a NULL or a number written where text belongs
            h = None
        if h != stored_hash:
            r.problem(M_("chain block {block_id:,} does not hash to what is stored: it, or a block before it, was changed behind the tool's back", block_id=block_id))
        prev = stored_hash
        in_scope = block_id > since
        if not in_scope and state_kinds.isdisjoint(str(kinds).strip(",").split(",")):
            # Before the seal, with no record of current state: its signature is all there is to check.
            if key is not None:
                signer.check(block_id, signed_by, stored_hash, mac, None)
            continue
        try:
            doc = chain_rows.body_of(body)
            rows, block_counts = doc["rows"], chain_rows.parse_counts(counts_text)
            if not isinstance(rows, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            r.problem(M_("chain block {block_id:,} is not a block loyalty wrote (its body cannot be read)", block_id=block_id))
            continue
        if key is not None:
            signer.check(block_id, signed_by, stored_hash, mac, doc.get("rekey"))
        if in_scope:
            for kind, records in rows.items():
                held = positions.get(kind, 0) + chain_rows.size(kind, records)
                if held != block_counts.get(kind):
                    r.problem(M_("chain block {block_id:,} counts {get} {kind} records but the blocks up to it hold {held}", block_id=block_id, get=block_counts.get(kind), kind=kind, held=held))
        if "adopted" in doc:
            firsts.adopted_through = block_id if doc["adopted"] else 0
        for kind, records in rows.items():
            if kind == "purchases" and since == 0:
                firsts.take(records, block_id)
            elif kind == "member_merges" and since == 0:
                firsts.merged(records, block_id)
            if kind in STATE_KINDS:
                state.take(kind, records, block_id)
            elif in_scope and kind == "ledger":
                _compare_ledger(tx, r, records, positions.get(kind, 0), block_id, since > 0)
            elif in_scope and kind in HISTORY_KINDS:
                _compare_history(tx, r, kind, records, positions.get(kind, 0), block_id)
            if in_scope:
                positions[kind] = positions.get(kind, 0) + chain_rows.size(kind, records)
    r.blocks = expected_id - 1
    signer.finish()
    _compare_counts(tx, r, last_counts, full=since == 0)
    state.compare(tx, r)
    from loyalty_cli import hygiene  # the members' aliases and consent, rebuilt from their records

    hygiene.compare_replayed(tx, r, state.positional)
    if since == 0:
        firsts.compare(tx, r, state.members)
    _compare_floors(tx, r, state.members)
    return r


def _compare_floors(tx, r: Replay, members: dict) -> None:
    """A tier floor (members.floor_tier through floor_until: a tier a recalc never goes below) is only
    ever given by `tiers set --until`, whose tier change the chain records: a floor must be the one
    the member's latest manual tier change gave (a recalc may clear it once lapsed, never set it).
    Else a floor written by hand made every later recalc grant that tier, through the tool itself."""
    if not members or not check_rows.has_column(tx, "members", "floor_tier"):
        return
    have = check_rows.rows_by_key(tx, "members", ("member_id", "floor_tier", "floor_until"), "member_id",
                                  sorted(members))
    floors = {mid: row[1:] for mid, row in have.items() if row[1] is not None or row[2] is not None}
    if not floors:
        return
    latest: dict[str, tuple] = {}
    for n, (mid, to_tier, reason, until) in sorted(check_rows.rows_by_position(
            tx, "tier_changes", ("member_id", "to_tier", "reason", "until"), 1, None).items()):
        if reason == "manual" and mid in floors:
            latest[mid] = (n, to_tier, until)
    for mid, (floor_tier, floor_until) in sorted(floors.items()):
        given = latest.get(mid)
        if given is not None and given[2] is not None and (given[1], given[2]) == (floor_tier, floor_until):
            continue
        what = (M_("tier change row {given_0} gave {show} through {show2}", given_0=given[0], show=_show(given[1]), show2=_show(given[2])) if given is not None
                else M_("no manual tier change gave it one"))
        r.problem(M_("member {mid}: floor_tier is {show} through {show2} but {what}: changed behind the tool's back (a recalc would grant that tier)", mid=mid, show=_show(floor_tier), show2=_show(floor_until), what=what), mid)


class _FirstSales:
    """A member's first sale (members.first_sale) is a right: while it is NULL their next sale earns the
    first-purchase multiplier and their referrer the referral bonus. The tool sets it to the first
    sale of a positive amount it records for the member, so it is the first such record of the chain
    (`db check --full`, which reads every purchase record). Rows the chain adopted from a database
    made before it are recorded in the order of their ids, not as they were written: there the first
    sale must only be a sale of the member's."""

    def __init__(self):
        self.first: dict[str, tuple[str, int]] = {}  # member -> (purchase id, block)
        self.adopted_through = 0  # the last block of an adoption (migration m009), 0: none

    def take(self, records: list, block_id: int) -> None:
        first = self.first
        for pid, mid, kind, amount, *__ in records:
            if kind == "sale" and amount > 0 and mid not in first:
                first[mid] = (pid, block_id)

    def merged(self, records: list, block_id: int) -> None:
        """`members merge DUP --into KEEP`: a KEEP without a first sale takes DUP's (one customer has one
        first purchase; hygiene.merge sets it so)."""
        for dup, keep, *_ in records:
            if keep not in self.first and dup in self.first:
                self.first[keep] = self.first[dup]

    def compare(self, tx, r: Replay, members: dict) -> None:
        if not check_rows.has_column(tx, "members", "first_sale"):
            return
        have = check_rows.rows_by_key(tx, "members", ("member_id", "first_sale"), "member_id", sorted(members))
        lenient = {mid: row[1] for mid, row in have.items() if row[1] is not None
                   and mid in self.first and self.first[mid][1] <= self.adopted_through}
        sales = check_rows.rows_by_key(tx, "purchases", ("purchase_id", "member_id", "kind", "amount"), "purchase_id",
                                       sorted(set(lenient.values())))
        for mid in sorted(have):
            value = have[mid][1]
            want = self.first.get(mid)
            if want is None:
                if value is not None:
                    r.problem(M_("member {mid}: first_sale is {show} but the chain recorded no sale of theirs: changed behind the tool's back", mid=mid, show=_show(value)), mid)
            elif mid in lenient:
                sale = sales.get(value)
                if sale is None or sale[1] != mid or sale[2] != "sale" or not sale[3] > 0:
                    r.problem(M_("member {mid}: first_sale is {show}, which is not one of their sales: changed behind the tool's back", mid=mid, show=_show(value)), mid)
            elif value != want[0]:
                r.problem(M_("member {mid}: first_sale is {show} but the chain recorded their first sale {show2} (block {want_1:,}): changed behind the tool's back (a NULL earns the first-purchase bonus again)", mid=mid, show=_show(value), show2=_show(want[0]), want_1=want[1]), mid)


class _Signatures:
    """Each block's signature checked with the key given. A block signed with another key is a
    problem, unless a later block signed with this key accepted it (`loyalty db rekey --yes`, the
    owner's word after the key was lost): it is then noted as not verified. A key changed by a
    write that found no key file is not such a word (anyone can run loyalty with a key of their own)."""

    def __init__(self, r: Replay, key: bytes | None):
        from loyalty_cli import keys

        self.r, self.key = r, key
        self.kid = keys.key_id(key) if key is not None else None
        self.foreign: list[tuple[int, str]] = []
        self.last_rekey = 0

    def check(self, block_id: int, signed_by, stored_hash: str, mac: str, rekey) -> None:
        if signed_by != self.kid:
            self.foreign.append((block_id, signed_by))
        elif chain_rows.block_mac(self.key, stored_hash) != mac:
            self.r.problem(M_("chain block {block_id:,} is not signed by the chain key: it was forged or rewritten behind the tool's back", block_id=block_id))
        elif isinstance(rekey, dict) and isinstance(rekey.get("through"), int):
            self.last_rekey = block_id  # `loyalty db rekey`: the owner, holding this key, accepted the blocks before

    def finish(self) -> None:
        before = [(b, k) for b, k in self.foreign if b < self.last_rekey]
        runs: list[list] = []  # [first, last, key] of consecutive blocks signed with one other key
        for block_id, signed_by in self.foreign:
            if block_id > self.last_rekey:
                if runs and runs[-1][1] + 1 == block_id and runs[-1][2] == signed_by:
                    runs[-1][1] = block_id
                else:
                    runs.append([block_id, block_id, signed_by])
        for first, last, signed_by in runs:
            which = M_("chain block {first:,} is", first=first) if first == last else M_("chain blocks {first:,}..{last:,} are", first=first, last=last)
            self.r.problem(M_("{which} signed with key {signed_by}, not with the chain key given (key {kid}): written without your key, or check with that key's file (LOYALTY_KEY_FILE)", which=which, signed_by=signed_by, kid=self.kid))
        if before:
            keys_ = ", ".join(sorted({str(k) for __, k in before}))
            self.r.notes.append(M_("chain blocks {before_0_0:,}..{before_0:,} ({n_before:,}) were signed with key {keys}, accepted by 'loyalty db rekey' in block {last_rekey:,}: their signatures were not checked (the anchors cover what was sealed)", before_0_0=before[0][0], before_0=before[-1][0], n_before=len(before), keys=keys_, last_rekey=self.last_rekey))


# -- history: rows compared with their records ---------------------------------------------------
def _compare_ledger(tx, r: Replay, records: list, start: int, block_id: int, incremental: bool) -> None:
    """The entries a block wrote: each range [first, last, hash of last] must be there whole, and
    entry `last` must still have the hash the block recorded (each entry's hash covers its fields
    and the entry before: checks.check_hash_chain recomputes them, from the first entry in scope)."""
    expected = start + 1
    for rec in records:
        try:
            first, last, last_hash = rec
        except (TypeError, ValueError):
            r.problem(M_("chain block {block_id:,} is not a block loyalty wrote (a ledger record is not a range)", block_id=block_id))
            continue
        if first != expected:
            r.problem(M_("chain block {block_id:,} records entries from {first:,} but the blocks before end at entry {expected:,}", block_id=block_id, first=first, expected=expected - 1))
        expected = last + 1
        if r.first_entry is None:
            r.first_entry = first
        if not incremental:  # whole, and signed as recorded: nothing more to look at (the usual case)
            count, last_hash_found = check_rows.entry_range(tx, first, last)
            if count == last - first + 1 and last_hash_found == last_hash:
                continue
        seen, found_hash = first, None
        for eid, member_id, day, h in check_rows.entries_between(tx, first, last):
            r.touched.add(member_id)
            r.days.add(day)
            for missing in range(seen, eid):
                r.problem(M_("entry {missing} (ledger) is missing: the chain recorded it in block {block_id:,}; it was deleted behind the tool's back", missing=missing, block_id=block_id))
            seen = eid + 1
            found_hash = h
        for missing in range(seen, last + 1):
            r.problem(M_("entry {missing} (ledger) is missing: the chain recorded it in block {block_id:,}; it was deleted behind the tool's back", missing=missing, block_id=block_id))
        if seen == last + 1 and found_hash != last_hash:
            r.problem(M_("entries {first:,}..{last:,} (ledger) are not the ones chain block {block_id:,} recorded: entry {last:,}'s hash is not the one it signed (entries were rewritten and their hashes recomputed behind the tool's back)", first=first, last=last, block_id=block_id))


def _compare_history(tx, r: Replay, kind: str, records: list, start: int, block_id: int) -> None:
    table, columns, keyed = chain_rows.RECORDS[kind]
    if kind == "purchases":
        columns, records = _purchase_records(tx, r, columns, records)
    if "member_id" in columns:  # a lot use's member is its entry's, recorded beside it
        member_at = columns.index("member_id")
        r.touched.update(rec[member_at] for rec in records)
    if kind == "purchases":
        r.days.update(rec[4][:10] for rec in records)
    if keyed == "position":
        found = check_rows.rows_by_position(tx, table, columns, start + 1, start + len(records))
        if list(found) == list(range(start + 1, start + len(records) + 1)) and \
                list(found.values()) == list(map(tuple, records)):
            return  # the usual case, compared at C speed
        for n, rec in enumerate(records, start + 1):
            row = found.get(n)
            _compare_row(r, kind, table, columns, f"row {n}" if kind in ("lot_uses", "tier_changes") else
                         f"{n}", rec, row, block_id)
    else:
        key_at = columns.index(keyed)
        found = check_rows.rows_by_key(tx, table, columns, keyed, [rec[key_at] for rec in records])
        if len(found) == len(records) and \
                all(found.get(rec[key_at]) == tuple(rec) for rec in records):
            return
        for rec in records:
            _compare_row(r, kind, table, columns, str(rec[key_at]), rec, found.get(rec[key_at]), block_id)


def _purchase_records(tx, r: Replay, columns: tuple, records: list) -> tuple[tuple, list]:
    """The purchase columns to compare and the records fitted to them: a block written before
    migration m010 records ten fields (its purchases had no branch: a missing store is NULL), and a
    backup made before it has no store column (compared without it)."""
    if r.purchase_store is None:
        r.purchase_store = check_rows.has_column(tx, "purchases", "store")
    n = len(columns) if r.purchase_store else len(columns) - 1
    if all(len(rec) == n for rec in records):
        return columns[:n], records
    return columns[:n], [list(rec[:n]) + [None] * (n - len(rec)) for rec in records]


_NAMES = {"ledger": M_("entry"), "lots": M_("lot"), "lot_uses": M_("lot use"), "purchases": M_("purchase"),
          "tier_changes": M_("tier change"), "variant_entries": M_("variant marker of entry")}


def _compare_row(r: Replay, kind, table, columns, label, rec, row, block_id) -> None:
    if row is not None and tuple(rec) == row:
        return
    what = M_("{kind} {label}", kind=_NAMES.get(kind) or _LABEL.get(kind, table), label=label)
    member = rec[columns.index("member_id")] if "member_id" in columns else None
    if row is None:
        r.problem(M_("{what} ({table}) is missing: the chain recorded it in block {block_id:,}; it was deleted behind the tool's back", what=what, table=table, block_id=block_id), member)
        return
    changed = [M_("{c} is {shown_0} but the chain recorded {shown_1}", c=c, shown_0=shown[0], shown_1=shown[1]) for i, (c, a, b) in enumerate(zip(columns, rec, row))
               if a != b for shown in (_differ(b, a),)]
    r.problem(M_("{what} ({table}): {join} (block {block_id:,}): changed behind the tool's back", what=what, table=table, join=each_shown('; ', changed), block_id=block_id), member)


def _differ(have, recorded) -> tuple[str, str]:
    """Two values that differ, as shown: long texts (a programme's rules) from a little before the
    first character where they differ, so the change itself is in the message."""
    if not (isinstance(have, str) and isinstance(recorded, str)) or max(len(have), len(recorded)) <= 60:
        return _show(have), _show(recorded)
    at = next((n for n, (x, y) in enumerate(zip(have, recorded)) if x != y), min(len(have), len(recorded)))
    start = max(0, at - 20)
    return _excerpt(have, start), _excerpt(recorded, start)


def _excerpt(text: str, start: int, width: int = 50) -> str:
    part = repr(text[start:start + width])
    return ("..." if start else "") + part + ("..." if start + width < len(text) else "")


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else ("NULL" if value is None else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _compare_counts(tx, r: Replay, counts: dict, full: bool) -> None:
    """Every chained table holds as many rows as the chain recorded: rows added beside it are named."""
    present = check_rows.table_names(tx)  # a backup made before a migration lacks its tables (m011's)
    for kind, (table, columns, keyed) in chain_rows.RECORDS.items():
        if table is None or kind not in HISTORY_KINDS or table not in present:
            continue
        recorded = counts.get(kind, 0)
        numbered = keyed in ("position", "range")  # rows numbered 1, 2, 3 … (rowid)
        have, last = check_rows.count_rows(tx, table, numbered)
        if numbered and last > recorded:
            for rowid, member in check_rows.rows_after(tx, table, recorded, LIMIT):
                label = f"row {rowid}" if kind in ("lot_uses", "tier_changes") else str(rowid)
                r.problem(M_("{names} {label} ({table}) is not in the chain: it was added behind the tool's back", names=_NAMES[kind], label=label, table=table),
                          member)
        elif have > recorded and numbered:  # rows missing below and added above the count: --full names them
            r.problem(M_("{table} has {have:,} more rows than the chain recorded: rows were added behind the tool's back", table=table, have=have - recorded))
        elif have > recorded:
            extra = chain_rows.keys_not_chained(tx, kind, keyed, LIMIT)
            r.problem(M_("{table} has {have:,} more rows than the chain recorded: rows were added behind the tool's back ({join}{v_})", table=table, have=have - recorded, join=', '.join(map(str, extra)), v_=M_(' and more') if have - recorded > len(extra) else ''))
        elif have < recorded and not full:
            r.problem(M_("{table} has {recorded:,} fewer rows than the chain recorded: rows were deleted behind the tool's back (loyalty db check --full names them)", table=table, recorded=recorded - have))


# -- current state rebuilt from the records ------------------------------------------------------
class _State:
    """The small tables of current state as the chain's records make them."""

    def __init__(self):
        self.members: dict[str, dict] = {}
        self.rewards: dict[str, dict] = {}
        self.vouchers: dict[str, dict] = {}
        self.settings: dict[str, tuple] = {}
        self.positional: dict[str, list] = {"erasures": [], "program_versions": [], "recalc_runs": [], "feedback": [],
                                            "member_merges": [], "consent_changes": [], "campaign_exports": []}
        from loyalty_cli.experiment_checks import ChainedExperiments

        self.experiments = ChainedExperiments()

    def take(self, kind: str, records: list, block_id: int) -> None:
        if kind == "members":
            for mid, joined, ref, tier, since in records:
                self.members[mid] = {"joined_on": joined, "referred_by": ref, "tier": tier, "tier_since": since,
                                     "erased_at": None, "erased_by": None, "block": block_id}
        elif kind == "member_edits":
            for mid, field, value in records:
                if mid in self.members and field in chain_rows.CHAINED_MEMBER_FIELDS:
                    self.members[mid][field] = value
        elif kind == "erasures":
            for rec in records:
                self.positional[kind].append((rec, block_id))
                mid, at, by = rec
                if mid in self.members:
                    self.members[mid].update(erased_at=at, erased_by=by)
        elif kind == "rewards":
            for code, name, cost, stock in records:
                self.rewards[code] = {"name": name, "cost": cost, "stock": stock, "retired_at": None, "block": block_id}
        elif kind == "reward_edits":
            for code, name, cost, stock in records:
                if code in self.rewards:
                    reward = self.rewards[code]
                    for field, value in (("name", name), ("cost", cost), ("stock", stock)):
                        if value is not None:
                            reward[field] = value
        elif kind == "reward_stock":
            for code, change in records:
                if code in self.rewards and self.rewards[code]["stock"] is not None:
                    self.rewards[code]["stock"] += change
        elif kind == "reward_retirements":
            for code, at in records:
                if code in self.rewards:
                    self.rewards[code]["retired_at"] = at
        elif kind == "vouchers":
            for code, mid, reward, points, entry, status, issued in records:
                self.vouchers[code] = {"member_id": mid, "reward_code": reward, "points": points,
                                       "redeem_entry": entry, "status": status, "issued_at": issued,
                                       "closed_at": None, "block": block_id}
        elif kind == "voucher_closes":
            for code, status, at in records:
                if code in self.vouchers:
                    self.vouchers[code].update(status=status, closed_at=at)
        elif kind == "settings":
            for key, value in records:
                self.settings[key] = (value, block_id)
        elif kind in ("experiments", "experiment_stops"):
            self.experiments.take(kind, records, block_id)
        else:
            self.positional[kind].extend((rec, block_id) for rec in records)

    def compare(self, tx, r: Replay) -> None:
        self._members(tx, r)
        self._keyed(r, "reward", check_rows.reward_rows(tx), self.rewards, ("name", "cost", "stock", "retired_at"))
        self._keyed(r, "voucher", check_rows.voucher_rows(tx), self.vouchers,
                    ("member_id", "reward_code", "points", "redeem_entry", "status", "issued_at", "closed_at"))
        self.experiments.compare(tx, r)
        have = dict(check_rows.setting_rows(tx))
        for key, (value, block_id) in self.settings.items():
            if key not in have:
                r.problem(M_("setting {key!r} is missing: the chain recorded it in block {block_id:,}", key=key, block_id=block_id))
            elif have[key] != value:
                r.problem(M_("setting {key!r} is {show} but the chain recorded {show2} (block {block_id:,}): changed behind the tool's back", key=key, show=_show(have[key]), show2=_show(value), block_id=block_id))
        for key in sorted(set(have) - set(self.settings)):
            r.problem(M_("setting {key!r} is not in the chain: it was added behind the tool's back", key=key))
        tables = None
        for kind, records in self.positional.items():
            table, columns, __ = chain_rows.RECORDS[kind]
            if not records and kind in ("member_merges", "consent_changes", "campaign_exports"):
                tables = check_rows.table_names(tx) if tables is None else tables
                if table not in tables:
                    continue  # a backup made before migration m013: nothing of the kind to compare
            rows = check_rows.rows_by_position(tx, table, columns, 1, None)
            for n, (rec, block_id) in enumerate(records, 1):
                _compare_row(r, kind, table, columns, f"row {n}", rec, rows.pop(n, None), block_id)
            for n, row in sorted(rows.items()):
                member = row[columns.index("member_id")] if "member_id" in columns else None
                r.problem(M_("{label} row {n} ({table}) is not in the chain: it was added behind the tool's back", label=_LABEL[kind], n=n, table=table),
                          member)

    def _members(self, tx, r: Replay) -> None:
        changed = set()  # members whose tier a tier change sets (compared by checks.check_tiers)
        changed.update(check_rows.members_with_tier_changes(tx))
        seen = set()
        for row in check_rows.member_rows(tx):
            mid, joined, ref, tier, since, erased_at, erased_by, *personal = row
            seen.add(mid)
            want = self.members.get(mid)
            if want is None:
                r.problem(M_("member {mid} is not in the chain: it was added behind the tool's back", mid=mid), mid)
                continue
            wrong = [M_("{field} is {show} but the chain recorded {show2}", field=field, show=_show(have), show2=_show(want[field]))
                     for field, have in (("joined_on", joined), ("referred_by", ref), ("erased_at", erased_at),
                                         ("erased_by", erased_by)) if have != want[field]]
            if mid not in changed:
                wrong += [M_("{field} is {show} but the chain recorded {show2}", field=field, show=_show(have), show2=_show(want[field]))
                          for field, have in (("tier", tier), ("tier_since", since)) if have != want[field]]
            if want["erased_at"] is not None:
                wrong += [M_("{field} holds personal data again after the erasure", field=field) for field, value
                          in zip(PERSONAL, personal) if value is not None]
            if wrong:
                r.problem(M_("member {mid}: {join} (block {block:,}): changed behind the tool's back", mid=mid, join=each_shown('; ', wrong), block=want['block']),
                          mid)
        for mid in sorted(set(self.members) - seen):
            r.problem(M_("member {mid} is missing: the chain recorded it in block {block:,}", mid=mid, block=self.members[mid]['block']), mid)

    @staticmethod
    def _keyed(r: Replay, name: str, rows, want: dict, fields) -> None:
        seen = set()
        for code, *values in rows:
            seen.add(code)
            expected = want.get(code)
            if expected is None:
                r.problem(M_("{name} {code} is not in the chain: it was added behind the tool's back", name=name, code=code))
                continue
            wrong = [M_("{field} is {show} but the chain recorded {show2}", field=field, show=_show(have), show2=_show(expected[field]))
                     for field, have in zip(fields, values) if have != expected[field]]
            if wrong:
                r.problem(M_("{name} {code}: {join} (block {block:,}): changed behind the tool's back", name=name, code=code, join=each_shown('; ', wrong), block=expected['block']), expected.get("member_id"))
        for code in sorted(set(want) - seen):
            r.problem(M_("{name} {code} is missing: the chain recorded it in block {block:,}", name=name, code=code, block=want[code]['block']))


_LABEL = {"erasures": M_("erasure"), "program_versions": M_("programme version"), "recalc_runs": M_("recalc run"),
          "feedback": M_("feedback"), "member_merges": M_("merge"), "consent_changes": M_("consent change"),
          "campaign_exports": M_("campaign export")}
