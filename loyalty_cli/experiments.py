"""A/B experiments on the programme (issue 19): start, stop, list, and which rules a member earns under.

From its start date (`--from`), an experiment puts a fixed share of members in its variant group:
member M is in it when the first 8 bytes of sha256(NAME + "\\0" + M), read as a big-endian
integer x, satisfy x / 2**64 < share (compared exactly, in integers). The assignment depends on
nothing but the name and the id, so the same member is always in the same group, members who join
later included, and an import decides it in Python without asking the database.

The variant is a few programme keys merged over the version in force on each date (tables key by
key, arrays replaced, as `program load` merges over the defaults): "double points" is
`[earn] points_per_unit = "2"`, and a later `program load` still applies to both groups. Only what
a member earns may differ: `[earn]` (rates, rounding, promotions, signup and referral bonuses,
pending days) and `[[campaigns]]`. Tiers, expiry, transfers and the currency are the shop's, the
same for everyone, so that the two groups stay comparable and every other command is unaffected.

Points earned under the variant (a sale's earn and bonus entries, a signup bonus, a referral
bonus paid to a variant member) are marked with the experiment's name (`variant_entries`).
A sale dated on day D earns under the variant when the experiment runs on D: starts_on <= D and
(no stop, or D < stops_on). Points already awarded never change, so an experiment can neither
start nor stop on a day that already has sales, refunds, signup or referral credits recorded.

Pure: rows through store.experiments; the caller passes today and now.
"""

from __future__ import annotations

import json
from fractions import Fraction

from loyalty_cli import rules as rules_mod
from loyalty_cli import values
from loyalty_cli.errors import InputFileError, LoyaltyError, NotFound, UsageError
from loyalty_cli.i18n import M_
from loyalty_cli.store import experiments as rows

# The programme tables a variant may set: what a member earns, nothing else.
VARIANT_KEYS = ("earn", "campaigns")


def parse_share(text: str) -> tuple[str, Fraction]:
    """`--share` → (its canonical text, the exact fraction): a decimal strictly between 0 and 1."""
    import re

    value = str(text).strip()
    if not re.fullmatch(r"0?\.\d{1,6}|0", value, re.ASCII) or Fraction(value) <= 0:
        raise UsageError(M_("--share must be a decimal between 0 and 1 (the share of members in the variant group, e.g. 0.5), got {text!r}", text=text))
    share = Fraction(value)
    return (value if value.startswith("0") else "0" + value), share


class Experiment:
    """One experiment: which members are in its variant, and the variant's rules on a date."""

    __slots__ = ("name", "variant", "share", "share_text", "starts_on", "stops_on", "threshold", "_groups",
                 "_rules", "id", "started_at", "source")

    def __init__(self, row: rows.Row):
        self.id, self.name, self.started_at, self.source = row.id, row.name, row.started_at, row.source
        self.variant = json.loads(row.variant)
        self.share_text = row.share
        self.share = Fraction(row.share)
        self.starts_on, self.stops_on = row.starts_on, row.stops_on
        # x / 2**64 < share  ⟺  x < share × 2**64  ⟺  x < ceil(share × 2**64)   (x an integer)
        scaled = self.share * 2**64
        self.threshold = -(-scaled.numerator // scaled.denominator)
        self._groups: dict[str, bool] = {}
        self._rules: dict[int, tuple] = {}

    def runs_on(self, day: str) -> bool:
        """Whether sales dated `day` (YYYY-MM-DD) earn under this experiment."""
        return self.starts_on <= day and (self.stops_on is None or day < self.stops_on)

    def in_variant(self, member_id: str) -> bool:
        """Whether the member is in the variant group (cached: an import asks once per member)."""
        found = self._groups.get(member_id)
        if found is None:
            found = self._groups[member_id] = hash_share(self.name, member_id) < self.threshold
        return found

    def rules(self, base: rules_mod.Rules) -> rules_mod.Rules:
        """The variant merged over `base` (the version in force on a date), validated once per version."""
        cached = self._rules.get(id(base))
        if cached is None or cached[0] is not base:
            try:
                merged = rules_mod.validate(rules_mod.merge(base.doc, self.variant), stored=True)
            except rules_mod.RulesError as exc:
                raise LoyaltyError(M_("experiment {name}'s variant does not fit the programme in force: {exc}", name=self.name, exc=exc)) from None
            cached = self._rules[id(base)] = (base, merged)
        return cached[1]

    def as_dict(self) -> dict:
        return {"name": self.name, "share": self.share_text, "from": self.starts_on, "stopped_from": self.stops_on,
                "variant": self.variant, "started_at": self.started_at, "source": self.source}


def hash_share(name: str, member_id: str) -> int:
    """The first 8 bytes of sha256(name + NUL + member id), big-endian: the member's place in
    [0, 2**64), compared with share × 2**64."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{name}\0{member_id}".encode()).digest()[:8], "big")


class Experiments:
    """Every experiment of a database, and the one running on a date (at most one at a time)."""

    def __init__(self, experiments: list[Experiment]):
        self.all = experiments

    def __bool__(self) -> bool:
        return bool(self.all)

    def on(self, day: str) -> Experiment | None:
        for e in self.all:
            if e.runs_on(day):
                return e
        return None


def load(tx) -> Experiments:
    """The database's experiments (none: an empty, false Experiments)."""
    return Experiments([Experiment(r) for r in rows.all_experiments(tx)])


def parse_variant(text: str, source: str) -> dict:
    """VARIANT.toml → the keys it sets, or InputFileError (exit 3) saying what is wrong: TOML errors
    and bad values as `program load` reports them, and any key outside [earn] and [[campaigns]]."""
    if not text.strip():
        raise InputFileError(M_('{source} is empty: a variant sets at least one programme key, e.g. [earn] points_per_unit = "2"', source=source))
    try:
        doc = rules_mod.parse_toml(text, source)
    except rules_mod.RulesError as exc:
        raise InputFileError(str(exc)) from None
    if not isinstance(doc, dict) or not doc:
        raise InputFileError(M_('{source} sets no programme key: a variant sets at least one, e.g. [earn] points_per_unit = "2"', source=source))
    for key in doc:
        if key not in VARIANT_KEYS:
            if key not in rules_mod.DEFAULTS:
                raise InputFileError(M_("{source}: {key} is not a programme setting", source=source, key=key))
            raise InputFileError(M_("{source}: {key} cannot be changed by an experiment: a variant changes what members earn ([earn] and [[campaigns]] only), tiers, expiry and the rest stay the same for both groups", source=source, key=key))
    return doc


def start(store, name: str, text: str, source: str, share: str, starts_on: str, today: str, now: str) -> dict:
    """`program experiment start`: record an experiment running from `starts_on`."""
    name = values.checked(values.parse_id, name, M_("experiment name"))
    share_text, _ = parse_share(share)
    variant = parse_variant(text, source)
    with store.write() as tx:
        from loyalty_cli.program import load_programme

        if starts_on < today:
            raise LoyaltyError(M_("experiment {name} cannot start on {starts_on}, before today ({today}): points already awarded never change (start it today or later)", name=name, starts_on=starts_on, today=today))
        if rows.find(tx, name) is not None:
            raise LoyaltyError(M_("experiment {name} already exists (an experiment's name decides its groups: choose a new name)", name=name))
        for e in load(tx).all:
            if e.stops_on is None or e.stops_on > starts_on:
                until = M_("until {stops_on}", stops_on=e.stops_on) if e.stops_on else M_("not stopped")
                raise LoyaltyError(M_("experiment {name} is running (from {starts_on}, {until}): one experiment at a time; stop it first: loyalty program experiment stop {name} --at {at}", name=e.name, starts_on=e.starts_on, until=until, at=max(starts_on, e.starts_on)))
        _refuse_recorded(tx, starts_on, M_("experiment {name} cannot start on {starts_on}", name=name, starts_on=starts_on))
        base = load_programme(tx).for_date(starts_on)
        try:
            rules_mod.validate(rules_mod.merge(base.doc, variant))
        except rules_mod.RulesError as exc:
            raise InputFileError(M_("{source}: {exc}", source=source, exc=exc)) from None
        stored = json.dumps(variant, sort_keys=True)
        rows.insert(tx, name, stored, share_text, starts_on, now, source)
    return {"name": name, "share": share_text, "from": starts_on, "variant": variant, "source": source}


def _refuse_recorded(tx, day: str, what: str) -> None:
    """Refuse to change which rules apply from `day` when points dated then are already recorded."""
    n = rows.sales_from(tx, day) + rows.credits_from(tx, day)
    if n:
        raise LoyaltyError(M_("{what}: {n:,} sale{s}, refunds or bonuses dated {day} or later are already recorded, and points already awarded never change (choose a later date)", what=what, n=n, s="s" if n != 1 else "", day=day))


def stop(store, name: str, stops_on: str, today: str) -> dict:
    """`program experiment stop`: the variant ends for sales dated `stops_on` or later."""
    name = values.id_lookup(name, M_("experiment name"))
    with store.write() as tx:
        row = rows.find(tx, name)
        if row is None:
            known = [e.name for e in load(tx).all]
            hint = M_(" (experiments: {known})", known=', '.join(known)) if known else M_(" (there are no experiments)")
            raise NotFound(M_("experiment {name} not found{hint}", name=name, hint=hint))
        if row.stops_on is not None:
            raise LoyaltyError(M_("experiment {name} is already stopped (from {stops_on})", name=name, stops_on=row.stops_on))
        if stops_on < row.starts_on:
            raise LoyaltyError(M_("experiment {name} cannot stop on {stops_on}, before it starts ({starts_on})", name=name, stops_on=stops_on, starts_on=row.starts_on))
        if stops_on < today:
            raise LoyaltyError(M_("experiment {name} cannot stop on {stops_on}, before today ({today}): points already awarded never change (stop it today or later)", name=name, stops_on=stops_on, today=today))
        _refuse_recorded(tx, stops_on, M_("experiment {name} cannot stop on {stops_on}", name=name, stops_on=stops_on))
        rows.stop(tx, name, stops_on)
    return {"name": name, "from": row.starts_on, "stopped_from": stops_on}


def listing(store) -> list[dict]:
    """`program experiment list`: every experiment, oldest first."""
    with store.read() as tx:
        return [e.as_dict() for e in load(tx).all]
