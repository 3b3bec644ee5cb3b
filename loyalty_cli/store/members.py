"""Member rows: look-ups by id, key and email, enrolment, profile changes, the listing, erasure.

Every function takes the open transaction `tx` a `Store.write()` or `Store.read()` gave the
caller, and returns plain values (tuples, dicts, strings).
"""

from __future__ import annotations

from collections import namedtuple

from loyalty_cli.store import in_parts
from loyalty_cli.store.chain import CHAINED_MEMBER_FIELDS

# The profile columns a command may change (`members edit`, `members import`).
PROFILE_FIELDS = ("name", "email", "phone", "birthday", "joined_on", "referred_by")
_PROFILE_COLUMNS = frozenset(PROFILE_FIELDS)

# `members list --sort NAME` → its ORDER BY (allow-listed: the name never reaches the SQL itself).
LIST_ORDER = {
    "id": "member_id",
    "name": "name COLLATE NOCASE",
    "joined": "joined_on",
    "balance": "balance DESC",
    "tier": "tier",
}

Standing = namedtuple("Standing", "tier erased_at")
Profile = namedtuple("Profile", "member_id name email phone birthday joined_on referred_by tier tier_since "
                                "floor_tier floor_until erased_at")

INSERT = ("INSERT INTO members (member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, "
          "balance, member_key) VALUES (?,?,?,?,?,?,?,?,?,0,?)")


def exists(tx, member_id: str) -> bool:
    """Whether a member with exactly this stored id is enrolled (erased or not)."""
    return tx.execute("SELECT 1 FROM members WHERE member_id = ?", (member_id,)).fetchone() is not None


def standing(tx, member_id: str) -> Standing | None:
    """The member's tier and erasure time (None while not erased); None when no such member."""
    row = tx.execute("SELECT tier, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return Standing(*row) if row else None


def key_taken(tx, key: str) -> bool:
    """Whether a member already has this lookup key (values.member_key)."""
    return tx.execute("SELECT 1 FROM members WHERE member_key = ?", (key,)).fetchone() is not None


def ids_with_key(tx, key: str) -> list[str]:
    """The stored ids whose lookup key is `key`, in id order (two only in a database made before
    ids matched without regard to case)."""
    return [r[0] for r in tx.execute("SELECT member_id FROM members WHERE member_key = ? ORDER BY member_id", (key,))]


def ids_with_keys(tx, keys: list[str]) -> list[tuple[str, str]]:
    """(key, stored id) of every member whose key is among `keys` (at most 500 a call)."""
    return tx.execute(f"SELECT member_key, member_id FROM members WHERE member_key IN ({','.join('?' * len(keys))})",
                      keys).fetchall()


def holder_of_email(tx, email: str) -> str | None:
    """The member whose email this is, or None."""
    row = tx.execute("SELECT member_id FROM members WHERE email = ?", (email,)).fetchone()
    return row[0] if row else None


def match_for_import(tx, member_id: str | None, email: str | None) -> tuple[str, str | None] | None:
    """(member_id, erased_at) of the member an import row names: by id when it has one, else by email."""
    if member_id is not None:
        return tx.execute("SELECT member_id, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return tx.execute("SELECT member_id, erased_at FROM members WHERE email = ?", (email,)).fetchone()


def insert(tx, member_id: str, name, email, phone, birthday, joined_on: str, referred_by, tier: str, key: str) -> None:
    """A new member at `tier` since joining, balance 0."""
    tx.execute(INSERT, (member_id, name, email, phone, birthday, joined_on, referred_by, tier, joined_on, key))
    tx.journal.add("members", (member_id, joined_on, referred_by, tier, joined_on))


def profile_values(tx, member_id: str, fields) -> tuple:
    """The member's current values of some PROFILE_FIELDS (at least one), in the order given."""
    assert _PROFILE_COLUMNS.issuperset(fields)  # they name columns
    return tx.execute(f"SELECT {', '.join(fields)} FROM members WHERE member_id = ?", (member_id,)).fetchone()


def update(tx, member_id: str, changes: dict) -> None:
    """Set profile fields (keys among PROFILE_FIELDS only: they name columns)."""
    assert changes and _PROFILE_COLUMNS.issuperset(changes)  # they name columns
    sets = ", ".join(f"{k} = ?" for k in changes)
    tx.execute(f"UPDATE members SET {sets} WHERE member_id = ?", (*changes.values(), member_id))
    for field in CHAINED_MEMBER_FIELDS:  # rights, not personal data: chained
        if field in changes:
            tx.journal.add("member_edits", (member_id, field, changes[field]))


def profile(tx, member_id: str) -> Profile | None:
    """The member's row as `members show` needs it, or None."""
    row = tx.execute("SELECT member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, "
                     "floor_tier, floor_until, erased_at FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return Profile(*row) if row else None


def tiers_held(tx) -> set[str]:
    """Every tier some member holds now."""
    return {name for (name,) in tx.execute("SELECT DISTINCT tier FROM members")}


def listing(tx, *, tier: str | None, search: str | None, order: str, limit: int | None,
            balances_after: str | None, merged: bool = False) -> tuple[list[tuple], int]:
    """`members list`: rows (member_id, name, email, phone, tier, balance, joined_on, erased, merged_into)
    of the members matching, in LIST_ORDER[order] then id order, at most `limit`; and how many match.
    Members merged into another (aliases, no longer members in their own right) only with `merged`.

    `balances_after`: a day whose later entries must not count in the balances (the caller holds
    temp.after_entries for it, ledger.entries_after); None: the balances as stored."""
    from loyalty_cli.store.ledger import BALANCES_SQL

    where, params = [], []
    if tier:
        where.append("tier = ? COLLATE NOCASE")
        params.append(tier)
    if search:
        # Case folded in Python on both sides: SQLite's LIKE ignores the case of ASCII letters only
        # (a search for "öztürk" must find "Öztürk").
        folded = search.casefold()
        like = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(fold(member_id) LIKE ? ESCAPE '\\' OR fold(name) LIKE ? ESCAPE '\\' OR fold(email) LIKE ? ESCAPE '\\' "
                     "OR phone LIKE ? ESCAPE '\\')")
        params += [like] * 4
    if not merged:
        where.append("merged_into IS NULL")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    if hasattr(tx, "create_function"):  # (PostgreSQL: lower(), store.postgres)
        tx.create_function("fold", 1, lambda text: text.casefold() if text else text, deterministic=True)
    total = tx.execute(f"SELECT count(*) FROM members{clause}", params).fetchone()[0]
    source = "members"
    if balances_after is not None:  # the reports' balances as of the day (ledger.BALANCES_SQL)
        source = ("(SELECT m.member_id, m.name, m.email, m.phone, m.tier, b.balance, m.joined_on, m.erased_at, "
                  "m.merged_into "
                  f"FROM main.members m JOIN (WITH {BALANCES_SQL} SELECT member_id, balance FROM balances) b "
                  "ON b.member_id = m.member_id) AS members")
    sql = (f"SELECT member_id, name, email, phone, tier, balance, joined_on, erased_at IS NOT NULL, merged_into "
           f"FROM {source}{clause} "
           f"ORDER BY {LIST_ORDER[order]}, member_id")
    if limit is not None:
        sql += " LIMIT ?"
        params = params + [limit]
    return tx.execute(sql, params).fetchall(), total


def erasure(tx, member_id: str) -> tuple[str | None, str | None] | None:
    """(erased_at, erased_by) of the member (both None while not erased), or None when no such member."""
    return tx.execute("SELECT erased_at, erased_by FROM members WHERE member_id = ?", (member_id,)).fetchone()


def erase(tx, member_id: str, at: str, by: str) -> None:
    """Blank the member's personal fields, mark them erased and record who erased them and when."""
    tx.execute("UPDATE members SET name = NULL, email = NULL, phone = NULL, birthday = NULL, erased_at = ?, erased_by = ? "
               "WHERE member_id = ?", (at, by, member_id))
    tx.execute("INSERT INTO erasures (member_id, at, by) VALUES (?, ?, ?)", (member_id, at, by))
    tx.journal.add("erasures", (member_id, at, by))


# -- members import: the rows a file names, read in bulk ---------------------------------------
# What the import asks of a member (store.members and store.hygiene's look-ups), in this order.
_IMPORT_COLUMNS = ("member_id", "member_key", "email", "erased_at", "merged_into", "tier", "name", "phone", "birthday",
                   "joined_on", "referred_by", "email_opt_in", "email_consent_at", "email_consent_source",
                   "sms_opt_in", "sms_consent_at", "sms_consent_source")
_COL = {name: i for i, name in enumerate(_IMPORT_COLUMNS)}
_CONSENT = {"email": (_COL["email_opt_in"], _COL["email_consent_at"], _COL["email_consent_source"]),
            "sms": (_COL["sms_opt_in"], _COL["sms_consent_at"], _COL["sms_consent_source"])}
# INSERT with every value a parameter (balance 0 among them): on PostgreSQL a batch of such plain
# INSERTs streams through COPY (store.postgres), where INSERT's literal 0 made it a row-by-row pipeline.
_INSERT_ALL = ("INSERT INTO members (member_id, name, email, phone, birthday, joined_on, referred_by, tier, tier_since, "
               "balance, member_key) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
# The columns an import's look-ups may select members by (allow-listed: they name columns).
_LOOKUP_COLUMNS = ("member_key", "member_id", "email")


def import_rows(tx, column: str, wanted: list[str]) -> list[tuple]:
    """The _IMPORT_COLUMNS of every member whose `column` (one of _LOOKUP_COLUMNS) is among `wanted`
    (distinct values), with one query per 500 values.

    On PostgreSQL each value of the array is one index probe (a lateral subquery the planner may
    not flatten: OFFSET 0). `column = ANY(array)` there, once the driver has prepared the statement,
    gets a generic plan, and for member_key inside an import that has just enrolled thousands of
    members (no statistics yet) that plan scans the whole table comparing every row with every
    value: 0.1 s growing to nearly a second a query at 20,000 members; a hash join, chosen for the
    same want of statistics, also reads the whole table every time."""
    from loyalty_cli.store import dialect

    assert column in _LOOKUP_COLUMNS  # it names a column
    columns = ", ".join(_IMPORT_COLUMNS)
    found = []
    for part, marks in in_parts(wanted):
        if dialect(tx) == "postgresql":
            found += tx.execute(f"SELECT m.* FROM unnest(?::text[]) AS w(v), LATERAL "
                                f"(SELECT {columns} FROM members WHERE {column} = w.v OFFSET 0) AS m", (part,)).fetchall()
        else:
            found += tx.execute(f"SELECT {columns} FROM members WHERE {column} IN ({marks})",
                                part).fetchall()
    return found


class ImportLookups:
    """The members a members import names, read in bulk and kept up to date as its rows are applied.

    An import row asks about a member several times (its id's stored spelling, whether it was merged
    away, the member an email belongs to, the referrer's standing, the profile and consent held):
    asked one by one, that is about ten statements a row, each a round trip to a PostgreSQL server.
    `prepare(keys, ids, emails)` reads every member a chunk of rows names with a few queries; the
    functions of this module (and store.hygiene's) the domain calls are then answered here, under
    the same names and with the same results, from what was read and from what the import itself
    wrote since. A value not prepared is read from the database (and remembered): the answers never
    depend on what was prepared, only the number of statements does.

    New members are buffered (`insert`, recorded on the chain at once, in the same order as
    before) and written together with `write()`, which the import calls before anything that
    needs their rows: its ledger's flush, a profile or consent update, the end of the import.
    """

    def __init__(self, tx):
        self.tx = tx
        self.rows: dict[str, list] = {}        # member_id → _IMPORT_COLUMNS (a list: updated in place)
        self.by_key: dict[str, list[str]] = {}  # member_key → the member ids with it
        self.by_email: dict[str, str] = {}      # email → member_id
        self.known = {column: set() for column in _LOOKUP_COLUMNS}  # values whose members are all here
        self._new: list[tuple] = []             # INSERT rows not written yet
        self._consent: list[tuple] = []         # consent answers not written yet (set_consent)
        self._candidates: list[str] = []        # ids offered for members enrolled without one (offer_ids)

    # -- reading ----------------------------------------------------------------------------
    def _take(self, row) -> None:
        member_id = row[0]
        if member_id in self.rows:  # what this import holds is newer than what the database said
            return
        row = list(row)
        self.rows[member_id] = row
        if row[1] is not None:
            self.by_key.setdefault(row[1], []).append(member_id)
        if row[2] is not None:
            self.by_email[row[2]] = member_id

    def prepare(self, keys=(), ids=(), emails=()) -> None:
        """Read the members with these keys, ids or emails (those not read already)."""
        for column, wanted in (("member_key", keys), ("member_id", ids), ("email", emails)):
            known = self.known[column]
            missing = sorted({v for v in wanted if v is not None and v not in known})
            if missing:
                for row in import_rows(self.tx, column, missing):
                    self._take(row)
                known.update(missing)

    def _row(self, member_id: str) -> list | None:
        row = self.rows.get(member_id)
        if row is None and member_id not in self.known["member_id"]:
            self.prepare(ids=(member_id,))
            row = self.rows.get(member_id)
        return row

    # -- the look-ups, as store.members and store.hygiene answer them ------------------------
    def ids_with_key(self, tx, key: str) -> list[str]:
        if key not in self.known["member_key"]:
            self.prepare(keys=(key,))
        found = self.by_key.get(key, ())
        return sorted(found) if len(found) > 1 else list(found)

    def key_taken(self, tx, key: str) -> bool:
        return bool(self.ids_with_key(tx, key))

    def exists(self, tx, member_id: str) -> bool:
        return self._row(member_id) is not None

    def standing(self, tx, member_id: str) -> Standing | None:
        row = self._row(member_id)
        return Standing(row[_COL["tier"]], row[_COL["erased_at"]]) if row else None

    def merged_into(self, tx, member_id: str) -> str | None:
        row = self._row(member_id)
        return row[_COL["merged_into"]] if row else None

    def holder_of_email(self, tx, email: str) -> str | None:
        if email not in self.known["email"]:
            self.prepare(emails=(email,))
        return self.by_email.get(email)

    def match_for_import(self, tx, member_id: str | None, email: str | None) -> tuple[str, str | None] | None:
        if member_id is None:
            member_id = self.holder_of_email(tx, email)
            if member_id is None:
                return None
        row = self._row(member_id)
        return (row[0], row[_COL["erased_at"]]) if row else None

    def profile_values(self, tx, member_id: str, fields) -> tuple:
        assert _PROFILE_COLUMNS.issuperset(fields)
        row = self._row(member_id)
        return tuple(row[_COL[f]] for f in fields) if row else None

    def consent(self, tx, member_id: str) -> dict:
        row = self._row(member_id)
        if row is None:
            return {}
        return {channel: tuple(row[i] for i in columns) for channel, columns in _CONSENT.items()}

    # -- writing ----------------------------------------------------------------------------
    def insert(self, tx, member_id: str, name, email, phone, birthday, joined_on: str, referred_by, tier: str,
               key: str) -> None:
        """members.insert, buffered until `write()`; recorded on the chain now (its order unchanged)."""
        self._new.append((member_id, name, email, phone, birthday, joined_on, referred_by, tier, joined_on, 0, key))
        tx.journal.add("members", (member_id, joined_on, referred_by, tier, joined_on))
        values = dict(member_id=member_id, member_key=key, email=email, tier=tier, name=name, phone=phone,
                      birthday=birthday, joined_on=joined_on, referred_by=referred_by, email_opt_in=0, sms_opt_in=0)
        self.rows.pop(member_id, None)
        self._take([values.get(column) for column in _IMPORT_COLUMNS])

    def offer_ids(self, ids: list[str], keys: list[str]) -> None:
        """Ids (and their lookup keys) for the members a chunk may enrol without an id: whether each
        is taken is read for them all at once, where asking for each new member would be a round trip."""
        self.prepare(keys=keys)
        self._candidates = list(ids)

    def candidate_id(self) -> str | None:
        """One of the ids offer_ids gave (not used yet), or None."""
        return self._candidates.pop() if self._candidates else None

    def write(self) -> None:
        """Write the members inserted and the consent answers given since the last call (a statement
        or two for them all, in the order they were given)."""
        from loyalty_cli.store import hygiene as hygiene_rows

        if self._new:
            self.tx.executemany(_INSERT_ALL, self._new)
            self._new = []
        if self._consent:
            hygiene_rows.write_consent(self.tx, self._consent)
            self._consent = []

    def update(self, tx, member_id: str, changes: dict) -> None:
        """members.update, and the profile held here changed the same way."""
        self.write()
        update(tx, member_id, changes)
        row = self.rows.get(member_id)
        if row is None:
            return
        if "email" in changes:
            if self.by_email.get(row[_COL["email"]]) == member_id:
                del self.by_email[row[_COL["email"]]]
            self.by_email[changes["email"]] = member_id
        for field, value in changes.items():
            row[_COL[field]] = value

    def set_consent(self, tx, member_id: str, channel: str, opt_in: bool, at: str, source: str, by: str | None) -> None:
        """store.hygiene.set_consent, buffered until `write()` (recorded on the chain now, its order
        unchanged), and the consent held here changed the same way."""
        row = (member_id, channel, int(opt_in), at, source, by)
        self._consent.append(row)
        tx.journal.add("consent_changes", row)
        row = self.rows.get(member_id)
        if row is not None:
            for i, value in zip(_CONSENT[channel], (int(opt_in), at, source)):
                row[i] = value

    def forget(self) -> None:
        """Write what is buffered and let go of what was read (the database holds it all again):
        an import of any size keeps one chunk's members in memory."""
        self.write()
        self._candidates = []
        self.rows.clear()
        self.by_key.clear()
        self.by_email.clear()
        for known in self.known.values():
            known.clear()
