"""Members: enrol, edit, look up, list, upsert from import rows, erase personal data."""

from __future__ import annotations

import secrets
from contextlib import ExitStack

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, NotFound, UsageError
from loyalty_cli.ids import active_member, erased, resolve_member
from loyalty_cli.ledger import Book, MemberState
from loyalty_cli.store.ledger import balance_as_of, dated_after, entries_after, pending_as_of
from loyalty_cli.store import feedback as feedback_rows
from loyalty_cli.store import members as member_rows
from loyalty_cli.store import tiers as tier_rows
from loyalty_cli.i18n import M_, _

PROFILE_FIELDS = member_rows.PROFILE_FIELDS
SORT_KEYS = tuple(member_rows.LIST_ORDER)  # `members list --sort`


def new_member_id() -> str:
    """A random member id, for a member enrolled without one (`L` and eight digits)."""
    return f"L{secrets.randbelow(10**8):08d}"


def _generate_id(tx, rows=None) -> str:
    while True:
        mid = (rows.candidate_id() if rows is not None else None) or new_member_id()
        if not (rows or member_rows).key_taken(tx, values.member_key(mid)):
            return mid


def check_email_free(tx, email: str | None, member_id: str | None, rows=None) -> None:
    """An email belongs to one member at most. (`rows`, here and below: where member rows are looked
    up, as in ids.resolve_member; None: the database.)"""
    if email is None:
        return
    holder = (rows or member_rows).holder_of_email(tx, email)
    if holder is not None and holder != member_id:
        raise LoyaltyError(M_("that email already belongs to member {holder}", holder=holder))


def check_referrer(tx, referrer: str, rows=None) -> None:
    """A referrer must be enrolled and not erased (an erased member takes no new activity)."""
    found = (rows or member_rows).standing(tx, referrer)
    if found is None:
        raise NotFound(M_("member {referrer} (the referrer) not found", referrer=referrer))
    if found.erased_at:
        raise erased(referrer, _("the referrer"))


def import_match(tx, member_id: str | None, email: str | None, rows=None) -> str | None:
    """The member an import row names, by id when it has one (already resolved), else by email;
    None when it names nobody yet. An erased member is refused: erased members take no new activity."""
    found = (rows or member_rows).match_for_import(tx, member_id, email)
    if found is None:
        return None
    if found[1]:
        raise erased(found[0])
    return found[0]


def change_profile(tx, member_id: str, changes: dict, rows=None) -> bool:
    """Change an enrolled member's profile fields (None values stay as they are): the one update
    path of `members edit` and `members import`. A referrer (already resolved to a stored id) must
    be another, active member; an email must be nobody else's. Returns whether anything changed."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "referred_by" in changes:
        if changes["referred_by"] == member_id:
            raise LoyaltyError(M_("member {member_id} cannot refer themself", member_id=member_id))
        check_referrer(tx, changes["referred_by"], rows)
    check_email_free(tx, changes.get("email"), member_id, rows)
    lookups = rows or member_rows
    if not changes or tuple(changes.values()) == tuple(lookups.profile_values(tx, member_id, changes)):
        return False
    lookups.update(tx, member_id, changes)
    return True


def enrol(book: Book, *, member_id: str | None, name: str | None, email: str | None = None, phone: str | None = None,
          birthday: str | None = None, joined_on: str, referred_by: str | None = None, rows=None) -> MemberState:
    """Insert a member (tier: the lowest level) and write the signup bonus dated `joined_on`.
    `rows`: where member rows are looked up and inserted (store.members.ImportLookups); None: the database."""
    tx = book.conn
    lookups = rows or member_rows
    if member_id is None:
        member_id = _generate_id(tx, rows)
    else:
        existing = resolve_member(tx, member_id, alias=False, rows=rows)  # SPEC §4: `m0042` is `M0042`, never a second member
        if existing in book.members or lookups.exists(tx, existing):
            same = "" if existing == member_id else _(" (ids match without regard to case: {member_id} is {existing})").format(member_id=member_id, existing=existing)
            raise LoyaltyError(M_("member {existing} already exists{same} (change it with: loyalty members edit {existing} …)", existing=existing, same=same))
    if referred_by is not None:
        referred_by = resolve_member(tx, referred_by, "--referred-by", rows=rows)
        if referred_by == member_id:
            raise LoyaltyError(M_("member {member_id} cannot refer themself", member_id=member_id))
        check_referrer(tx, referred_by, rows)
    check_email_free(tx, email, member_id, rows)
    rules = book.rules_for(joined_on)
    tier = rules.levels[0].name
    lookups.insert(tx, member_id, name, email, phone, birthday, joined_on, referred_by, tier,
                       values.member_key(member_id))
    m = MemberState(member_id, birthday[5:7] if birthday else None, referred_by, tier, joined_on, None, None, 0, None, False)
    book.add_member_state(m)
    earns, variant = book.earning_rules(member_id, joined_on)  # an experiment's variant, for its members
    if earns.signup_bonus:
        eid = book.credit(m, joined_on + "T00:00:00", "signup", earns.signup_bonus, note="signup bonus")
        if variant:
            book.mark_variant(eid, 1, variant)
    return m


def add(store, consent: dict | None = None, consent_at: str | None = None, by: str | None = None, **fields) -> dict:
    """`members add`: enrol one member; returns the profile. `consent`: {channel: bool} answers given at
    the counter at `consent_at` (hygiene.set_consent), recorded by `by`."""
    with store.write() as tx:
        book = Book(tx)
        m = enrol(book, **fields)
        book.flush()
        if consent:
            from loyalty_cli import hygiene

            hygiene.set_consent(tx, m.member_id, consent, consent_at or fields["joined_on"], "counter", by)
        return {"member_id": m.member_id, "balance": m.balance, "tier": m.tier}


def edit(store, member_id: str, changes: dict, consent: dict | None = None, consent_at: str | None = None,
         by: str | None = None) -> dict:
    """`members edit`: change profile fields (None values are left as they are) and consent answers
    ({channel: bool}, recorded with source "edit" at `consent_at` by `by`); returns the member's
    profile fields after the change."""
    changes = {k: v for k, v in changes.items() if v is not None}
    consent = {k: v for k, v in (consent or {}).items() if v is not None}
    with store.write() as tx:
        member_id = active_member(tx, member_id)
        if not changes and not consent:
            raise UsageError(M_("nothing to change: give at least one of --name, --email, --phone, --birthday, --joined, "
                                "--referred-by, --consent-email, --consent-sms"))
        if "referred_by" in changes:
            changes["referred_by"] = resolve_member(tx, changes["referred_by"], "--referred-by")
        if changes:
            change_profile(tx, member_id, changes)
        if consent:
            from loyalty_cli import hygiene

            hygiene.set_consent(tx, member_id, consent, consent_at, "edit", by)
        row = member_rows.profile(tx, member_id)
    return {k: getattr(row, k) for k in ("member_id", *PROFILE_FIELDS)}


def profile(store, member_id: str, as_of: str | None, today: str) -> dict:
    """`members show`: profile, tier held on the date, balance, expiring points, progress to the next
    tier. `as_of` None: the tier held now, and everything else as of `today`."""
    from loyalty_cli import tiers as tiers_mod

    with store.read() as tx:
        member_id = resolve_member(tx, member_id, alias=False)  # a merged member's own record, said to be merged
        row = member_rows.profile(tx, member_id)
        if row is None:
            raise NotFound.member(member_id)
        book = Book(tx)
        date = as_of or today
        rules = book.rules_for(date)  # the version in force that day (a later one may be loaded ahead)
        # The tier held now, unless it was reached on a date still to come (--allow-future): then
        # the one held on the date, like every as-of figure.
        if as_of is None and (row.tier_since or "")[:10] <= today:
            tier, since = row.tier, row.tier_since
        else:
            tier, since = tier_on(tx, member_id, date, (row.tier, row.tier_since), row.joined_on)
        m = book.member(member_id, active=False)
        value = tiers_mod.qualifying_value(book, m, rules, date)
        spend = value if rules.tier_basis == "spend" else tiers_mod.qualifying_value(book, m, rules, date, "spend")
        from loyalty_cli import households

        household = households.summary(tx, member_id, date)
        pooled = households.combined_value(book, m, rules, date)  # tiers.pooling: the household qualifies together
        value = value if pooled is None else pooled
        balance, expiring = balance_as_of(tx, member_id, date)  # as of today by default, like every report
        # of those, points not yet spendable (earn.pending_days)
        pending = pending_as_of(tx, member_id, date) if book.programme.holds_points_back else []
        from loyalty_cli import hygiene

        consent, alias = hygiene.consent_of(tx, member_id), hygiene.alias_facts(tx, member_id)
        rank = rules.rank(tier)
        nxt = rules.levels[rank + 1] if 0 <= rank + 1 < len(rules.levels) else None
        if rank < 0:
            nxt = next((lvl for lvl in rules.levels if lvl.min > value), None)
        return {
            "member_id": row.member_id, "name": row.name, "email": row.email, "phone": row.phone,
            "birthday": row.birthday, "joined_on": row.joined_on, "referred_by": row.referred_by, "tier": tier,
            "tier_since": since, "floor_tier": row.floor_tier, "floor_until": row.floor_until,
            "erased": row.erased_at is not None,
            "balance": balance, "expiring": expiring, "pending": pending,
            "spend_in_window": spend,
            "points_in_window": value if rules.tier_basis == "points" else None,
            "basis": rules.tier_basis,
            "next_tier": nxt.name if nxt else None,
            "to_next_tier": max(nxt.min - value, 0) if nxt else None,
            "currency_decimals": rules.currency_decimals,
            "household": household, "pooled_in_window": pooled,
            "consent": consent, **alias,
        }


def tier_on(tx, member_id: str, date: str, current: tuple[str, str], joined_on: str) -> tuple[str, str]:
    """(tier, since): the tier a member held at the end of a date and the day they got it, from the
    recorded changes (`current`: the tier and since-date held now; before any change: since joining).

    The last change *recorded* among those dated up to the date: a backdated `tiers set` recorded
    after an upgrade is what the member holds, as `members.tier` says (SPEC §3: the ledger's order
    is the order things are recorded; dates say which of them count as of a day)."""
    last = tier_rows.last_change_by(tx, member_id, values.end_of_day(date))
    if last:
        return last[0], last[1][:10]
    first = tier_rows.first_from_tier(tx, member_id)
    return (first, joined_on) if first else current


def listing(store, *, tier: str | None = None, search: str | None = None, sort: str = "id",
            limit: int | None = None, as_of: str | None = None, merged: bool = False) -> tuple[list[dict], int]:
    """`members list`: matching members (sorted by one of SORT_KEYS, then id); also how many match.
    A member merged into another is an alias, not a member in its own right: listed only with
    `merged`, and then every row says whom it was merged into ("merged_into", None for the others).

    Balances are as of the end of `as_of` (None: after every entry), as the dashboard and
    `report liability` count them: entries dated after it (--allow-future) do not count yet."""
    values.check_sort(sort, SORT_KEYS)
    with store.read() as tx, ExitStack() as stack:
        if tier:
            known = {name.casefold() for name in member_rows.tiers_held(tx)}
            programme = Book(tx).programme
            for rules in [programme.default] + [r for __, r in programme.versions]:
                known |= {lvl.name.casefold() for lvl in rules.levels}
            if tier.casefold() not in known:
                raise UsageError(M_("--tier {tier!r} is not a tier (the tiers: loyalty tiers list)", tier=tier))
        balances_after = None
        if as_of is not None and dated_after(tx, as_of):
            stack.enter_context(entries_after(tx, as_of))
            balances_after = as_of
        rows, total = member_rows.listing(tx, tier=tier, search=search, order=sort, limit=limit,
                                          balances_after=balances_after, merged=merged)
    return [{"member_id": r[0], "name": r[1], "email": r[2], "phone": r[3], "tier": r[4], "balance": r[5],
             "joined_on": r[6], "erased": bool(r[7]), **({"merged_into": r[8]} if merged else {})}
            for r in rows], total


def erase(store, member_id: str, at: str, by: str) -> dict:
    """Remove name, email, phone, birthday and feedback comments; keep the id and ledger; record
    who and when.

    Erasing twice is harmless: the second run only retries the WAL checkpoint that
    makes the old values unreadable in the files (exit 75 if it still cannot).
    """
    from loyalty_cli.errors import Busy

    with store.write() as tx:
        member_id = resolve_member(tx, member_id, alias=False)  # a merged member's own record: never the one kept
        found = member_rows.erasure(tx, member_id)
        if found is None:
            raise NotFound.member(member_id)
        if found[0]:
            at, by = found
        else:
            member_rows.erase(tx, member_id, at, by)
            feedback_rows.forget_comments(tx, member_id)
    if not store.checkpoint():
        raise Busy(M_("member {member_id} is erased, but another process kept the old data in the write-ahead log; run 'loyalty members erase' again when it has finished", member_id=member_id))
    return {"member_id": member_id, "erased_at": at, "erased_by": by}
