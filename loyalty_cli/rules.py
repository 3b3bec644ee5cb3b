"""Programme rules: TOML in, validated read-only rule objects out, with the defaults of SPEC §6.

A rules document is merged over the defaults (tables merged key by key, arrays
replaced), validated, and stored as canonical JSON in `program_versions` with the
date it applies from. Every error names the key: `earn.points_per_unit must be a
decimal ≥ 0, got "-1"`. Multipliers and money are exact `Fraction`s/minor units;
never floats.
"""

from __future__ import annotations

import copy
import json
import re
from fractions import Fraction
from functools import lru_cache

from loyalty_cli import values
from loyalty_cli.i18n import M_, message_of

DEFAULTS: dict = {
    "currency_decimals": 2,
    "point_value": "0.01",
    "earn": {
        "points_per_unit": "1",
        "rounding": "down",
        "min_amount": "0",
        "stacking": "max",
        "signup_bonus": 0,
        "first_purchase_multiplier": "1",
        "birthday_multiplier": "1",
        "referral_bonus": 0,
        "pending_days": 0,
        "categories": [],
    },
    "campaigns": [],
    "expiry": {"months": 12, "round_to": "month_end"},
    "tiers": {
        "basis": "spend",
        "window": "rolling_12m",
        "hold_months": 12,
        "pooling": "member",  # member | household: a household's members qualify on their combined value
        "levels": [
            {"name": "Bronze", "min": "0", "multiplier": "1"},
            {"name": "Silver", "min": "500", "multiplier": "1.25"},
            {"name": "Gold", "min": "1500", "multiplier": "1.5"},
            {"name": "Platinum", "min": "5000", "multiplier": "2"},
        ],
    },
    "transfers": {"enabled": True, "max_points_per_month": 10000},
    "anomalies": {
        "max_sales_per_day": 5,
        "small_sale": "2.00",
        "small_burst": 5,
        "small_burst_minutes": 60,
        "refund_ratio_factor": "3",
        "award_redeem_points": 500,
        "award_redeem_days": 7,
    },
}

_DECIMAL = re.compile(r"\d+(\.\d+)?")


class RulesError(ValueError):
    """A programme document that breaks a rule; the message names the key."""


class Level:
    """A tier: its name, minimum (minor units under the spend basis, points under points) and multiplier."""

    __slots__ = ("name", "min", "multiplier")

    def __init__(self, name: str, min: int, multiplier: Fraction):
        self.name, self.min, self.multiplier = name, min, multiplier


class Campaign:
    """A promotion: dates inclusive, categories (empty: all)."""

    __slots__ = ("name", "start", "end", "multiplier", "categories")

    def __init__(self, name: str, start: str, end: str, multiplier: Fraction, categories: frozenset):
        self.name, self.start, self.end, self.multiplier, self.categories = name, start, end, multiplier, categories


class Rules:
    """One validated version of the programme (read-only by convention).

    A plain class rather than a frozen dataclass: generating a 27-field
    dataclass costs milliseconds at every start-up of a counter command.
    Fields: doc (the merged document, as stored), currency_decimals, point_value,
    points_per_unit, rounding, min_amount (minor units), stacking, signup_bonus,
    first_purchase_multiplier, birthday_multiplier, referral_bonus, pending_days, categories
    (lower-cased name -> Fraction), campaigns, expiry_months, expiry_round_to,
    tier_basis, tier_window, hold_months, tier_pooling, levels, transfers_enabled, currency_symbol ("" for none),
    max_transfer_per_month, anomalies, ranks, has_promotions, and for earning base_ratio,
    category_ratios and tier_bonuses (integer ratios).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def expiry_for(self, date: str) -> str | None:
        """E, the last day a credit dated `date` can be used (None: never expires)."""
        if self.expiry_months == 0:
            return None
        return _expiry(date[:10], self.expiry_months, self.expiry_round_to)

    def available_on(self, date: str) -> str | None:
        """The day a sale dated `date` makes its points spendable (earn.pending_days later), or
        None when they are spendable at once (pending_days 0)."""
        if not self.pending_days:
            return None
        return _plus_days(date[:10], self.pending_days)

    def level(self, name: str) -> Level | None:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        return None

    def rank(self, name: str) -> int:
        """The level's place from the bottom (0), -1 for a name the programme no longer has."""
        return self.ranks.get(name, -1)

    def qualifying_level(self, value: int) -> Level:
        """The highest level whose minimum the qualifying value reaches."""
        best = self.levels[0]
        for lvl in self.levels:
            if value >= lvl.min:
                best = lvl
        return best

    def to_json(self) -> str:
        return json.dumps(self.doc, sort_keys=True)


@lru_cache(maxsize=8192)
def _plus_days(day: str, days: int) -> str:
    from datetime import date, timedelta

    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except OverflowError:  # a sale in the last days of year 9999: pending for ever
        return "9999-12-31"


@lru_cache(maxsize=8192)
def _expiry(day: str, months: int, round_to: str) -> str:
    e = values.add_months(day, months)
    return values.month_end(e) if round_to == "month_end" else e


# Settings a programme may give and need not: kept in its document only when given, so the
# versions stored before they existed (and their chain) stay as they were.
OPTIONAL = {"currency_symbol": ""}
CURRENCY_SYMBOL_MAX = 4


def _currency_symbol(value) -> str:
    """`currency_symbol`: what human output writes before money ("¥", "€", "CHF"); never in JSON or
    CSV. 1-4 characters, none of them a digit, a space, a sign, a separator or a quote, so that it
    cannot be read as part of the amount."""
    if (not isinstance(value, str) or not 1 <= len(value) <= CURRENCY_SYMBOL_MAX
            or any(ch.isdigit() or ch.isspace() or ch in "+-.,'\"" or not ch.isprintable() for ch in value)):
        raise RulesError(M_("currency_symbol must be 1-4 characters other than digits, spaces, signs, separators and "
                           "quotes (e.g. \"¥\", \"€\", \"CHF\"), got {shown}", shown=_shown(value)))
    return value


def merge(base: dict, override: dict) -> dict:
    """Tables merged key by key; anything else (arrays included) replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _unknown_keys(doc: dict, defaults: dict, prefix: str = "") -> None:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            raise RulesError(M_("{name} is not a programme setting (known: {join})", name=name, join=', '.join(sorted(defaults))))
        if isinstance(defaults[key], dict) and key not in ("anomalies",):
            if not isinstance(value, dict):
                raise RulesError(M_("{name} must be a table", name=name))
            _unknown_keys(value, defaults[key], name + ".")


MAX_WHOLE = values.TRILLION  # every whole number of the programme (points, months, days, minor units)


class _Numbers:
    """Reads the programme's numbers. `strict` for a version being loaded now; a version already
    stored is read as it was accepted (the limits below came later: MAX_WHOLE, decimals of 30
    characters; a database whose history holds a version that passed before must keep working)."""

    def __init__(self, strict: bool):
        self.strict = strict

    def decimal(self, value, key: str, *, at_least_one: bool = False) -> Fraction:
        text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        if text is not None and len(text) > 30 and self.strict:
            raise RulesError(M_("{key} must be a decimal of at most 30 characters, got {shown}…", key=key, shown=_shown(value)[:40]))
        if text is None or not _DECIMAL.fullmatch(text):
            raise RulesError(M_("{key} must be a decimal{value}, got {shown}", key=key, value=' ≥ 1' if at_least_one else ' ≥ 0', shown=_shown(value)))
        number = Fraction(text)
        if at_least_one and number < 1:
            raise RulesError(M_("{key} must be a decimal ≥ 1, got {shown}", key=key, shown=_shown(value)))
        return number

    def integer(self, value, key: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            text = value.strip() if isinstance(value, str) else ""
            if re.fullmatch(r"\d+", text) and (len(text) <= 20 or not self.strict):
                value = int(text)
            else:
                raise RulesError(M_("{key} must be a whole number ≥ {minimum}, got {shown}", key=key, minimum=minimum, shown=_shown(value)[:40]))
        if value < minimum or (value > MAX_WHOLE and self.strict):
            raise RulesError(M_("{key} must be a whole number from {minimum} to {max_whole:,}, got {value}", key=key, minimum=minimum, max_whole=MAX_WHOLE, value=value))
        return value


MAX_PENDING_DAYS = 3650  # ten years: more is a typo, not a waiting period


def _pending_days(n: _Numbers, value) -> int:
    try:
        days = n.integer(value, "earn.pending_days")
    except RulesError:
        days = -1
    if not 0 <= days <= MAX_PENDING_DAYS:
        raise RulesError(M_("earn.pending_days must be a whole number from 0 to {max_pending_days:,}, got {shown}", max_pending_days=MAX_PENDING_DAYS, shown=_shown(value)[:40]))
    return days


def _choice(value, key: str, choices: tuple) -> str:
    if value not in choices:
        raise RulesError(M_("{key} must be one of {join}, got {shown}", key=key, join=', '.join(choices), shown=_shown(value)))
    return value


def _money(value, key: str, decimals: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RulesError(M_("{key} must be an amount of money as text like \"2.00\", got {shown}", key=key, shown=_shown(value)))
    try:
        return values.parse_money(str(value), decimals)
    except ValueError:
        raise RulesError(M_("{key} must be an amount of money with at most {decimals} decimals, got {shown}", key=key, decimals=decimals, shown=_shown(value))) from None


def validate(doc: dict, *, stored: bool = False) -> Rules:
    """Merged document → Rules, or RulesError naming the first bad key.

    `stored`: a version already in the database, read again (see _Numbers: the limits added
    later, and printable tier names of 40 characters, apply to new versions only)."""
    n = _Numbers(strict=not stored)
    if not isinstance(doc, dict):
        raise RulesError(M_("the programme must be a TOML table"))
    _unknown_keys(doc, {**DEFAULTS, **OPTIONAL})
    d = merge(DEFAULTS, doc)
    if "currency_symbol" in doc:
        d["currency_symbol"] = _currency_symbol(doc["currency_symbol"])
    decimals = n.integer(d["currency_decimals"], "currency_decimals")
    if decimals > 4:
        raise RulesError(M_("currency_decimals must be between 0 and 4, got {decimals}", decimals=decimals))
    for table in ("earn", "expiry", "tiers", "transfers", "anomalies"):
        if not isinstance(d[table], dict):
            raise RulesError(M_("{table} must be a table ([{table}] with its keys), got {shown}", table=table, shown=_shown(d[table])))
    if "small_sale" not in doc.get("anomalies", {}):  # the default, written with the currency's decimals
        d["anomalies"]["small_sale"] = values.format_money(2 * 10**decimals, decimals)
    e = d["earn"]
    categories = {}
    if not isinstance(e["categories"], list):
        raise RulesError(M_("earn.categories must be an array of tables"))
    for i, cat in enumerate(e["categories"]):
        key = f"earn.categories[{i}]"
        if not isinstance(cat, dict) or not isinstance(cat.get("name"), str) or not cat["name"].strip():
            raise RulesError(M_("{key} needs a name", key=key))
        if set(cat) - {"name", "multiplier"}:
            raise RulesError(M_("{key} has unknown keys: {join}", key=key, join=', '.join(sorted(set(cat) - {'name', 'multiplier'}))))
        categories[values.id_lookup(cat["name"]).lower()] = n.decimal(cat.get("multiplier"), f"{key}.multiplier")
    campaigns = []
    if not isinstance(d["campaigns"], list):
        raise RulesError(M_("campaigns must be an array of tables"))
    for i, c in enumerate(d["campaigns"]):
        key = f"campaigns[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise RulesError(M_("{key} needs a name", key=key))
        extra = set(c) - {"name", "from", "to", "multiplier", "categories"}
        if extra:
            raise RulesError(M_("{key} has unknown keys: {join}", key=key, join=', '.join(sorted(extra))))
        try:
            start = values.parse_date(str(c.get("from", "")), f"{key}.from")
            end = values.parse_date(str(c.get("to", "")), f"{key}.to")
        except ValueError as exc:
            raise RulesError(message_of(exc)) from None
        if end < start:
            raise RulesError(M_("{key}.to ({end}) is before its from ({start})", key=key, end=end, start=start))
        cats = c.get("categories", [])
        if not isinstance(cats, list) or not all(isinstance(x, str) for x in cats):
            raise RulesError(M_("{key}.categories must be an array of category names", key=key))
        campaigns.append(Campaign(c["name"], start, end, n.decimal(c.get("multiplier"), f"{key}.multiplier", at_least_one=True),
                                  frozenset(values.id_lookup(x).lower() for x in cats)))
    campaigns.sort(key=lambda c: (c.start, c.name))
    x = d["expiry"]
    t = d["tiers"]
    basis = _choice(t["basis"], "tiers.basis", ("spend", "points"))
    levels = []
    if not isinstance(t["levels"], list) or not t["levels"]:
        raise RulesError(M_("tiers.levels must be a non-empty array of { name, min, multiplier }"))
    for i, lvl in enumerate(t["levels"]):
        key = f"tiers.levels[{i}]"
        if not isinstance(lvl, dict) or not isinstance(lvl.get("name"), str) or not lvl["name"].strip():
            raise RulesError(M_("{key} needs a name", key=key))
        if (len(lvl["name"]) > 40 or not lvl["name"].isprintable()) and n.strict:
            raise RulesError(M_("{key}.name must be at most 40 printable characters, got {shown}", key=key, shown=_shown(lvl['name'])[:50]))
        if set(lvl) - {"name", "min", "multiplier"}:
            raise RulesError(M_("{key} has unknown keys: {join}", key=key, join=', '.join(sorted(set(lvl) - {'name', 'min', 'multiplier'}))))
        if basis == "spend":
            minimum = _money(lvl.get("min"), f"{key}.min", decimals)
        else:
            minimum = n.integer(lvl.get("min"), f"{key}.min")
        levels.append(Level(lvl["name"].strip(), minimum, n.decimal(lvl.get("multiplier"), f"{key}.multiplier", at_least_one=True)))
    if levels[0].min != 0:
        raise RulesError(M_("tiers.levels[0].min must be 0 (the lowest tier holds everyone), got {shown}", shown=_shown(t['levels'][0].get('min'))))
    for i in range(1, len(levels)):
        if levels[i].min <= levels[i - 1].min:
            raise RulesError(M_("tiers.levels[{i}].min must be greater than the level before it (minimums strictly increase)", i=i))
    names = [lvl.name for lvl in levels]
    if len(set(names)) != len(names):
        raise RulesError(M_("tiers.levels names must be unique"))
    tr = d["transfers"]
    if not isinstance(tr["enabled"], bool):
        raise RulesError(M_("transfers.enabled must be true or false, got {shown}", shown=_shown(tr['enabled'])))
    a = d["anomalies"]
    anomalies = {
        "max_sales_per_day": n.integer(a["max_sales_per_day"], "anomalies.max_sales_per_day", 1),
        "small_sale": _money(a["small_sale"], "anomalies.small_sale", decimals),
        "small_burst": n.integer(a["small_burst"], "anomalies.small_burst", 2),
        "small_burst_minutes": n.integer(a["small_burst_minutes"], "anomalies.small_burst_minutes", 1),
        "refund_ratio_factor": n.decimal(a["refund_ratio_factor"], "anomalies.refund_ratio_factor"),
        "award_redeem_points": n.integer(a["award_redeem_points"], "anomalies.award_redeem_points", 1),
        "award_redeem_days": n.integer(a["award_redeem_days"], "anomalies.award_redeem_days", 0),
    }
    unknown = set(a) - set(DEFAULTS["anomalies"])
    if unknown:
        raise RulesError(M_("anomalies.{sorted_0} is not a programme setting", sorted_0=sorted(unknown)[0]))
    points_per_unit = n.decimal(e["points_per_unit"], "earn.points_per_unit")
    first_mult = n.decimal(e["first_purchase_multiplier"], "earn.first_purchase_multiplier", at_least_one=True)
    birthday_mult = n.decimal(e["birthday_multiplier"], "earn.birthday_multiplier", at_least_one=True)
    return Rules(
        doc=d,
        # What earning multiplies by, as integer (numerator, denominator) pairs: Fraction's
        # properties and comparisons cost a microsecond each, and a sale needs several.
        base_ratio=(points_per_unit.numerator, 10**decimals * points_per_unit.denominator),
        category_ratios={name: (m.numerator, m.denominator) for name, m in categories.items()},
        tier_bonuses={lvl.name: (f"tier:{lvl.name}", lvl.multiplier.numerator, lvl.multiplier.denominator)
                      for lvl in levels if lvl.multiplier > 1},
        ranks={lvl.name: i for i, lvl in enumerate(levels)},
        has_promotions=first_mult > 1 or birthday_mult > 1 or any(c.multiplier > 1 for c in campaigns),
        currency_decimals=decimals,
        point_value=n.decimal(d["point_value"], "point_value"),
        points_per_unit=points_per_unit,
        rounding=_choice(e["rounding"], "earn.rounding", ("down", "half_up")),
        min_amount=_money(e["min_amount"], "earn.min_amount", decimals),
        stacking=_choice(e["stacking"], "earn.stacking", ("max", "multiply")),
        signup_bonus=n.integer(e["signup_bonus"], "earn.signup_bonus"),
        first_purchase_multiplier=first_mult,
        birthday_multiplier=birthday_mult,
        referral_bonus=n.integer(e["referral_bonus"], "earn.referral_bonus"),
        pending_days=_pending_days(n, e["pending_days"]),
        categories=categories,
        campaigns=tuple(campaigns),
        expiry_months=n.integer(x["months"], "expiry.months"),
        expiry_round_to=_choice(x["round_to"], "expiry.round_to", ("month_end", "day")),
        tier_basis=basis,
        tier_window=_choice(t["window"], "tiers.window", ("rolling_12m", "calendar_year", "lifetime")),
        hold_months=n.integer(t["hold_months"], "tiers.hold_months"),
        tier_pooling=_choice(t["pooling"], "tiers.pooling", ("member", "household")),
        levels=tuple(levels),
        transfers_enabled=tr["enabled"],
        currency_symbol=d.get("currency_symbol", ""),
        max_transfer_per_month=n.integer(tr["max_points_per_month"], "transfers.max_points_per_month"),
        anomalies=anomalies,
    )


def parse_toml(text: str, source: str = "program.toml") -> dict:
    """TOML text → a document (not yet merged); RulesError with the parser's message."""
    import tomllib

    if text.startswith("\ufeff"):  # a BOM, as Windows editors write
        text = text[1:]
    try:
        return _dates_as_text(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(M_("{source} is not valid TOML: {exc}", source=source, exc=exc)) from None
    except RecursionError:
        raise RulesError(M_("{source} nests tables or arrays too deeply to be a programme", source=source)) from None
    except ValueError as exc:  # an integer of thousands of digits, beyond Python's conversion limit
        raise RulesError(M_("{source} has a number too large to read ({exc}…)", source=source, exc=str(exc)[:40])) from None


def _shown(value) -> str:
    """A TOML value as an error message quotes it (JSON-like; dates and times as text)."""
    return json.dumps(value, default=str, ensure_ascii=False)


def _dates_as_text(value):
    """TOML's own dates (`from = 2026-12-05`, unquoted) as the text the rules store; times stay
    as they are, for validation to refuse by key."""
    import datetime as dt

    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def set_key(doc: dict, dotted: str, raw: str) -> dict:
    """A copy of `doc` with one dotted key set from command-line text (TOML value syntax accepted)."""
    import tomllib

    parts = dotted.split(".")
    node = {**DEFAULTS, **OPTIONAL}
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise RulesError(M_("{dotted} is not a programme setting", dotted=dotted))
        node = node[part]
    if isinstance(node, (dict, list)):
        raise RulesError(M_("{dotted} is a table or array; edit it in a TOML file and use 'loyalty program load'", dotted=dotted))
    try:
        value = _dates_as_text(tomllib.loads(f"v = {raw}")["v"])
    except tomllib.TOMLDecodeError:
        value = raw
    except (RecursionError, ValueError):  # nested too deeply; an integer of thousands of digits
        raise RulesError(M_("{dotted} cannot be set to that value: it is nested too deeply or too large", dotted=dotted)) from None
    if isinstance(node, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = raw.strip()
    out = copy.deepcopy(doc)
    target = out
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return out


def to_toml(doc: dict) -> str:
    """A rules document as TOML, for `program show` (our schema only, not general TOML)."""

    def scalar(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + " }"
        return json.dumps(str(v), ensure_ascii=False)

    lines = []
    for key, value in doc.items():
        if not isinstance(value, (dict, list)) or (isinstance(value, list) and not value and key != "campaigns"):
            lines.append(f"{key} = {scalar(value)}")
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            for k, v in value.items():
                if key == "earn" and k == "categories":
                    continue
                if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                    lines.append(f"{k} = [")
                    lines.extend(f"  {scalar(x)}," for x in v)
                    lines.append("]")
                else:
                    lines.append(f"{k} = {scalar(v)}")
            if key == "earn":
                for cat in value.get("categories", []):
                    lines.append("\n[[earn.categories]]")
                    lines.extend(f"{k} = {scalar(v)}" for k, v in cat.items())
    for c in doc.get("campaigns", []):
        lines.append("\n[[campaigns]]")
        lines.extend(f"{k} = {scalar(v)}" for k, v in c.items())
    return "\n".join(lines).lstrip("\n") + "\n"


class Programme:
    """Every stored version of the rules, and which one is in force on a date."""

    def __init__(self, versions: list[tuple[str, Rules]]):
        # (applies_from, rules), oldest first; later loads win on the same date.
        self.versions = versions
        self._by_date: dict[str, Rules] = {}
        # Before the first version (loaded with a later --from): the defaults, but in the database's
        # own currency, which the first version fixed for good.
        self.default = validate({"currency_decimals": versions[0][1].currency_decimals} if versions else {})

    def for_date(self, date: str) -> Rules:
        day = date[:10]
        rules = self._by_date.get(day)
        if rules is None:
            rules = self.default
            for applies_from, version in self.versions:
                if applies_from <= day:
                    rules = version
            self._by_date[day] = rules
        return rules

    @property
    def currency_decimals(self) -> int:
        return self.versions[0][1].currency_decimals if self.versions else self.default.currency_decimals

    @property
    def holds_points_back(self) -> bool:
        """Whether any version ever held a sale's points back (earn.pending_days): if none did, no
        lot can be pending, and nothing needs looking up."""
        return any(rules.pending_days for __, rules in self.versions)
