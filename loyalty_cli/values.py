"""Parsing and formatting of the values users type: dates, datetimes, money, ids.

Everything here is strict: a value is either exactly what the spec allows or a
ValueError whose message says what was expected. Nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

from loyalty_cli.errors import UsageError
from loyalty_cli.i18n import M_, _, display, message_of, worded

EARLIEST = "0001-01-01"

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?", re.ASCII)
_EMAIL = re.compile(r"[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"'.]+")
_PHONE = re.compile(r"\+?[0-9(][0-9 ()./-]{4,30}")

# The largest number the tool takes anywhere (an amount in minor units, the points of one entry, a
# programme setting): a trillion, far beyond any shop and far below the 64-bit sums SQLite keeps.
TRILLION = 10**12
MAX_MINOR_UNITS = TRILLION


def parse_date(text: str, what: str = "date") -> str:
    """`YYYY-MM-DD` → the same text, validated (a real calendar day)."""
    m = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            pass
    raise ValueError(M_("{what} must be a date YYYY-MM-DD, got {text!r}", what=what, text=text))


_FULL = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)", re.ASCII)
_DAY_OK: dict[str, bool] = {}


def parse_datetime(text: str, what: str = "date") -> str:
    """ISO 8601 shop-local date or datetime → `YYYY-MM-DDTHH:MM:SS`. Offsets are refused."""
    full = _FULL.fullmatch(text) if isinstance(text, str) else None
    if full:  # the common case in a till export: validate each calendar day once
        day = full[1]
        ok = _DAY_OK.get(day)
        if ok is None:
            try:
                dt.date.fromisoformat(day)
                ok = True
            except ValueError:
                ok = False
            if len(_DAY_OK) < 100_000:
                _DAY_OK[day] = ok
        if ok:
            return f"{day}T{full[2]}:{full[3]}:{full[4]}"
    m = _DATETIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if m:
        y, mo, d, h, mi, s = m.groups()
        try:
            value = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
            return value.isoformat(timespec="seconds")
        except ValueError:
            pass
    raise ValueError(
        M_("{what} must be a shop-local date or datetime (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], no offset), got {text!r}", what=what, text=text)
    )


# strftime directives a till's date format may use: dates and times, never an offset or zone
# (times are shop-local, SPEC §3), nothing that depends on the locale's week numbering.
_FORMAT_DIRECTIVES = set("YymdbBjHIMSpfaA%")


def check_date_format(fmt: str) -> str:
    """A --date-format that names a whole date (year, month and day, or day of the year)."""
    directives = re.findall(r"%(.?)", fmt, re.DOTALL)
    for d in directives:
        if not d:
            raise ValueError(M_("--date-format {fmt!r} ends with a lone % (write %% for a percent sign)", fmt=fmt))
        if d in ("z", "Z"):
            raise ValueError(M_("--date-format {fmt!r} reads an offset or zone (%{d}); times are shop-local", fmt=fmt, d=d))
        if d not in _FORMAT_DIRECTIVES:
            raise ValueError(M_("--date-format {fmt!r} has %{d}, which is not one of {join}", fmt=fmt, d=d, join=' '.join(('%' + c for c in sorted(_FORMAT_DIRECTIVES)))))
    found = set(directives)
    if not (found & set("Yy") and (found & set("mbB") and "d" in found or "j" in found)):
        raise ValueError(M_("--date-format {fmt!r} must read a whole date: a year (%Y or %y) with a month and a day (%m %d) or a day of the year (%j)", fmt=fmt))
    return fmt


def parse_with_format(text: str, fmt: str, what: str = "date") -> str:
    """A date in the till's own `strftime` format → `YYYY-MM-DDTHH:MM:SS`."""
    try:
        value = dt.datetime.strptime(text.strip(), fmt)
    except ValueError:
        raise ValueError(M_("{what} must match the date format {fmt!r}, got {text!r}", what=what, fmt=fmt, text=text)) from None
    return value.isoformat(timespec="seconds")


def end_of_day(date: str) -> str:
    """The last stored timestamp of a date: "as of D" includes everything up to here."""
    return date[:10] + "T23:59:59"


def to_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def add_days(date: str, days: int) -> str:
    """`days` after a date (before it when negative), clamped to the calendar's first and last day."""
    try:
        return (to_date(date) + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        return "9999-12-31" if days > 0 else EARLIEST


def days_in_month(year: int, month: int) -> int:
    """28-31 (the calendar module would import locale, slowing every start-up)."""
    if month == 12:
        return 31
    return (dt.date(year, month + 1, 1) - dt.date(year, month, 1)).days


def add_months(date: str, months: int) -> str:
    """`months` after a date, keeping the day, clamped to the month's last day."""
    d = to_date(date)
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if year < 1:
        return EARLIEST
    if year > 9999:
        return "9999-12-31"
    day = min(d.day, days_in_month(year, month))
    return dt.date(year, month, day).isoformat()


def month_end(date: str) -> str:
    d = to_date(date)
    return dt.date(d.year, d.month, days_in_month(d.year, d.month)).isoformat()


def days_between(earlier: str, later: str) -> int:
    return (to_date(later) - to_date(earlier)).days


@lru_cache(maxsize=16)
def money_pattern(decimals: int, decimal_comma: bool = False) -> re.Pattern:
    """The regular expression of SPEC §4 for amounts with `decimals` places.

    With `decimal_comma` this is the pattern of the comma forms only (`1.234,56`,
    `12,50`); parse_money also accepts the plain form (`12.50`) there, as §4 says.
    """
    frac = rf"(?:\.(\d{{1,{decimals}}}))?" if decimals else ""
    if not decimal_comma:
        return re.compile(rf"(\d+){frac}", re.ASCII)
    cfrac = rf"(?:,(\d{{1,{decimals}}}))?" if decimals else ""
    return re.compile(rf"(\d{{1,3}}(?:\.\d{{3}})+|\d+){cfrac}", re.ASCII)


def parse_money(text: str, decimals: int = 2, decimal_comma: bool = False, pattern: re.Pattern | None = None) -> int:
    """Decimal text → integer minor units. No sign, no exponent, no extra decimals.

    With `decimal_comma`, `1.234,56`, `12,50` and the plain `12.50` are all
    accepted; a text both readings accept with different values (`1.234` when
    there are three decimals) is refused as ambiguous, never guessed.
    """
    clean = text.strip() if isinstance(text, str) else None
    if clean is not None and len(clean) > 40:  # beyond any amount allowed (and int()'s digit limit)
        raise ValueError(M_("amount {clean!r}… is too large (at most {largest_amount})", clean=clean[:20], largest_amount=_largest_amount(decimals)))
    m = (pattern or money_pattern(decimals, decimal_comma)).fullmatch(clean) if clean is not None else None
    value = _minor_units(m, decimals, decimal_comma) if m else None
    if decimal_comma and clean is not None:
        plain = money_pattern(decimals).fullmatch(clean)
        if plain:
            plain_value = _minor_units(plain, decimals, False)
            if value is not None and value != plain_value:
                raise ValueError(M_("amount {clean!r} is ambiguous with --decimal-comma (thousands or decimals?); write it with a comma for the decimals", clean=clean))
            value = plain_value
    if value is None:
        example = _("1.234,56 or 12,50") if decimal_comma else "12.50"
        raise ValueError(M_("amount must be a number of money like {example} (at most {decimals} decimals, no sign), got {text!r}", example=example, decimals=decimals, text=text))
    if value > MAX_MINOR_UNITS:
        raise ValueError(M_("amount {clean!r} is too large (at most {largest_amount})", clean=clean, largest_amount=_largest_amount(decimals)))
    return value


def _largest_amount(decimals: int) -> str:
    """The largest amount allowed, in money grouped for people: 10,000,000,000.00 (two decimals)."""
    units, frac = divmod(MAX_MINOR_UNITS, 10**decimals)
    return f"{units:,}" + (f".{frac:0{decimals}d}" if decimals else "")


def _minor_units(m: re.Match, decimals: int, decimal_comma: bool) -> int:
    units = m[1].replace(".", "") if decimal_comma else m[1]
    frac = (m[2] or "") if decimals else ""
    return int(units) * 10**decimals + (int(frac.ljust(decimals, "0")) if frac else 0)


class Amount(str):
    """Money as the tool writes it ("-12.50"): text in JSON, but a number to a spreadsheet, so CSV
    output leaves a negative one as it is (render.safe_cell quotes other text starting with -)."""

    __slots__ = ()


def format_money(minor: int, decimals: int = 2) -> str:
    """Integer minor units → decimal text with exactly `decimals` places ("12.50"), as an Amount."""
    if decimals == 0:
        return Amount(minor)
    sign = "-" if minor < 0 else ""
    units, frac = divmod(abs(minor), 10**decimals)
    return Amount(f"{sign}{units}.{frac:0{decimals}d}")


def format_money_column(minors, decimals: int = 2) -> list[str]:
    """format_money over many values (a report's column), without a function call per value."""
    if decimals == 0:
        return list(map(Amount, minors))
    scale = 10**decimals
    fmt = f"%d.%0{decimals}d"
    return [Amount(fmt % divmod(v, scale) if v >= 0 else "-" + fmt % divmod(-v, scale)) for v in minors]


def parse_email(text: str) -> str:
    """An email address, lower-cased: emails are compared case-insensitively."""
    value = text.strip()
    refuse_masked(value, "email")
    if not _EMAIL.fullmatch(value) or len(value) > 254 or not value.isprintable():
        raise ValueError(M_("email is not a valid address (expected something like name@shop.example)"))
    return value.lower()


def parse_phone(text: str) -> str:
    value = text.strip()
    refuse_masked(value, "phone")
    if not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 5:
        raise ValueError(M_("phone must be digits, spaces and + ( ) - . only, with at least 5 digits"))
    return value


# What no stored text may hold: control characters (C0, DEL, C1), the line and paragraph
# separators, and the bidirectional marks, overrides and isolates, which make a terminal or a
# spreadsheet show something other than what is stored (ZWJ and ZWNJ stay: scripts need them).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Characters that render as nothing: Unicode's Default_Ignorable_Code_Point set (soft hyphen,
# combining grapheme joiner, Arabic letter mark, the Hangul fillers, Khmer inherent vowels,
# Mongolian selectors, zero-width characters and bidi marks, word joiner and invisible operators,
# variation selectors, BOM, tags) plus the Braille blank and the line/paragraph separators. An id
# with one of them appended looks like the id without it but is another id (a second purchase,
# double points), so ids refuse them whatever their Unicode category.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")


def _id_text(text: str, what: str, max_len: int) -> str:
    """The checks every id shares: trimmed, NFC, 1-`max_len` printable characters, none that
    renders as nothing, no combining mark left over after NFC on a base that does not take it."""
    value = text.strip()
    if value.isascii():  # the common case, and already NFC with nothing invisible
        if not value or len(value) > max_len or not value.isprintable():
            raise ValueError(M_("{what} must be 1-{max_len} printable characters, got {text!r}", what=what, max_len=max_len, text=text[:40]))
        return value
    import unicodedata

    value = unicodedata.normalize("NFC", value)
    hidden = INVISIBLE.search(value)
    if hidden:
        raise ValueError(M_("{what} holds U+{ord:04X}, a character that renders as nothing, got {ascii}", what=what, ord=ord(hidden[0]), ascii=ascii(value[:40])))
    if not value or len(value) > max_len or not value.isprintable():
        raise ValueError(M_("{what} must be 1-{max_len} printable characters, got {text!r}", what=what, max_len=max_len, text=text[:40]))
    base = ""
    for char in value:
        if unicodedata.category(char)[0] != "M":
            base = char
        elif not _takes_marks(base):
            # NFC composes an accent with every Latin, Greek or Cyrillic letter that has a composed
            # form (é); one left over there, or on a digit or a sign, was typed as a separate
            # character and makes another id that looks the same. Scripts written with marks
            # (Devanagari, Thai, Arabic, Hebrew …) keep theirs.
            raise ValueError(M_("{what} holds a separate combining mark U+{ord:04X} (after {value!r}), got {ascii}", what=what, ord=ord(char), value=base or 'nothing', ascii=ascii(value[:40])))
    return value


def _takes_marks(base: str) -> bool:
    """Whether a combining mark may follow `base` in an id: a letter of a script written with marks."""
    import unicodedata

    if not base or base.isascii() or unicodedata.category(base)[0] != "L":
        return False
    return not unicodedata.name(base, "").startswith(("LATIN", "GREEK", "CYRILLIC"))


def parse_id(text: str, what: str = M_("member id")) -> str:
    """An id (member, purchase, store): 1-64 printable characters, NFC, nothing invisible, as the
    imports and the counter take them (values.member_key folds a member id for matching)."""
    value = text.strip()
    if value.isascii() and 0 < len(value) <= 64 and value.isprintable():
        return value  # the common case (a million per import), inlined
    return _id_text(text, what, 64)


def id_lookup(text: str | None, what: str | None = None) -> str:
    """An id typed to find something already stored (a receipt to refund, a voucher): trimmed and
    NFC, as ids are stored, but not refused for what a new id may not hold (older data keeps its ids).
    With `what` (how the command names it), an empty id is a usage error (exit 2), not "not found"."""
    value = (text or "").strip()
    if not value and what is not None:
        return checked(parse_id, value, what)  # parse_id refuses it, saying what an id is
    if value.isascii():
        return value
    import unicodedata

    return unicodedata.normalize("NFC", value)


def member_key(member_id: str) -> str:
    """What member ids are matched by (SPEC §4: trimmed, without regard to case): the NFC text
    case-folded (Unicode folding, so `STRASSE` is `straße` and `Ω` is `ω`), NFC again."""
    if member_id.isascii():
        return member_id.strip().lower()
    import unicodedata

    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", member_id.strip()).casefold())


# A masked email or phone as lists and exports show them (mask_email, mask_phone): a run of stars.
MASK_RUN = "***"


def refuse_masked(text: str, what: str) -> None:
    """A masked value (`a***@shop.example`, `*******1234`) is never taken as a new value: it would
    overwrite the real one with stars (an export made without --show-pii, imported again)."""
    if MASK_RUN in text:
        raise ValueError(M_("{what} is a masked value (it holds {mask_run}), not a real one: export with --show-pii to get the real values, or leave the cell blank to keep what is stored", what=what, mask_run=MASK_RUN))


def checked(parse, value, *args, message: str | None = None):
    """`parse(value, *args)` for a value typed on the command line: its ValueError becomes a usage
    error (exit 2), with `message` instead of the parser's own when given."""
    try:
        return parse(value, *args)
    except ValueError as exc:
        raise UsageError(message or message_of(exc)) from None


def check_sort(key: str, keys, command: str = "") -> str:
    """`key` when it is one of `keys` (a list's --sort choices, in the order the help lists them),
    else a usage error naming them; `command` ("report churn") says which list when the message
    would otherwise be ambiguous. Every list command checks its --sort here, so all read alike."""
    if key not in keys:
        where = _(" for {command}").format(command=command) if command else ""
        raise UsageError(M_("--sort{where} must be one of {join}, got {key!r}", where=where, join=', '.join(keys), key=key))
    return key


def parse_category(text: str | None) -> str | None:
    """A product category: at most 100 printable characters; blank is none."""
    value = (text or "").strip() or None
    if value is None or value.isascii() and len(value) <= 100 and value.isprintable():
        return value  # the common case (the checks below would pass it unchanged)
    try:
        return _id_text(value, "category", 100)  # "tobacco" + an invisible filler would escape its rule
    except ValueError as exc:
        raise ValueError(worded(str(exc).replace("must be 1-100", "must be at most 100"), display(exc))) from None


STORE_MAX = 40


def parse_store(text: str | None, what: str = "store") -> str | None:
    """A branch (store) name: trimmed, 1-40 characters, NFC, no control characters, line separators
    or bidirectional marks; blank is none (issue 18)."""
    value = (text or "").strip()
    if not value:
        return None
    if value.isascii() and len(value) <= STORE_MAX and value.isprintable():
        return value  # the common case (parse_text would pass it unchanged)
    return parse_text(value, what, STORE_MAX)


def parse_text(text: str, what: str, max_len: int, keep: str = "") -> str:
    """Free text a person typed (a name, a reason, an operator): 1 to `max_len` characters, NFC, no
    control characters, line or paragraph separators, bidirectional marks or overrides (those in
    `keep`, e.g. a comment's newlines, allowed). Any script is welcome, ZWJ and ZWNJ included."""
    value = text.strip()
    if not value.isascii():
        import unicodedata

        value = unicodedata.normalize("NFC", value)  # everything stored is NFC
    unsafe = _UNSAFE.search(value.translate({ord(c): None for c in keep}) if keep else value)
    if not value or len(value) > max_len or unsafe:
        raise ValueError(M_("{what} must be 1-{max_len} characters without control characters, line separators or bidirectional marks", what=what, max_len=max_len))
    return value


def parse_int(text: str, what: str, minimum: int | None = None) -> int:
    value = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,15}", value):
        raise ValueError(M_("{what} must be a whole number, got {text!r}", what=what, text=text))
    number = int(value)
    if minimum is not None and number < minimum:
        raise ValueError(M_("{what} must be at least {minimum}, got {number}", what=what, minimum=minimum, number=number))
    return number


def mask_email(email: str | None) -> str | None:
    """`ana@shop.example` → `a***@shop.example`."""
    if not email:
        return email
    local, __, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    """`+44 7700 901234` → `********1234`: a star for each digit but the last four (at least three)."""
    if not phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(len(digits) - 4, 3) + "".join(digits[-4:])
