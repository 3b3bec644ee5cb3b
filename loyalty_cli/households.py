"""Households ("1+N", issue 20): a family whose members earn on their own cards, redeem from one pool
and, under `tiers.pooling = "household"`, reach a tier together.

- A household has a NAME (1-40 letters, digits, '-', '_', '.' or "'"; no spaces; matched without
  regard to case, like member ids) and a head, who is one of its members. A member is in at most
  one household at a time; each membership keeps the moment it began and ended (never deleted).
- Removing the head is refused while others remain unless `--new-head` names one of them; the
  head removed last leaves the household empty: it is closed (kept, shown, never added to
  again; a family starting over creates a household under a new name).
- An erased member cannot join a household, and no longer counts in one: their points are not in
  the pool and their spend not in the combined value (they can still be removed).
- The pool is the sum of the current members' balances. A pooled redemption (`points redeem M
  N --household`) spends the open lots of every current member, earliest expiry first; among
  lots expiring the same day the oldest credit first (lowest lot id, whoever holds it); never
  a lot not yet spendable (earn.pending_days). It writes one redeem entry per member whose lots
  it used, all with the ref `household:NAME:FIRST_ENTRY`, and is refused whole when the pool is
  short. Every member keeps their own ledger and lots; one who leaves takes their lots along.
- Tiers under pooling: a member of a household at a moment qualifies on the combined value
  (spend, or points under basis = "points") in the window of everyone in the household at that
  moment, their sales from before they joined included (the window is the member's history,
  not the membership's). A sale that lifts the combined value over a threshold upgrades every
  current member below it; `tiers recalc` moves them all alike. Joining or leaving changes
  nothing until the next sale or recalc.

Everything is recorded on the chain (store.households names the records), and `db check`
rebuilds the households and memberships from it, and verifies that every pooled redemption took
only lots of members who were in the household at that moment (`check`).
"""

from __future__ import annotations

import re

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, NotFound, Problem, UsageError
from loyalty_cli.i18n import M_, _, joined as each_shown
from loyalty_cli.ids import active_member, erased, existing_member, resolve_member
from loyalty_cli.store import households as rows

NAME = re.compile(r"[^\W_][\w.'-]{0,39}")
NAME_RULE = M_("1-40 letters, digits, '-', '_', '.' or \"'\", starting with a letter or digit (no spaces)")
SORTS = ("name", "created", "members", "pool")


def parse_name(text: str) -> str:
    """A household name as typed: trimmed, NFC; UsageError (exit 2) when it breaks NAME_RULE."""
    name = values.id_lookup(text)
    if not NAME.fullmatch(name):
        raise UsageError(M_("a household name must be {rule}; got {text!r}", rule=NAME_RULE, text=text))
    return name


def _key(name: str) -> str:
    return values.member_key(name)


def _household(tx, typed: str):
    """(id, name, head, created_at) of the household a typed name names; NotFound (exit 1) saying how
    to find or make one."""
    name = values.id_lookup(typed, M_("household name"))
    found = rows.find(tx, _key(name))
    if found is None:
        raise NotFound(M_("household {name} not found (see: loyalty households list; create it with: loyalty households create {shown} --head MEMBER)", name=name, shown=name or 'NAME'))
    return found


def _member_facts(tx, member_id: str):
    return rows.member_facts(tx, [member_id])[member_id]


def _may_join(tx, member_id: str, at: str) -> None:
    """Refuse a member who is in a household, or whose last membership ended after `at`, or who
    joined the shop after `at`'s date."""
    current = rows.current_of(tx, member_id)
    if current is not None:
        raise LoyaltyError(M_("member {member_id} is already in household {household} (since {since}); a member is in one household at a time: loyalty households remove {household} {member_id}", member_id=member_id, household=current[1], since=current[2][:10]))
    left = rows.last_left(tx, member_id)
    if left is not None and left[0] > at:
        raise LoyaltyError(M_("member {member_id} was in household {household} until {until}; --at {at} is before that (give a later --at)", member_id=member_id, household=left[1], until=left[0], at=at))
    joined_on = _member_facts(tx, member_id)[0]
    if at[:10] < joined_on:
        raise LoyaltyError(M_("member {member_id} joined the shop on {joined_on}; --at {at} is before that", member_id=member_id, joined_on=joined_on, at=at))


def create(store, name: str, head: str, at: str) -> dict:
    """`households create`: a new household with its head as its first member."""
    name = parse_name(name)
    with store.write() as tx:
        head = active_member(tx, head)
        found = rows.find(tx, _key(name))
        if found is not None:
            raise LoyaltyError(M_("household {name} already exists (see: loyalty households show {name}); choose another name", name=found[1]))
        _may_join(tx, head, at)
        household_id = rows.create(tx, name, _key(name), head, at)
        rows.join(tx, household_id, name, head, at)
    return {"name": name, "head": head, "created_at": at, "members": [head]}


def add(store, name: str, member_id: str, at: str) -> dict:
    """`households add`: a member joins from `at`."""
    with store.write() as tx:
        household_id, name, head, created_at = _household(tx, name)
        member_id = resolve_member(tx, member_id)
        if not rows.members_at(tx, household_id, "9999-12-31T23:59:59"):
            closed = max(left for _, _, left in rows.memberships(tx, household_id))
            raise LoyaltyError(M_("household {name} was closed on {closed} (its last member left); create a new household to pool again", name=name, closed=closed[:10]))
        member_id = active_member(tx, member_id)
        if at < created_at:
            raise LoyaltyError(M_("household {name} was created at {created_at}; --at {at} is before that", name=name, created_at=created_at, at=at))
        _may_join(tx, member_id, at)
        rows.join(tx, household_id, name, member_id, at)
        members = rows.members_at(tx, household_id, "9999-12-31T23:59:59")
    return {"name": name, "member_id": member_id, "joined_at": at, "head": head, "members": members}


def remove(store, name: str, member_id: str, at: str, new_head: str | None = None) -> dict:
    """`households remove`: the member leaves at `at` (keeping their lots). The head may leave only
    when `new_head` names another current member, or when no one else is left (the household closes)."""
    with store.write() as tx:
        household_id, name, head, _created = _household(tx, name)
        member_id = existing_member(tx, member_id)
        current = rows.members_at(tx, household_id, "9999-12-31T23:59:59")
        mine = [joined for mid, joined, left in rows.memberships(tx, household_id) if mid == member_id and left is None]
        if not mine:
            who = ", ".join(current) or "none"
            raise LoyaltyError(M_("member {member_id} is not in household {name} (its members: {who})", member_id=member_id, name=name, who=who))
        if at < mine[0]:
            raise LoyaltyError(M_("member {member_id} joined household {name} at {joined}; --at {at} is before that", member_id=member_id, name=name, joined=mine[0], at=at))
        used = rows.last_pooled_use(tx, member_id, name)
        if used is not None and at <= used:
            raise LoyaltyError(M_("household {name}'s redemption at {used} spent points of {member_id}'s; they can leave after it, not at {at}", name=name, used=used, member_id=member_id, at=at))
        others = [mid for mid in current if mid != member_id]
        if new_head is not None:
            new_head = resolve_member(tx, new_head)
            if member_id != head:
                raise UsageError(M_("--new-head is only for removing the head ({head}); {member_id} is not the head", head=head, member_id=member_id))
            if new_head not in others:
                raise LoyaltyError(M_("--new-head {new_head} must be one of household {name}'s other members ({others})", new_head=new_head, name=name,
                                      others=', '.join(others) or M_('none: it has no other members')))
            if _member_facts(tx, new_head)[6]:
                raise erased(new_head, _("the new head"))
        elif member_id == head and others:
            raise LoyaltyError(M_("member {member_id} is the head of household {name}: name the new head, e.g. loyalty households remove {name} {member_id} --new-head {other}", member_id=member_id, name=name, other=others[0]))
        rows.leave(tx, household_id, name, member_id, at)
        if new_head is not None:
            rows.set_head(tx, household_id, name, new_head, at)
            head = new_head
    return {"name": name, "member_id": member_id, "left_at": at, "head": head, "members": others,
            "closed": not others}


# -- reading -----------------------------------------------------------------------------------
def _pool(tx, ids: list[str], day: str) -> tuple[list[tuple[str, int]], int]:
    """[(member, balance as of `day`)] of the members not erased, and their sum: the pool."""
    from loyalty_cli.store.ledger import balance_as_of

    facts = rows.member_facts(tx, ids)
    balances = [(mid, balance_as_of(tx, mid, day)[0]) for mid in ids if not facts[mid][6]]
    return balances, sum(b for _, b in balances)


def summary(tx, member_id: str, day: str) -> dict | None:
    """The household a member is in at the end of `day`, for `members show` and `points balance`:
    {"name", "head", "members", "pool"} (the pool as of `day`), or None."""
    found = rows.household_at(tx, member_id, values.end_of_day(day))
    if found is None:
        return None
    household_id, name = found
    ids = rows.members_at(tx, household_id, values.end_of_day(day))
    _, pool = _pool(tx, ids, day)
    head = rows.find(tx, _key(name))[2]
    return {"name": name, "head": head, "members": ids, "pool": pool}


def show(store, name: str, as_of: str) -> dict:
    """`households show`: the household at the end of `as_of`: its members with their own balances and
    tiers, the pool, the combined qualifying value in the tier window and the tier it reaches, and
    every membership as recorded."""
    from loyalty_cli import tiers
    from loyalty_cli.ledger import Book
    from loyalty_cli.members import tier_on

    end = values.end_of_day(as_of)
    with store.read() as tx:
        household_id, name, head, created_at = _household(tx, name)
        ids = rows.members_at(tx, household_id, end)
        history = rows.memberships(tx, household_id)
        balances, pool = _pool(tx, ids, as_of)
        balance_of = dict(balances)
        facts = rows.member_facts(tx, ids)
        book = Book(tx)
        rules = book.rules_for(as_of)
        members, combined = [], 0
        for mid in ids:
            joined_on, tier, since, *_, gone = facts[mid]
            value = 0
            if not gone:
                value = tiers.qualifying_value(book, book.member(mid, active=False), rules, as_of)
                combined += value
            members.append({"member_id": mid, "head": mid == head,
                            "joined_at": next(j for m, j, left in history if m == mid and (left is None or left > end)),
                            "balance": balance_of.get(mid), "tier": tier_on(tx, mid, as_of, (tier, since), joined_on)[0],
                            "in_window": value, "erased": gone})
        closed = None if ids else max((left for _, _, left in history if left is not None), default=None)
    level = rules.qualifying_level(combined).name if ids else None
    return {"name": name, "head": head, "created_at": created_at, "closed_at": closed, "as_of": as_of,
            "members": members, "pool": pool, "pooling": rules.tier_pooling, "basis": rules.tier_basis,
            "combined_in_window": combined, "qualifies_for": level, "currency_decimals": rules.currency_decimals,
            "history": [{"member_id": m, "joined_at": j, "left_at": left} for m, j, left in history]}


def listing(store, as_of: str, sort: str = "name") -> list[dict]:
    """`households list`: every household (closed ones too) with its head, its members now and the
    pool as of `as_of`."""
    values.check_sort(sort, SORTS)
    end = values.end_of_day(as_of)
    out = []
    with store.read() as tx:
        for household_id, name, head, created_at, _count, last_left in rows.listing(tx):
            ids = rows.members_at(tx, household_id, end)
            _, pool = _pool(tx, ids, as_of)
            out.append({"name": name, "head": head, "members": len(ids), "pool": pool, "created_at": created_at,
                        "closed_at": None if ids else last_left})
    keys = {"name": lambda h: values.member_key(h["name"]), "created": lambda h: h["created_at"],
            "members": lambda h: -h["members"], "pool": lambda h: -h["pool"]}
    return sorted(out, key=keys[sort])


# -- pooled redemption -------------------------------------------------------------------------
def redeem(store, member_id: str, points: int | None, reward: str | None, at: str, by: str) -> dict:
    """`points redeem M --household`: spend from the pool of M's household (see the module)."""
    from loyalty_cli.ledger import Book
    from loyalty_cli.points import new_voucher_code, spend_terms
    from loyalty_cli.store import ledger as ledger_rows

    with store.write() as conn:
        member_id = resolve_member(conn, member_id)
        book = Book(conn)
        m = book.member(member_id)
        found = rows.household_at(conn, member_id, at)
        if found is None:
            raise LoyaltyError(M_("member {member_id} is not in a household at {at} (pool with: loyalty households add NAME {member_id}; or leave out --household to spend their own points)", member_id=member_id, at=at))
        household_id, name = found
        reward, points, note, stock = spend_terms(conn, points, reward)
        states = [book.member(mid, active=False) for mid in rows.members_at(conn, household_id, at)]
        states = [s for s in states if not s.erased]
        for s in states:  # lapsed points are written off before anything is spent, as for one member
            book.write_off_lapsed(s, at)
        book.flush(members=False)
        day = at[:10]
        lots = []  # (expiry, lot id, member, spendable points)
        for s in states:
            for lot_id, expires_on, remaining, available_on in ledger_rows.open_lots(conn, s.member_id):
                if available_on is None or available_on <= day:
                    lots.append((expires_on or ledger_rows.NEVER, lot_id, s, remaining))
        lots.sort(key=lambda lot: (lot[0], lot[1]))
        available = sum(lot[3] for lot in lots)
        if available < points:
            each = ", ".join(f"{s.member_id} {sum(lot[3] for lot in lots if lot[2] is s):,}" for s in states)
            raise LoyaltyError(M_("household {name} has {available:,} point{s} available ({each}), not enough for {points:,}", name=name, available=available, s='' if available == 1 else 's', each=each, points=points))
        shares: dict = {}  # member -> points, in the order their first lot is used
        need = points
        for _e, _lot, s, remaining in lots:
            if need == 0:
                break
            take = min(need, remaining)
            shares[s] = shares.get(s, 0) + take
            need -= take
        ref = rows.pooled_ref(name, book.next_id)
        note = f"pooled by {member_id}" + (f", {note}" if note else "")
        entries = []
        for s, take in shares.items():
            # The member's own earliest-expiring lots: the very ones planned above (a prefix of them).
            eid, _ = book.debit(s, at, "redeem", take, ref=ref, note=note, by=by, written_off=True)
            entries.append({"member_id": s.member_id, "points": take, "entry": eid})
        code = None
        if reward is not None:
            code = new_voucher_code(conn)
            book.flush()
            ledger_rows.issue_voucher(conn, code, member_id, reward, points, entries[0]["entry"], at,
                                      counted=stock is not None)
        book.flush()
        for e in entries:
            e["balance"] = book.members[e["member_id"]].balance
        pool = sum(s.balance for s in states)
    return {"member_id": member_id, "points": points, "balance": m.balance, "voucher": code, "household": name,
            "ref": ref, "entries": entries, "pool": pool}


def is_pooled(tx, entry_id: int) -> bool:
    """Whether a voucher's redeem entry belongs to a pooled redemption."""
    return (rows.ref_of(tx, entry_id) or "").startswith(rows.REF_PREFIX)


def cancel_pooled(tx, code: str, voucher, at: str, by: str) -> dict:
    """Cancel a voucher a pooled redemption paid for: each member whose points it took gets them back,
    into lots with the expiry dates they came from (lapsed ones written off at once), members who
    have left the household since included. Refused when one of them was erased since."""
    from loyalty_cli.ledger import Book
    from loyalty_cli.store import rewards as reward_rows

    book = Book(tx)
    returned, expired = [], 0
    for eid, mid, points in rows.entries_with_ref(tx, rows.ref_of(tx, voucher.redeem_entry)):
        s = book.member(mid)  # an erased member takes nothing back: the voucher stays as it is
        lots: dict = {}
        for expires_on, purchase_id, used in reward_rows.redeemed_lots(tx, eid):
            lots[(expires_on, purchase_id)] = lots.get((expires_on, purchase_id), 0) + used
        _, first_lot = book.credit_entries(s, at, [("voucher_cancel", -points, code, f"voucher {code} cancelled")],
                                           by=by, lots=[(e, n, pid) for (e, pid), n in lots.items()] or None,
                                           origin="voucher")
        expired += book.write_off_new_lapsed(s, at, first_lot)
        returned.append((s, -points))
    book.flush()
    reward_rows.close_voucher(tx, code, "cancelled", at)
    reward_rows.restock(tx, voucher.reward_code)
    redeemer = book.members.get(voucher.member_id)
    balance = redeemer.balance if redeemer is not None else None
    return {"code": code, "status": "cancelled", "member_id": voucher.member_id, "points_returned": voucher.points,
            "points_expired": expired, "balance": balance,
            "returned": [{"member_id": s.member_id, "points": n, "balance": s.balance} for s, n in returned]}


# -- tiers under tiers.pooling = "household" ---------------------------------------------------------
def _index(book):
    """Every membership, read once per book: ({member: [(household, joined, left)]}, {household:
    [(member, joined, left)]}). Households change only by their own commands, never inside a book."""
    index = getattr(book, "household_index", None)
    if index is None:
        by_member: dict = {}
        by_household: dict = {}
        for household_id, _name, mid, joined, left in rows.all_memberships(book.conn):
            by_member.setdefault(mid, []).append((household_id, joined, left))
            by_household.setdefault(household_id, []).append((mid, joined, left))
        index = book.household_index = (by_member, by_household)
    return index


def _fellows(book, member_id: str, at: str) -> list | None:
    """The MemberStates of everyone (not erased) in the member's household at the moment `at`, in id
    order, or None when the member is in none then."""
    by_member, by_household = _index(book)
    household_id = next((h for h, joined, left in by_member.get(member_id, ())
                         if joined <= at and (left is None or left > at)), None)
    if household_id is None:
        return None
    ids = sorted(mid for mid, joined, left in by_household[household_id] if joined <= at and (left is None or left > at))
    states = [book.member(mid, active=False) for mid in ids]
    return [s for s in states if not s.erased]


def combined_value(book, m, rules, date: str) -> int | None:
    """Under tiers.pooling = "household", the combined qualifying value of the member's household at
    the end of `date`; None when pooling is off or the member is in no household then."""
    if rules.tier_pooling != "household":
        return None
    from loyalty_cli import tiers

    fellows = _fellows(book, m.member_id, values.end_of_day(date))
    if not fellows:
        return None
    return sum(tiers.qualifying_value(book, s, rules, date) for s in fellows)


def upgrade_on_sale(book, m, rules, at: str, purchase_id: str) -> bool:
    """A sale by a household member under pooling: when the household's combined value reaches a
    level, every current member below it moves up (the sale's member first); returns False when the
    member is in no household at the sale (they qualify alone)."""
    from loyalty_cli import tiers

    fellows = _fellows(book, m.member_id, at)
    if fellows is None:
        return False
    level = rules.qualifying_level(sum(tiers.qualifying_value(book, s, rules, at) for s in fellows))
    for s in sorted(fellows, key=lambda s: s is not m):
        if rules.rank(level.name) > rules.rank(s.tier):
            book.record_tier_change(s, at, level.name, "purchase", ref=purchase_id)
    return True


def _groups_at(tx, end: str) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for household_id, _name, mid, joined, left in rows.all_memberships(tx):
        if joined <= end and (left is None or left > end):
            groups.setdefault(household_id, []).append(mid)
    return groups


def pooled_candidates(tx, rules, as_of: str, candidates: list[tuple]) -> list[tuple]:
    """`tiers recalc` under pooling: the candidates (member_id, tier, tier_since, floor_tier,
    floor_until, qualified) with every household member's `qualified` the level their household's
    combined value reaches (members erased, or joined after `as_of`, are left as they were)."""
    from loyalty_cli import tiers

    end = values.end_of_day(as_of)
    groups = _groups_at(tx, end)
    if not groups:
        return candidates
    first, last = tiers.window_bounds(rules, as_of)
    ids = [mid for mids in groups.values() for mid in mids]
    own = rows.qualifying_values(tx, rules.tier_basis, first, values.end_of_day(last), ids)
    facts = rows.member_facts(tx, ids)
    pooled = {}
    for mids in groups.values():
        active = [mid for mid in mids if not facts[mid][6]]
        level = rules.qualifying_level(sum(own.get(mid, 0) for mid in active)).name
        pooled.update((mid, level) for mid in active)
    out = [row for row in candidates if row[0] not in pooled]
    for mid, level in sorted(pooled.items()):
        joined_on, tier, since, floor_tier, floor_until, _erased_at, _gone = facts[mid]
        if joined_on <= as_of and (level != tier or floor_tier is not None):
            out.append((mid, tier, since, floor_tier, floor_until, level))
    return out


def undone_values(tx, rules, held: list[tuple[str, str]], as_of: str, found: dict[str, int]) -> dict[str, int]:
    """`tiers recalc` under pooling, for held members (whose hold would keep them up): the value on their
    upgrade date counting refunds since is their household's combined one (each member's in that
    window), SPEC §6's "the hold does not protect an upgrade that refunds have undone", together."""
    from loyalty_cli import tiers
    from loyalty_cli.store import tiers as tier_rows

    end = values.end_of_day(as_of)
    groups = _groups_at(tx, end)
    if not groups:
        return found
    group_of = {mid: mids for mids in groups.values() for mid in mids}
    facts = rows.member_facts(tx, list(group_of))
    out = dict(found)
    for member_id, since in held:
        mids = [mid for mid in group_of.get(member_id, ()) if not facts[mid][6]]
        if member_id not in mids:
            continue
        first, last = tiers.window_bounds(rules, since)
        windows = [(mid, first or values.EARLIEST, values.end_of_day(last)) for mid in mids]
        out[member_id] = sum(tier_rows.values_since_upgrade(tx, rules.tier_basis, windows, end).values())
    return out


# -- db check --------------------------------------------------------------------------------------
def check(tx) -> list[Problem]:
    """Households as the chain recorded them (rebuilt from its records and compared), and every pooled
    redemption's entries and the lots they took: of members who were in that household at that moment."""
    if not rows.has_tables(tx):
        return []
    problems = _replay(tx)
    spans: dict[str, list] = {}
    households = {name: household_id for household_id, name, *_ in rows.household_rows(tx)}
    for _id, household_id, mid, joined, left in rows.membership_rows(tx):
        spans.setdefault((household_id, mid), []).append((joined, left))

    def member_then(household_id, mid, at) -> bool:
        return any(joined <= at and (left is None or left > at) for joined, left in spans.get((household_id, mid), ()))

    pooled = rows.pooled_entries(tx)
    if not pooled:
        return problems
    households_of = {}  # entry -> (household id, what the messages call it, at, the entry's member)
    for eid, entry_member, at, ref in pooled:
        name = ref[len(rows.REF_PREFIX):].rpartition(":")[0]
        household_id = households.get(name)
        what = M_("entry {eid} (redeem, {at}) is a pooled redemption of household {name}", eid=eid, at=at[:10], name=name)
        if household_id is None:
            problems.append(Problem(M_("{what}, which does not exist", what=what), check="households", member_id=entry_member))
            continue
        households_of[eid] = (household_id, what, at, entry_member)
        if not member_then(household_id, entry_member, at):
            problems.append(Problem(M_("{what}, but it debits {entry_member}, who was not in the household then (a forged pooled debit)", what=what, entry_member=entry_member), check="households", member_id=entry_member))
    for eid, lot_id, lot_member, used in rows.lots_used_by(tx, list(households_of)):
        household_id, what, at, entry_member = households_of[eid]
        if lot_member != entry_member and not member_then(household_id, lot_member, at):
            problems.append(Problem(M_("{what}, but it took {used:,} points of lot {lot_id} of {lot_member}, who was not in the household then (a forged pooled debit)", what=what, used=used, lot_id=lot_id, lot_member=lot_member), check="households",
                                    member_id=lot_member))
    return problems[:100]


def _replay(tx) -> list[Problem]:
    """The households and memberships the chain's records make, compared with the tables."""
    from loyalty_cli.store import chain as chain_rows

    if not chain_rows.has_chain(tx):
        return []  # a backup from before the chain: the chain's own replay has nothing to compare either
    problems: list[Problem] = []
    made: list[list] = []          # [name, head, created_at, block], by position (the id)
    joined: list[list] = []        # [name, member, joined_at, left_at, block], by position
    by_name: dict[str, list] = {}
    for block_id, body in rows.chain_records(tx):
        try:
            records = chain_rows.body_of(body)["rows"]
        except (ValueError, KeyError, TypeError):
            continue  # an unreadable block is reported by the chain's own replay
        for name, head, at in records.get("households", ()):
            made.append([name, head, at, block_id])
            by_name[name] = made[-1]
        for name, mid, at in records.get("household_members", ()):
            joined.append([name, mid, at, None, block_id])
        for name, mid, at in records.get("household_leaves", ()):
            row = next((r for r in reversed(joined) if r[0] == name and r[1] == mid and r[3] is None), None)
            if row is None:
                problems.append(Problem(M_("chain block {block_id:,} ends a membership of {mid} in household {name} that no block began", block_id=block_id, mid=mid, name=name), check="households", member_id=mid))
            else:
                row[3], row[4] = at, block_id
        for name, mid, _at in records.get("household_heads", ()):
            if name in by_name:
                by_name[name][1], by_name[name][3] = mid, block_id
    have = {row[0]: row[1:] for row in rows.household_rows(tx)}
    names = {household_id: row[0] for household_id, row in have.items()}
    for n, (name, head, created_at, block_id) in enumerate(made, 1):
        row = have.pop(n, None)
        if row is None:
            problems.append(Problem(M_("household {name} is missing: the chain recorded it in block {block_id:,}", name=name, block_id=block_id),
                                    check="households"))
            continue
        differ = [M_("{field} is {found} but the chain recorded {want}", field=field, found=_shown(found), want=_shown(want)) for field, found, want in
                  (("name", row[0], name), ("name_key", row[1], values.member_key(name)), ("head", row[2], head),
                   ("created_at", row[3], created_at)) if found != want]
        if differ:
            problems.append(Problem(M_("household {name}: {differ} (block {block_id:,}): changed behind the tool's back", name=name, differ=each_shown('; ', differ), block_id=block_id), check="households"))
    for n, row in sorted(have.items()):
        problems.append(Problem(M_("household row {n} ({name}) is not in the chain: it was added behind the tool's back", n=n, name=row[0]), check="households"))
    found_rows = {row[0]: row[1:] for row in rows.membership_rows(tx)}
    for n, (name, mid, at, left, block_id) in enumerate(joined, 1):
        row = found_rows.pop(n, None)
        label = M_("household membership row {n} (household_members)", n=n)
        if row is None:
            problems.append(Problem(M_("{label} is missing: the chain recorded {mid} joining {name} in block {block_id:,}", label=label, mid=mid, name=name, block_id=block_id), check="households", member_id=mid))
            continue
        differ = [M_("{field} is {found} but the chain recorded {want}", field=field, found=_shown(found), want=_shown(want)) for field, found, want in
                  (("household", names.get(row[0], row[0]), name), ("member_id", row[1], mid),
                   ("joined_at", row[2], at), ("left_at", row[3], left)) if found != want]
        if differ:
            problems.append(Problem(M_("{label}: {differ} (block {block_id:,}): changed behind the tool's back", label=label, differ=each_shown('; ', differ), block_id=block_id), check="households", member_id=mid))
    for n, row in sorted(found_rows.items()):
        problems.append(Problem(M_("household membership row {n} (household_members) is not in the chain: it was added behind the tool's back", n=n), check="households", member_id=row[1]))
    return problems


def _shown(value) -> str:
    return "NULL" if value is None else repr(value) if isinstance(value, str) else str(value)


# -- members merge ---------------------------------------------------------------------------------
def follow_merge(tx, dup: str, keep: str, at: str, by: str) -> dict:
    """Household membership follows a merge (`members merge DUP --into KEEP`, hygiene.MERGE_HOOKS),
    inside the merge's transaction, every change recorded on the chain as `households add/remove`
    record theirs. A merged pair is one customer, who can be in one household:

    - DUP in a household, KEEP in none: KEEP takes DUP's place from `at` (and is its head if DUP was);
    - both in the same household: DUP leaves (KEEP becomes the head if DUP was);
    - KEEP in another household: KEEP stays where they are and DUP leaves its household; if DUP was
      its head, the head passes to the longest-standing remaining member (earliest joined, then id);
      if DUP was alone in it, it closes. (KEEP's household is the one the shop kept: the same rule
      as the rest of the merge, where KEEP's record wins.)

    Refused (LoyaltyError, the merge writes nothing) when DUP's points were spent by a pooled
    redemption at or after `at`, or KEEP left a household after `at` (the merge would make
    memberships overlap): both mean a merge dated before what was recorded since. Returns
    {"household": what changed, or None}."""
    current = rows.current_of(tx, dup)
    if current is None:
        return {"household": None}
    household_id, name, _joined = current
    head = rows.find(tx, _key(name))[2]
    used = rows.last_pooled_use(tx, dup, name)
    if used is not None and at <= used:
        raise LoyaltyError(M_("household {name}'s redemption at {used} spent points of {dup}'s; merge {dup} after "
                              "it, not at {at}", name=name, used=used, dup=dup, at=at))
    theirs = rows.current_of(tx, keep)
    rows.leave(tx, household_id, name, dup, at)
    change = {"name": name, "left": dup, "joined": None, "head": head, "closed": False}
    if theirs is None:
        left = rows.last_left(tx, keep)
        if left is not None and left[0] > at:
            raise LoyaltyError(M_("member {keep} was in household {household} until {left}; a merge at {at} would "
                                  "put them in household {name} before that (merge at a later --at)",
                                  keep=keep, household=left[1], left=left[0], at=at, name=name))
        rows.join(tx, household_id, name, keep, at)
        change["joined"] = keep
        if head == dup:
            rows.set_head(tx, household_id, name, keep, at)
            change["head"] = keep
    elif theirs[0] == household_id:
        if head == dup:
            rows.set_head(tx, household_id, name, keep, at)
            change["head"] = keep
    elif head == dup:
        remaining = rows.current_members_by_standing(tx, household_id)
        if remaining:
            rows.set_head(tx, household_id, name, remaining[0], at)
            change["head"] = remaining[0]
        else:
            change["closed"] = True
    return {"household": change}


def export_section(tx, member_id: str) -> list[dict]:
    """`members export`: every household membership of the member, current and past, in the order
    they began: the household, when they joined and left (None: still in it), and whether they are
    its head now."""
    return [{"household": name, "joined_at": joined, "left_at": left, "head": left is None and head == member_id}
            for name, joined, left, head in rows.memberships_of(tx, member_id)]


def _register() -> None:
    from loyalty_cli import hygiene

    if follow_merge not in hygiene.MERGE_HOOKS:
        hygiene.MERGE_HOOKS.append(follow_merge)
    hygiene.EXPORT_SECTIONS["household"] = export_section


_register()
