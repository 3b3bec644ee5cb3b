"""`purchases explain PID`: how a sale's points came about, step by step, recomputed by the engine.

The sale's situation is read back (the programme version in force on its date, the experiment
running then and the member's group, whether it was the member's first sale, their birth month,
the tier they held) and given to `earning.earn`, the one earning engine; the steps shown are
the same arithmetic traced (each total rounded from the exact product of the amount and every
multiplier so far). What the engine gives is compared with the ledger's earn and bonus entries:
any difference is said, never hidden. Then what the sale left behind: its lot(s) and their expiry,
each refund with what it reversed (SPEC §6: min(floor(P × refunded so far / A), P − expired) less
what was reversed before), and a referral bonus it paid.

The tier the sale earned at is the one the member held when it was recorded: the last tier change
dated up to the sale (not the upgrade this sale caused), else the member's first tier; a sale
recorded after a later tier change (dated earlier than it) earned at the tier the ledger's tier
bonus names (`_tier_recorded`). An erased member's birth month is gone, so whether the birthday
applied is read from the ledger.

Pure: rows through store.experiments; no clock.
"""

from __future__ import annotations

from fractions import Fraction

from loyalty_cli import earning, experiments, values
from loyalty_cli.errors import NotFound
from loyalty_cli.i18n import M_
from loyalty_cli.program import load_programme
from loyalty_cli.store import experiments as rows


def _decimal(value: Fraction, places: int = 6) -> str:
    """An exact value as a decimal: exact where it terminates within `places`, else rounded with "…"."""
    scaled = value * 10**places
    if scaled.denominator == 1:
        text = f"{abs(scaled.numerator) // 10**places}.{abs(scaled.numerator) % 10**places:0{places}d}".rstrip("0")
        text = text.rstrip(".")
        return ("-" if value < 0 else "") + text
    q = round(scaled)
    return ("-" if value < 0 else "") + f"{abs(q) // 10**places}.{abs(q) % 10**places:0{places}d}".rstrip("0") + "…"


def _mult(m: Fraction) -> str:
    return _decimal(Fraction(m))


def _tier_at(changes: list[tuple], purchase_id: str, at: str, current: str) -> str:
    """The tier held when the sale was recorded: the last change dated up to it, other than its own upgrade."""
    before = [c for c in changes if c[1] <= at and c[5] != purchase_id]
    if before:
        return max(before, key=lambda c: (c[1], c[0]))[3]
    if changes:
        return min(changes, key=lambda c: (c[1], c[0]))[2]
    return current


def explain(store, purchase_id: str) -> dict:
    """The explanation of a sale (or of the sale a refund refunds, with that refund named)."""
    purchase_id = values.id_lookup(purchase_id, M_("purchase id"))
    with store.read() as tx:
        row = rows.purchase(tx, purchase_id)
        if row is None:
            raise NotFound(M_("purchase {purchase_id} not found", purchase_id=purchase_id))
        asked_refund = None
        if row[2] == "refund":
            asked_refund = purchase_id
            row = rows.purchase(tx, row[6])
        pid, member_id, _kind, amount, at, category, _ref, points, _basis, lot_id = row
        store_name = rows.purchase_store(tx, pid)
        programme = load_programme(tx)
        decimals = programme.currency_decimals
        base = programme.for_date(at)
        version = None
        for vid, applies_from, source in rows.versions(tx):
            if applies_from <= at[:10]:
                version = {"id": vid, "applies_from": applies_from, "source": source}
        birthday, first_sale, _joined, erased_at, current_tier = rows.member_facts(tx, member_id)
        entries = rows.sale_entries(tx, member_id, pid)
        entry_ids = [e[0] for e in entries]
        marks = rows.marks_of(tx, entry_ids)
        running = experiments.load(tx).on(at[:10])
        rules, experiment = base, None
        if running is not None:
            in_variant = running.in_variant(member_id)
            experiment = {"name": running.name, "group": "variant" if in_variant else "control",
                          "share": running.share_text, "variant": running.variant if in_variant else None}
            if in_variant:
                rules = running.rules(base)
        tier = _tier_at(rows.tier_changes_of(tx, member_id), pid, at, current_tier)
        ledger_rules = [note_rule(e) for e in entries if e[2] in ("earn", "bonus")]
        if birthday is not None:
            is_birthday, birthday_from = birthday[5:7] == at[5:7], M_("the member's birth month")
        else:
            is_birthday = any(r == "birthday" for r in ledger_rules)
            birthday_from = (M_("the ledger (the member's birthday is erased)") if erased_at
                             else M_("the ledger (the member's birthday is not recorded)"))
        first = amount > 0 and first_sale == pid
        recorded = [(e[2], note_rule(e), e[3]) for e in entries if e[2] in ("earn", "bonus")]
        tier, tier_from = _tier_recorded(amount, rules, at, category, first, is_birthday, tier, recorded)
        lines = earning.earn(amount, rules, date=at, category=category, first=first, birthday=is_birthday, tier=tier)
        trace = _trace(amount, rules, at, category, first, is_birthday, tier, decimals)
        lots = [{"lot": lid, "points": p, "expires_on": e, "available_on": a, "remaining": rem, "returned": origin,
                 "member_id": holder} for lid, p, e, a, rem, origin, holder in rows.lots_of_sale(tx, pid)]
        expired = rows.expired_from_lots(tx, [lot["lot"] for lot in lots])
        refunds = []
        refunded = reversed_ = 0
        for rid, rat, ramount, rpoints, rmember in rows.refunds(tx, pid):
            refunded += ramount
            target = min(points * refunded // amount, points - expired) if amount else 0
            refunds.append({"refund_id": rid, "at": rat, "member_id": rmember,
                            "amount": values.format_money(ramount, decimals),
                            "refunded_so_far": values.format_money(refunded, decimals), "points_reversed": rpoints,
                            "formula": M_("min(floor({points:,} × {refunded} / {amount}), {points:,} − {expired:,} expired)"
                                          " − {reversed:,} reversed before = {result:,}", points=points,
                                          refunded=values.format_money(refunded, decimals),
                                          amount=values.format_money(amount, decimals), expired=expired,
                                          reversed=reversed_, result=max(0, target - reversed_))})
            reversed_ += rpoints
        merged = _merged(tx, member_id)
        referral = rows.referral_entry(tx, pid)
        referral_mark = rows.marks_of(tx, [referral[0]]).get(referral[0]) if referral else None
    ledger = [{"id": e[0], "kind": e[2], "rule": e[5] if e[2] == "bonus" else None, "points": e[3],
               "experiment": marks.get(e[0])} for e in entries if e[2] in ("earn", "bonus")]
    disagreements = _compare(lines, ledger, points, experiment)
    return {
        "purchase_id": pid, "asked_for": asked_refund, "member_id": member_id, "merged": merged, "at": at,
        "amount": values.format_money(amount, decimals), "category": category, "store": store_name,
        "programme": version, "experiment": experiment, "rounding": rules.rounding,
        "points_per_unit": _mult(rules.points_per_unit),
        "min_amount": values.format_money(rules.min_amount, decimals), "stacking": rules.stacking,
        "first_purchase": first, "birthday": is_birthday, "birthday_from": birthday_from, "tier": tier,
        "tier_from": tier_from,
        "promotions": trace["promotions"], "steps": trace["steps"],
        "points": sum(p for _, _, p in lines), "points_recorded": points,
        "ledger": ledger, "agrees": not disagreements, "disagreements": disagreements,
        "lots": lots, "expired": expired, "refunds": refunds,
        "referral": {"member_id": referral[1], "points": referral[2], "experiment": referral_mark} if referral else None,
    }


def _tier_recorded(amount, rules, at, category, first, birthday, by_date: str, recorded: list) -> tuple[str, str]:
    """(the tier the sale earned at, where that comes from). The tier held when the sale was recorded
    is not stored on its own: it is the one held by date (`by_date`) unless the sale was recorded
    after a later tier change (a sale written with an earlier date), when the ledger's `tier:NAME`
    bonus names it, or its absence says the tier had no bonus: the first of those with which the
    engine gives exactly what the ledger holds."""
    named = [r[1][5:] for r in recorded if r[1] and r[1].startswith("tier:")]
    plain = [lvl.name for lvl in rules.levels if lvl.name not in rules.tier_bonuses] if not named else []
    for tier, source in [(by_date, M_("held on the sale's date"))] + [(t, M_("as the ledger's tier bonus names it"))
                                                                   for t in named] + \
            [(t, M_("no tier bonus in the ledger")) for t in plain]:
        got = earning.earn(amount, rules, date=at, category=category, first=first, birthday=birthday, tier=tier)
        if got == recorded:
            return tier, source
    return by_date, M_("held on the sale's date")


def note_rule(entry: tuple) -> str | None:
    """A bonus entry's rule: stored in its note (`birthday`, `tier:Gold`…)."""
    return entry[5] if entry[2] == "bonus" else None


def _trace(amount: int, rules, at: str, category, first: bool, birthday: bool, tier: str | None,
           decimals: int) -> dict:
    """The engine's arithmetic, step by step: earning.earn's own trace, with the promotions whose
    conditions the sale met (earning.candidates) and whether stacking let each apply."""
    trace: list[tuple] = []
    earning.earn(amount, rules, date=at, category=category, first=first, birthday=birthday, tier=tier, trace=trace)
    kind, ratio, num, den, total = trace[0]
    if kind == "below_min_amount":
        return {"promotions": [], "steps": [{"step": "below_min_amount", "rule": None, "multiplier": None,
                                             "exact": _decimal(Fraction(amount, 10**decimals)), "total": 0,
                                             "points": 0}]}
    exact = Fraction(num, den)
    steps = [{"step": "base", "rule": None, "multiplier": _mult(rules.points_per_unit),
              "category_multiplier": _mult(Fraction(*ratio)) if ratio is not None else None,
              "exact": _decimal(exact), "total": total, "points": total}]
    applied = {step[0] for step in trace[1:]}
    promotions = [{"rule": name, "multiplier": _mult(m), "applies": name in applied,
                   "why_not": None if name in applied else M_("stacking = max: a larger one applies")}
                  for name, m in earning.candidates(rules, date=at, category=category, first=first,
                                                    birthday=birthday)] if rules.has_promotions else []
    for name, (m_num, m_den), num, den, step_total in trace[1:]:
        before, exact = exact, Fraction(num, den)
        steps.append({"step": "tier" if name.startswith("tier:") else "promotion", "rule": name,
                      "multiplier": _mult(Fraction(m_num, m_den)), "from": _decimal(before),
                      "exact": _decimal(exact), "total": step_total, "points": step_total - total})
        total = step_total
    return {"promotions": promotions, "steps": steps}


def _compare(lines: list[tuple], ledger: list[dict], points: int, experiment: dict | None) -> list[str]:
    """What the ledger holds that the engine does not give (empty: they agree)."""
    found = []
    want = [(kind, rule, p) for kind, rule, p in lines]
    have = [(e["kind"], e["rule"], e["points"]) for e in ledger]
    if want != have:
        show = lambda items: ", ".join(f"{k}{' ' + r if r else ''} {p:,}" for k, r, p in items) or "nothing"  # noqa: E731
        found.append(M_("the engine gives {want} but the ledger holds {have}", want=show(want), have=show(have)))
    total = sum(p for _, _, p in lines)
    if points != total:
        found.append(M_("the purchase row records {points:,} points, the engine gives {total:,}", points=points, total=total))
    variant = experiment["name"] if experiment and experiment["group"] == "variant" else None
    wrong = [e["id"] for e in ledger if e["experiment"] != variant]
    if wrong:
        said = M_("under experiment {variant}", variant=variant) if variant else M_("under no experiment")
        found.append(M_("entries {ids} are not marked as earned {said}", ids=', '.join(map(str, wrong)), said=said))
    return found


def _merged(tx, member_id: str) -> dict | None:
    """{"into", "at"} when the sale's member was merged into another (members merge): its open lots
    moved to that member then (lots of origin 'merge'), and a refund after it reverses from them."""
    from loyalty_cli import hygiene

    facts = hygiene.alias_facts(tx, member_id)
    if facts["merged_into"] is None:
        return None
    return {"into": facts["merged_into"], "at": facts["merged_at"]}
