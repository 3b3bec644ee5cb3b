"""Member hygiene (issue 20): merging a member enrolled twice, marketing consent, campaign contact
lists, and everything the shop holds on one member (the right of access).

Merging (`members merge DUP --into KEEP`): the duplicate's lapsed points are written off, its open
lots move to KEEP whole, with their expiry dates (ledger.move_lots: merge_out on DUP, merge_in on
KEEP); DUP's purchases stay in its history, and DUP becomes an alias: everything new naming it
(a sale, an import row, a refund of one of its sales, an award...) is KEEP's (ids.resolve_member,
ids.Resolver, ledger.Book.member). Members DUP referred count as KEEP's referrals from then on;
DUP's own referrer stays on DUP's record (its bonus, if any, was paid on DUP's first sale: copying
it to KEEP could pay it twice). KEEP takes the higher of the two tiers (a tier change of reason
'merge') until the next recalc, which judges KEEP's own purchases (and never DUP again). A KEEP
who never bought takes DUP's first sale: one customer earns the first-purchase multiplier once.
Household membership follows (households.follow_merge, a MERGE_HOOKS entry). From then on DUP
is an alias, not a member: `members list` leaves it out (--merged shows it), the dashboard does
not count it, and the reports judging customers by their purchases count its purchases as
KEEP's (reports.merged_by). A merge cannot be undone.

Consent: each member's email and SMS opt-in with the date and source of the answer; every answer
is kept (consent_changes). Campaign lists name only members who opted in to the channel, are not
erased and were not merged away, and every list exported is recorded (`loyalty db audit`).

Pure: SQL in store.hygiene; no clock (the CLI passes `at`), no printing.
"""

from __future__ import annotations

from loyalty_cli.errors import LoyaltyError, NotFound, Problem, UsageError
from loyalty_cli.i18n import M_, joined as each_shown
from loyalty_cli.store import hygiene as rows

CHANNELS = rows.CHANNELS
LISTS = ("birthdays", "churn-risk", "segment", "expiring")
YES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}

# What other features do when members merge, and what they add to a member's export: the households
# feature registers here (a member's household follows them into KEEP; their household in the export).
# Each merge hook is called as hook(tx, dup, keep, at, by) inside the merge's transaction; each
# export section as section(tx, member_id) -> JSON-able value, under its name.
MERGE_HOOKS: list = []
EXPORT_SECTIONS: dict = {}


def parse_yes_no(text: str, what: str) -> bool:
    """yes/no/true/false/1/0 (any case) → bool; ValueError naming `what` otherwise."""
    answer = YES.get(str(text).strip().lower())
    if answer is None:
        raise ValueError(M_("{what} must be yes or no (or true/false, 1/0), got {text!r}", what=what, text=text))
    return answer


# -- merging -------------------------------------------------------------------------------------
def _refusal(tx, member_id: str, role: str) -> None:
    """Refuse a member who cannot take part in a merge: not enrolled, erased, or merged already."""
    found = rows.standing(tx, member_id)
    if found is None:
        raise NotFound.member(member_id)
    erased_at, merged_into, *_ = found
    if merged_into is not None:
        advice = (M_("merge into {merged_into} instead", merged_into=merged_into) if role == M_("the member kept")
                  else M_("a member is merged once"))
        raise LoyaltyError(M_("member {member_id} ({role}) was already merged into {merged_into}: {advice}", member_id=member_id, role=role, merged_into=merged_into, advice=advice))
    if erased_at:
        raise LoyaltyError(M_("member {member_id} ({role}) was erased; an erased member is never merged", member_id=member_id, role=role))


def merge(store, dup: str, keep: str, at: str, by: str) -> dict:
    """`members merge DUP --into KEEP`: see the module. Refused (LoyaltyError, nothing written) for a
    member into themself, into or from an erased or merged member, or a duplicate whose balance is
    below zero (a refund's debt: clear it first)."""
    from loyalty_cli.ids import resolve_member
    from loyalty_cli.ledger import Book, move_lots
    from loyalty_cli.store import members as member_rows

    with store.write() as tx:
        dup = resolve_member(tx, dup, alias=False)
        keep = resolve_member(tx, keep, "--into", alias=False)
        if dup == keep:
            raise LoyaltyError(M_("member {dup} cannot be merged into themself", dup=dup))
        _refusal(tx, dup, M_("the duplicate"))
        _refusal(tx, keep, M_("the member kept"))
        book = Book(tx)
        d = book.member(dup, active=False)
        k = book.member(keep, active=False)
        book.write_off_lapsed(d, at)  # lapsed points are written off, never moved
        book.sync(d)
        if d.balance < 0:
            raise LoyaltyError(M_("member {dup} is {balance:,} points below zero (a refund took back points already spent): clear that first (loyalty points transfer {keep} {dup} {balance}), then merge", dup=dup, balance=-d.balance, keep=keep))
        lots = rows.open_lots(tx, dup)
        moved = sum(lot[2] for lot in lots)
        rules = book.rules_for(at)
        tier_before = k.tier
        entry_out = entry_in = None
        if moved:
            entry_out, entry_in = move_lots(book, d, k, at, lots, by=by, note=f"merge of {dup} into {keep}")
        if k.first_sale is None and d.first_sale is not None:
            # One customer has one first purchase: KEEP's next sale earns no first-purchase multiplier
            # (nor a referral bonus) again when DUP already made it (db check's replay does the same).
            k.first_sale = d.first_sale
            book.touch(k)
        if rules.rank(d.tier) > rules.rank(k.tier):
            book.record_tier_change(k, at, d.tier, "merge", by=by, ref=dup)
        book.flush()
        referred = rows.referred(tx, dup)
        for member_id in referred:  # members DUP referred count as KEEP's referrals now
            member_rows.update(tx, member_id, {"referred_by": None if member_id == keep else keep})
            if member_id == keep:
                k.referred_by = None  # KEEP referred by DUP: by themself, which earns no bonus
        rows.record_merge(tx, dup, keep, at, by, moved, entry_out, entry_in)
        _load_features()
        followed = {}
        for hook in MERGE_HOOKS:
            followed.update(hook(tx, dup, keep, at, by) or {})
        result = {"member_id": dup, "into": keep, "at": at, "points_moved": moved, "lots_moved": len(lots),
                  "lots": [{"expires_on": lot[1], "points": lot[2], "purchase_id": lot[3]} for lot in lots],
                  "balance": k.balance, "tier_before": tier_before, "tier": k.tier,
                  "referrals_moved": [m for m in referred if m != keep], **followed}
        return result


def _load_features() -> None:
    """Import the features that register MERGE_HOOKS and EXPORT_SECTIONS (each registers itself when
    imported; imported here, not at start-up, so that commands which never merge stay fast)."""
    import loyalty_cli.households  # noqa: F401  (registers households.follow_merge and its export section)


def refuse_merged_profile(tx, member_id: str, lookups=None) -> None:
    """A members-import row naming a member merged into another is a bad row: its name, email and phone
    would overwrite the member kept's (update that member's row instead). `lookups`: where member rows
    are looked up (store.members.ImportLookups); None: the database."""
    kept = (lookups or rows).merged_into(tx, member_id)
    if kept is not None:
        raise LoyaltyError(M_("member {member_id} was merged into {kept}: update {kept} instead", member_id=member_id, kept=kept))


def alias_facts(tx, member_id: str) -> dict:
    """{"merged_into": KEEP or None, "merged_at": when, "aliases": [members merged into this one]}."""
    kept = rows.merged_into(tx, member_id)
    at = None
    if kept is not None:
        at = next((m[3] for m in reversed(rows.merges(tx, member_id)) if m[1] == member_id), None)
    return {"merged_into": kept, "merged_at": at, "aliases": rows.aliases_of(tx, member_id)}


# -- consent -------------------------------------------------------------------------------------
def set_consent(tx, member_id: str, answers: dict, at: str, source: str, by: str | None, lookups=None) -> bool:
    """Record the member's answers {channel: bool} that differ from what they hold (the date and source
    of an unchanged answer stay those of when it was given). Returns whether anything changed.
    `lookups`: where member rows are looked up and written (store.members.ImportLookups); None: the database."""
    if not answers:
        return False  # (nothing asked: nothing to read)
    store_rows = lookups or rows
    held = store_rows.consent(tx, member_id)
    changed = False
    for channel in CHANNELS:
        answer = answers.get(channel)
        if answer is None or (channel in held and bool(held[channel][0]) == answer and held[channel][1] is not None):
            continue
        store_rows.set_consent(tx, member_id, channel, answer, at, source, by)
        changed = True
    return changed


def consent_of(tx, member_id: str) -> dict:
    """{"email": {"opt_in", "at", "source"}, "sms": {…}} of a member."""
    return {channel: {"opt_in": bool(value[0]), "at": value[1], "source": value[2]}
            for channel, value in rows.consent(tx, member_id).items()}


# -- campaign lists ------------------------------------------------------------------------------
DEFAULT_DAYS = {"birthdays": 30, "churn-risk": 365, "expiring": 30}


def campaign_members(store, list_name: str, channel: str, as_of: str, segment: str | None = None,
                     days: int | None = None) -> list[dict]:
    """The contact list of a campaign: the members of `list_name` (report birthdays, churn, segments or
    expiring as of `as_of`) who opted in to `channel`, are not erased and were not merged away, with
    the contact the channel needs (unmasked: that is the list's purpose), in member id order."""
    from loyalty_cli import reports

    if channel not in CHANNELS:
        raise UsageError(M_("--channel must be email or sms, got {channel!r}", channel=channel))
    if list_name not in LISTS:
        raise UsageError(M_("unknown campaign list {list_name!r}; the lists are: {lists}", list_name=list_name, lists=', '.join(LISTS)))
    if list_name == "segment":
        if segment is None:
            raise UsageError(M_("campaign list segment needs a segment name: one of {segments}", segments=', '.join(reports.SEGMENTS)))
        if days is not None:
            raise UsageError(M_("--days is for birthdays, churn-risk and expiring, not a segment"))
    elif segment is not None:
        raise UsageError(M_("campaign list {list_name} takes no segment name (got {segment!r})", list_name=list_name, segment=segment))
    days = DEFAULT_DAYS.get(list_name) if days is None else days
    if days is not None and days < 0:
        raise UsageError(M_("--days must be zero or more, got {days}", days=days))
    found: dict[str, dict] = {}
    if list_name == "birthdays":
        for r in reports.birthdays(store, as_of, days)["members"]:
            found.setdefault(r["member_id"], {"birthday": r["birthday"], "date": r["date"]})
    elif list_name == "churn-risk":
        for r in reports.churn(store, as_of, days)["members"]:
            found[r["member_id"]] = {"last_sale": r["last_sale"], "days_since": r["days_since"]}
    elif list_name == "segment":
        for member_id in reports.segment_members(store, segment, as_of):
            found[member_id] = {"segment": segment}
    else:
        for r in reports.expiring(store, as_of, days)["members"]:
            detail = found.setdefault(r["member_id"], {"points": 0, "date": r["date"]})
            detail["points"] += r["points"]
            detail["date"] = min(detail["date"], r["date"])
    with store.read() as tx:
        reachable = rows.contacts(tx, channel)
    out = []
    for member_id in sorted(found):
        contact = reachable.get(member_id)
        if contact is None:
            continue
        name, email, phone = contact
        address = email if channel == "email" else phone
        if not address:
            continue  # opted in, but the shop has no address for that channel
        out.append({"member_id": member_id, "name": name, channel: address, **found[member_id]})
    return out


def record_export(store, list_name: str, channel: str, as_of: str, members: int, destination: str, at: str,
                  by: str) -> int:
    """Record a campaign list exported (who, when, which list, channel, how many members, where to)."""
    with store.write() as tx:
        return rows.record_export(tx, at, by, list_name, channel, as_of, members, destination)


AUDIT_SORTS = {"at": (0, 1, 3), "kind": (1, 0, 3), "by": (2, 0, 1)}


def audit(store, kind: str | None = None, sort: str = "at", limit: int | None = None) -> list[dict]:
    """`db audit`: every campaign list exported, merge and erasure, oldest first (or by `sort`)."""
    kinds = {"export": "campaign export", "merge": "merge", "erasure": "erasure"}
    if kind is not None and kind not in kinds:
        raise UsageError(M_("--kind must be one of {kinds}, got {kind!r}", kinds=', '.join(kinds), kind=kind))
    if sort not in AUDIT_SORTS:
        raise UsageError(M_("--sort must be one of {sorts}, got {sort!r}", sorts=', '.join(AUDIT_SORTS), sort=sort))
    with store.read() as tx:
        found = rows.audit_rows(tx)
    if kind is not None:
        found = [r for r in found if r[1] == kinds[kind]]
    found.sort(key=lambda r: tuple(r[i] for i in AUDIT_SORTS[sort]))
    if limit:
        found = found[:limit]
    return [{"at": r[0], "kind": r[1], "by": r[2], "what": _audit_what(r), "members": r[4]} for r in found]


def _audit_what(row: tuple):
    """What an audit line was about: the text the database made (English, as --json gives it), said
    in the reader's language where a person reads it."""
    what, parts = row[3], row[5:]
    if row[1] == "campaign export":
        said = M_("{list} by {channel} as of {as_of} to {destination}", list=parts[0], channel=parts[1],
                  as_of=parts[2], destination=parts[3])
    elif row[1] == "merge":
        said = M_("{member_id} into {into}", member_id=parts[0], into=parts[1])
    else:
        return what
    return said if said == what else what  # the parts make exactly the stored text, or it is shown as it is


# -- the right of access -------------------------------------------------------------------------
def export_member(store, member_id: str) -> dict:
    """Everything the shop holds on one member, as one JSON-able document: the profile (every column
    of their row), consent and its history, purchases, ledger, lots, vouchers, tier history, merges
    (either side), feedback, the erasure, and what other features register (EXPORT_SECTIONS: the
    household). An erased member's document holds what remains (no name, email, phone, birthday,
    comments)."""
    from loyalty_cli.ids import resolve_member

    with store.read() as tx:
        member_id = resolve_member(tx, member_id, alias=False)
        profile = rows.member_record(tx, member_id)
        if profile is None:
            raise NotFound.member(member_id)
        consent = consent_of(tx, member_id)
        for column in ("email_opt_in", "email_consent_at", "email_consent_source", "sms_opt_in", "sms_consent_at",
                       "sms_consent_source"):
            profile.pop(column, None)
        doc = {
            "member_id": member_id,
            "profile": profile,
            "consent": consent,
            "consent_history": [{"channel": c, "opt_in": bool(o), "at": a, "source": s, "by": b}
                                for c, o, a, s, b in rows.consent_changes(tx, member_id)],
            "purchases": rows.purchases_of(tx, member_id),
            "ledger": rows.ledger_of(tx, member_id),
            "lots": rows.lots_of(tx, member_id),
            "vouchers": rows.vouchers_of(tx, member_id),
            "tier_history": rows.tier_changes_of(tx, member_id),
            "merges": [{"member_id": m[1], "into": m[2], "at": m[3], "by": m[4], "points": m[5]}
                       for m in rows.merges(tx, member_id)],
            "aliases": rows.aliases_of(tx, member_id),
            "referred": rows.referred(tx, member_id),
            "feedback": rows.feedback_of(tx, member_id),
            "erasure": rows.erasure_of(tx, member_id),
        }
        _load_features()
        for name, section in sorted(EXPORT_SECTIONS.items()):
            doc[name] = section(tx, member_id)
    return doc


# -- db check ------------------------------------------------------------------------------------
def check_merges(tx) -> list[Problem]:
    """Every merge moved exactly the lots it took: its merge_out entry is the duplicate's and its
    merge_in the member kept's, of equal and opposite points (the merge's), the lots merge_in made
    are the lots merge_out used (expiry, points, sale, first day spendable), and the duplicate took
    no entry after it; every merge entry belongs to a recorded merge; and every alias is consistent:
    a member merged into another names a member who is enrolled and not merged, and a merge records it."""
    if "member_merges" not in _tables(tx):
        return []
    problems: list[Problem] = []
    recorded = rows.merges(tx)
    ids = [e for m in recorded for e in (m[6], m[7]) if e is not None]
    entries = rows.entries_by_id(tx, ids)
    claimed = set(ids)
    last_merge: dict[str, str] = {}
    for merge_id, dup, keep, _at, _by, points, out_id, in_id in recorded:
        last_merge[dup] = keep
        for member_id, merged in list(last_merge.items()):
            if merged == dup:
                last_merge[member_id] = keep
        what = M_("merge {merge_id} ({dup} into {keep})", merge_id=merge_id, dup=dup, keep=keep)
        if out_id is None and in_id is None:
            if points:
                problems.append(Problem(M_("{what} records {points:,} points moved but no entries", what=what, points=points), check="merges",
                                        member_id=dup))
            continue
        out, into = entries.get(out_id), entries.get(in_id)
        if out is None or into is None:
            problems.append(Problem(M_("{what}: its entries {out_id} and {in_id} are not in the ledger", what=what, out_id=out_id, in_id=in_id), check="merges",
                                    member_id=dup))
            continue
        if out[:2] != (dup, "merge_out") or into[:2] != (keep, "merge_in"):
            problems.append(Problem(M_("{what}: entry {out_id} is not {dup}'s merge_out or entry {in_id} not {keep}'s merge_in", what=what, out_id=out_id, dup=dup, in_id=in_id, keep=keep), check="merges", member_id=dup))
        if out[2] != -points or into[2] != points:
            problems.append(Problem(M_("{what} moved {points:,} points but its entries are {out:,} and {into:,}", what=what, points=points, out=out[2], into=into[2]),
                                    check="merges", member_id=dup))
        used, made = rows.lots_used_by(tx, out_id), rows.lots_made_by(tx, in_id)  # in lot order, as shown
        if sorted(used, key=_lot_key) != sorted(made, key=_lot_key) or sum(u[1] for u in used) != points:
            problems.append(Problem(M_("{what}: the lots entry {in_id} made ({made}) are not the lots entry {out_id} took ({took})", what=what, in_id=in_id, made=_lots_text(made), out_id=out_id, took=_lots_text(used)), check="merges", member_id=dup))
        later = rows.entries_after(tx, dup, max(out_id, in_id))
        if later:
            problems.append(Problem(M_("{what}: entries {ids} were recorded for {dup} after it was merged (they belong to the member kept)", what=what, ids=', '.join(map(str, later)), dup=dup), check="merges", member_id=dup))
    for entry_id, member_id, kind, points in rows.merge_entries(tx):
        if entry_id not in claimed:
            problems.append(Problem(M_("entry {entry_id} ({kind}, {points:,} points) is not one of a recorded merge's", entry_id=entry_id, kind=kind, points=points),
                                    check="merges", member_id=member_id))
    standing = {m: s for m, s in rows.merged_members(tx)}
    for member_id, kept in sorted(standing.items()):
        if last_merge.get(member_id) != kept:
            problems.append(Problem(M_("merged into {kept} but the merges recorded make it an alias of {alias}", kept=kept,
                                       alias=last_merge[member_id]) if member_id in last_merge else
                                    M_("merged into {kept} but the merges recorded none of it", kept=kept),
                                    check="merges", member_id=member_id))
        target = rows.standing(tx, kept)
        if target is None or target[1] is not None:
            problems.append(Problem(M_("merged into {kept}, who is not enrolled", kept=kept) if target is None else
                                    M_("merged into {kept}, who is merged into {other} in turn", kept=kept,
                                       other=target[1]), check="merges", member_id=member_id))
    for member_id, kept in sorted(last_merge.items()):
        if member_id not in standing:
            problems.append(Problem(M_("was merged into {kept} but is no longer marked merged", kept=kept), check="merges",
                                    member_id=member_id))
    return problems[:100]


def _lot_key(lot: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in lot)


def _lots_text(lots: list) -> str:
    return each_shown(", ", [M_("{points:,} to {expires}", points=p, expires=e or M_("never")) for e, p, *_ in lots]) \
        or M_("none")


def _tables(tx) -> set[str]:
    from loyalty_cli.store.checks import table_names

    return table_names(tx)


def compare_replayed(tx, r, records: dict) -> None:
    """`db check`'s replay: the members' current aliases and consent rebuilt from the chain's records
    (`records`: kind → [(record, block)] of member_merges and consent_changes) and compared with the
    members' rows; a difference is a problem of the replay `r`."""
    if "member_merges" not in _tables(tx):
        return
    merged: dict[str, tuple[str, int]] = {}
    for (dup, keep, *_), block in records.get("member_merges", ()):
        merged[dup] = (keep, block)
        for member_id, (kept, _b) in list(merged.items()):
            if kept == dup:
                merged[member_id] = (keep, block)
    consent: dict[tuple[str, str], tuple] = {}
    for (member_id, channel, opt_in, at, source, _by), block in records.get("consent_changes", ()):
        consent[(member_id, channel)] = (opt_in, at, source, block)
    for member_id, e_opt, e_at, e_src, s_opt, s_at, s_src, kept in rows.consent_states(tx):
        want = merged.get(member_id)
        if (want[0] if want else None) != kept:
            where = M_(" (block {block:,})", block=want[1]) if want else ""
            r.problem(M_("member {member_id}: merged_into is {kept} but the chain recorded {chain}{where}: changed behind the tool's back", member_id=member_id, kept=_show(kept), chain=_show(want[0] if want else None), where=where), member_id)
        for channel, have in (("email", (e_opt, e_at, e_src)), ("sms", (s_opt, s_at, s_src))):
            given = consent.get((member_id, channel))
            expected = given[:3] if given else (0, None, None)
            if tuple(have) != tuple(expected):
                where = M_(" (block {block:,})", block=given[3]) if given else ""
                r.problem(M_("member {member_id}: {channel} consent is {have} but the chain recorded {want}{where}: changed behind the tool's back", member_id=member_id, channel=channel, have=_consent_text(have), want=_consent_text(expected), where=where), member_id)


def _show(value) -> str:
    return "NULL" if value is None else repr(value)


def _consent_text(value) -> str:
    opt_in, at, source = value
    answer = M_("yes") if opt_in else M_("no")
    return M_("{answer} ({at}, {source})", answer=answer, at=at, source=source) if at else answer
