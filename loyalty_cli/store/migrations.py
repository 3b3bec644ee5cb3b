"""Versioned, never destructive schema migrations, run when the database is opened.

Each migration is a function named `m00N_…` returning its statements; it runs in
the same transaction as the row that records it (the way llm and sqlite-utils do
it). `PRAGMA user_version` mirrors the count so opening an up-to-date database
costs one pragma read. Statements are executed one by one: `executescript`
would commit behind our back.
"""

from __future__ import annotations

# Most frequent first: the CHECK below is a chain of ORs evaluated in this order. (A constant
# `IN (…)` list in a CHECK cost a third of every ledger insert; the ORs cost almost nothing.)
ENTRY_KINDS = (
    "earn", "bonus", "reversal", "expire", "redeem", "signup", "referral", "award", "adjust",
    "transfer_in", "transfer_out", "voucher_cancel",
)


def one_of(column: str, choices) -> str:
    """A CHECK condition: `column` is one of `choices` (cheap ORs, not an IN list)."""
    return " OR ".join(f"{column} = '{choice}'" for choice in choices)


def m001_initial(_conn) -> list[str]:
    """The whole programme: members, purchases, the append-only ledger and its lots."""
    return [
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        # Programme rules, one row per version; `rules` is the validated TOML as JSON.
        """CREATE TABLE program_versions (
            id INTEGER PRIMARY KEY,
            applies_from TEXT NOT NULL,
            rules TEXT NOT NULL,
            loaded_at TEXT NOT NULL,
            source TEXT
        )""",
        """CREATE TABLE members (
            member_id TEXT PRIMARY KEY,
            name TEXT,
            email TEXT UNIQUE,
            phone TEXT,
            birthday TEXT,
            joined_on TEXT NOT NULL,
            referred_by TEXT REFERENCES members(member_id),
            tier TEXT NOT NULL,
            tier_since TEXT NOT NULL,
            floor_tier TEXT,
            floor_until TEXT,
            balance INTEGER NOT NULL DEFAULT 0,
            first_sale TEXT,
            erased_at TEXT,
            erased_by TEXT
        )""",
        "CREATE INDEX members_tier ON members(tier)",
        """CREATE TABLE purchases (
            purchase_id TEXT PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            kind TEXT NOT NULL CHECK (kind = 'sale' OR kind = 'refund'),
            amount INTEGER NOT NULL CHECK (amount >= 0),
            purchased_at TEXT NOT NULL,
            category TEXT,
            refund_of TEXT REFERENCES purchases(purchase_id),
            points INTEGER NOT NULL DEFAULT 0,
            basis_points INTEGER NOT NULL DEFAULT 0,
            lot_id INTEGER  -- the sale's lot; like lots.member_id, verified by `db check`, not a foreign key
        ) WITHOUT ROWID""",
        # Covering: tier windows, RFM and every per-member pass read only these columns,
        # so they scan this index in member order instead of sorting a million rows.
        "CREATE INDEX purchases_member ON purchases(member_id, purchased_at, kind, amount, basis_points)",
        "CREATE INDEX purchases_refund_of ON purchases(refund_of) WHERE refund_of IS NOT NULL",
        f"""CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK ({one_of("kind", ENTRY_KINDS)}),
            points INTEGER NOT NULL,
            ref TEXT,
            note TEXT,
            by TEXT,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX ledger_member ON ledger(member_id, id)",
        """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
           BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: write a correcting entry instead'); END""",
        """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
           BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: write a correcting entry instead'); END""",
        # A lot is (part of) a credit with the last day it can be used; `remaining`
        # is a cache of points minus its uses, verified by `db check`. A sale's earn
        # and bonus entries share one lot (same date, same E), named by purchases.lot_id.
        """CREATE TABLE lots (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES ledger(id),
            member_id TEXT NOT NULL,
            expires_on TEXT,
            points INTEGER NOT NULL CHECK (points > 0),
            remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= points),
            purchase_id TEXT,
            origin TEXT
        )""",
        "CREATE INDEX lots_open ON lots(member_id, expires_on) WHERE remaining > 0",
        # Points a cancelled voucher returns keep the sale they came from (origin 'voucher'), so a
        # refund still takes them back first; only those few lots need this index.
        "CREATE INDEX lots_returned ON lots(purchase_id) WHERE origin IS NOT NULL",
        # Which entry consumed how much of which lot: debits, and credits filling a hole.
        """CREATE TABLE lot_uses (
            entry_id INTEGER NOT NULL REFERENCES ledger(id),
            lot_id INTEGER NOT NULL REFERENCES lots(id),
            points INTEGER NOT NULL CHECK (points > 0)
        )""",
        "CREATE INDEX lot_uses_lot ON lot_uses(lot_id)",
        """CREATE TRIGGER lot_uses_no_update BEFORE UPDATE ON lot_uses
           BEGIN SELECT RAISE(ABORT, 'lot uses are append-only'); END""",
        """CREATE TRIGGER lot_uses_no_delete BEFORE DELETE ON lot_uses
           BEGIN SELECT RAISE(ABORT, 'lot uses are append-only'); END""",
        """CREATE TABLE tier_changes (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            at TEXT NOT NULL,
            from_tier TEXT,
            to_tier TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (reason = 'purchase' OR reason = 'recalc' OR reason = 'manual'),
            until TEXT,
            by TEXT,
            ref TEXT
        )""",
        "CREATE INDEX tier_changes_member ON tier_changes(member_id, id)",
        """CREATE TABLE recalc_runs (
            id INTEGER PRIMARY KEY,
            as_of TEXT NOT NULL,
            ran_at TEXT NOT NULL,
            upgraded INTEGER NOT NULL,
            downgraded INTEGER NOT NULL
        )""",
        """CREATE TABLE rewards (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            cost INTEGER NOT NULL CHECK (cost > 0),
            stock INTEGER CHECK (stock >= 0),
            retired_at TEXT
        )""",
        """CREATE TABLE vouchers (
            code TEXT PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            reward_code TEXT NOT NULL REFERENCES rewards(code),
            points INTEGER NOT NULL,
            redeem_entry INTEGER NOT NULL REFERENCES ledger(id),
            status TEXT NOT NULL CHECK (status IN ('issued', 'used', 'cancelled')),
            issued_at TEXT NOT NULL,
            closed_at TEXT
        )""",
        "CREATE INDEX vouchers_member ON vouchers(member_id)",
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            at TEXT NOT NULL,
            score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
            comment TEXT
        )""",
        "CREATE INDEX feedback_member ON feedback(member_id, at)",
        """CREATE TABLE erasures (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            at TEXT NOT NULL,
            by TEXT NOT NULL
        )""",
    ]


# What a member's purchases add up to, and what each day's purchases and entries add up
# to: caches kept by the ledger's Book as it writes (like members.balance) and verified by
# `db check`, so the reports and the dashboard read a row per member or per day instead
# of grouping a million purchases and entries every time.
MEMBER_TOTALS = {
    "sales_count": "count(CASE WHEN kind = 'sale' THEN 1 END)",
    "net_spend": "coalesce(sum(CASE WHEN kind = 'sale' THEN amount ELSE -amount END), 0)",
    "first_purchase_at": "min(purchased_at)",
    "last_purchase_at": "max(purchased_at)",
    "last_sale_at": "max(CASE WHEN kind = 'sale' THEN purchased_at END)",
    # The sale before the last one (the latest again when two share a time): who bought twice in a period.
    "prev_sale_at": "(SELECT s.purchased_at FROM purchases s WHERE s.member_id = p.member_id AND s.kind = 'sale' "
                    "ORDER BY s.purchased_at DESC LIMIT 1 OFFSET 1)",
}
# What member_totals holds, from the purchases ({where}: "" for everyone, or a filter on p.member_id).
MEMBER_TOTALS_SQL = ("SELECT member_id, " + ", ".join(f"{expr} AS {name}" for name, expr in MEMBER_TOTALS.items())
                     + " FROM purchases p {where} GROUP BY member_id")
# What daily_sales and daily_points hold ({where}: "" for every day, or a filter on the rows' dates).
DAILY_SALES_SQL = ("SELECT substr(purchased_at, 1, 10) AS day, count(CASE WHEN kind = 'sale' THEN 1 END) AS sales, "
                   "coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0) AS sales_amount, "
                   "count(CASE WHEN kind = 'refund' THEN 1 END) AS refunds, "
                   "coalesce(sum(CASE WHEN kind = 'refund' THEN amount END), 0) AS refund_amount "
                   "FROM purchases {where} GROUP BY day")
DAILY_POINTS_SQL = ("SELECT substr(at, 1, 10) AS day, kind, sum(CASE WHEN points > 0 THEN points ELSE 0 END) AS credit, "
                    "sum(CASE WHEN points < 0 THEN points ELSE 0 END) AS debit, count(*) AS entries "
                    "FROM ledger {where} GROUP BY day, kind")
DAILY_SALES = DAILY_SALES_SQL.format(where="")
DAILY_POINTS = DAILY_POINTS_SQL.format(where="")
# Each cache table with the query it caches, for `db check`.
SUMMARY_TABLES = (("member_totals", MEMBER_TOTALS_SQL.format(where=""), "member_id"),
                  ("daily_sales", DAILY_SALES, "day"), ("daily_points", DAILY_POINTS, "day, kind"))


def m002_summaries(_conn) -> list[str]:
    """Totals of each member's purchases, of each day's purchases and of each day's entries (filled from the data)."""
    return [
        # One narrow row per member with a purchase, in member order: the reports scan it instead
        # of grouping every purchase (members stays the people, as datasette shows them).
        """CREATE TABLE member_totals (
            member_id TEXT PRIMARY KEY REFERENCES members(member_id),
            sales_count INTEGER NOT NULL,
            net_spend INTEGER NOT NULL,
            first_purchase_at TEXT NOT NULL,
            last_purchase_at TEXT NOT NULL,
            last_sale_at TEXT,
            prev_sale_at TEXT
        ) WITHOUT ROWID""",
        f"INSERT INTO member_totals {MEMBER_TOTALS_SQL.format(where='')}",
        """CREATE TABLE daily_sales (
            day TEXT PRIMARY KEY,
            sales INTEGER NOT NULL,
            sales_amount INTEGER NOT NULL,
            refunds INTEGER NOT NULL,
            refund_amount INTEGER NOT NULL
        ) WITHOUT ROWID""",
        f"INSERT INTO daily_sales {DAILY_SALES}",
        """CREATE TABLE daily_points (
            day TEXT NOT NULL,
            kind TEXT NOT NULL,
            credit INTEGER NOT NULL,
            debit INTEGER NOT NULL,
            entries INTEGER NOT NULL,
            PRIMARY KEY (day, kind)
        ) WITHOUT ROWID""",
        f"INSERT INTO daily_points {DAILY_POINTS}",
    ]


def m003_no_replace(_conn) -> list[str]:
    """`INSERT OR REPLACE` deletes the old row without firing the delete trigger (SQLite fires delete
    triggers on REPLACE only with recursive_triggers on, a setting of whoever connects): refuse it
    on the ledger."""
    return [
        """CREATE TRIGGER ledger_no_replace BEFORE INSERT ON ledger
           WHEN EXISTS (SELECT 1 FROM ledger WHERE id = NEW.id)
           BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: an entry cannot be replaced'); END""",
    ]


def m004_lot_uses_no_replace(_conn) -> list[str]:
    """The same for lot uses, whose only key is the rowid (-1 in a BEFORE INSERT trigger while
    SQLite has yet to choose it: the tool never gives one)."""
    return [
        """CREATE TRIGGER lot_uses_no_replace BEFORE INSERT ON lot_uses
           WHEN NEW.rowid != -1 AND EXISTS (SELECT 1 FROM lot_uses WHERE rowid = NEW.rowid)
           BEGIN SELECT RAISE(ABORT, 'lot uses are append-only'); END""",
    ]


# In the database header (`PRAGMA application_id`, offset 68): how loyalty recognises its own
# files before opening them, and refuses every other file untouched ("LOY1").
APPLICATION_ID = 0x4C4F5931


def m005_application_id(_conn) -> list[str]:
    """Stamp loyalty's application id in the header, so the file is recognised as ours from its
    first 100 bytes (databases made before it are recognised once by their migrations)."""
    return [f"PRAGMA application_id = {APPLICATION_ID}"]



def m006_member_key(conn) -> list[str]:
    """Member ids match without regard to case (SPEC §4): each member's id case-folded, indexed, so
    a typed id is found with one index probe (loyalty_cli.ids). Not unique: a database made before
    may hold two ids differing only by case, which `db check` reports and no command merges."""
    from loyalty_cli.values import member_key

    if conn is not None:  # (None: the statements only, restated for PostgreSQL by store.pg_schema)
        conn.create_function("loyalty_member_key", 1, member_key, deterministic=True)
    return [
        "ALTER TABLE members ADD COLUMN member_key TEXT",
        "UPDATE members SET member_key = loyalty_member_key(member_id)",
        # Covering: an import resolves a chunk's ids from the index alone.
        "CREATE INDEX members_key ON members(member_key, member_id)",
    ]


def _refuse(table: str, action: str, message: str, when: str = "") -> str:
    """A trigger named `{table}_no_update` (`_no_delete`, `_no_replace`) refusing `action` (UPDATE,
    DELETE, or INSERT: a REPLACE) on `table` with `message`, when `when` holds."""
    name = {"UPDATE": "no_update", "DELETE": "no_delete", "INSERT": "no_replace"}[action]
    return (f"CREATE TRIGGER {table}_{name} BEFORE {action} ON {table}{' WHEN ' + when if when else ''}\n"
            f"           BEGIN SELECT RAISE(ABORT, '{message}'); END")


# The history besides the ledger and its lot uses: (table, its key, what to do instead of editing a
# row). The tool only ever inserts into them (settings: each key once).
HISTORY = (
    ("purchases", "purchase_id", "record a refund instead"),
    ("tier_changes", "id", "set the tier again with loyalty tiers set"),
    ("program_versions", "id", "load a new version with loyalty program load"),
    ("recalc_runs", "id", "a run is recorded once"),
    ("erasures", "id", "an erasure is recorded once"),
    ("settings", "key", "a setting keeps its first value"),
)


def m007_history_guards(_conn) -> list[str]:
    """Every table of history refuses, like the ledger, the UPDATE, DELETE and INSERT OR REPLACE that
    would rewrite it (issue 17: a refund row deleted, a purchase amount raised, a forged tier change,
    a programme's points raised in place all went unnoticed). The tables of current state refuse
    what the tool never does to them: a lot only has its remaining points change, a voucher is only
    closed, once, and a feedback row only loses its comment (when its member is erased); none is
    ever deleted or replaced."""
    statements = []
    for table, key, instead in HISTORY:
        statements += [
            _refuse(table, "UPDATE", f"{table} is append-only: {instead}"),
            _refuse(table, "DELETE", f"{table} is append-only: {instead}"),
            _refuse(table, "INSERT", f"{table} is append-only: a row cannot be replaced",
                    f"EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})"),
        ]
    changed = lambda columns: " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)  # noqa: E731
    kept = {"lots": ("id", "only the points a lot has left change",
                     changed(("id", "entry_id", "member_id", "expires_on", "points", "purchase_id", "origin"))),
            "vouchers": ("code", "a voucher is only used or cancelled, once",
                         changed(("code", "member_id", "reward_code", "points", "redeem_entry", "issued_at"))
                         + " OR OLD.status != 'issued'"),
            "feedback": ("id", "only a comment is erased, with its member",
                         changed(("id", "member_id", "at", "score")) + " OR NEW.comment IS NOT NULL")}
    for table, (key, allowed, when) in kept.items():
        statements += [
            _refuse(table, "UPDATE", f"{table} keeps its history: {allowed}", when),
            _refuse(table, "DELETE", f"{table} keeps its history: a row is never deleted"),
            _refuse(table, "INSERT", f"{table} keeps its history: a row cannot be replaced",
                    f"EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key})"),
        ]
    return statements


def m008_lot_available_on(_conn) -> list[str]:
    """Points of a sale may wait `earn.pending_days` before they can be redeemed or transferred (so a
    refunded purchase's points were never spent): each lot keeps the day it becomes spendable.
    NULL, as for every lot made before: spendable from its credit's date."""
    return ["ALTER TABLE lots ADD COLUMN available_on TEXT"]


def m009_chain(_conn) -> list[str]:
    """The chain (issue 17): every state change recorded as a block, hashed over the block before and
    signed with a key kept outside the database (store.chain, keys.py), append-only like the ledger.
    Opening a database made before it extends the chain over the rows it holds (Store._adopt)."""
    return [
        """CREATE TABLE chain (
            id INTEGER PRIMARY KEY,
            kinds TEXT NOT NULL,
            key TEXT NOT NULL,
            counts TEXT NOT NULL,
            hash TEXT NOT NULL,
            mac TEXT NOT NULL,
            body BLOB NOT NULL
        )""",
        _refuse("chain", "UPDATE", "the chain is append-only: a block is never changed"),
        _refuse("chain", "DELETE", "the chain is append-only: a block is never removed"),
        _refuse("chain", "INSERT", "the chain is append-only: a block cannot be replaced",
                "EXISTS (SELECT 1 FROM chain WHERE id = NEW.id)"),
    ]


def m010_store(_conn) -> list[str]:
    """Purchases carry the branch (store) they were rung up at (issue 18): NULL when none was given,
    as for every purchase recorded before. The per-branch figures are computed from purchases
    filtered by store (this partial index: a shop without branches pays nothing for it); the
    cached summaries stay the whole shop's."""
    return [
        "ALTER TABLE purchases ADD COLUMN store TEXT",
        "CREATE INDEX purchases_store ON purchases(store, purchased_at) WHERE store IS NOT NULL",
    ]


def m011_experiments(_conn) -> list[str]:
    """A/B experiments (issue 19): from `starts_on`, a fixed share of members (chosen by a hash of the
    experiment's name and their id) earn under `variant` (programme keys merged over the version in
    force); `stops_on` (NULL: running) is set once, by `program experiment stop`. Every ledger entry
    earned under a variant is named in `variant_entries` (id: the ledger entry's), so statements and
    `purchases explain` can say so and `db check` can replay it. Both tables are history: an
    experiment's terms never change once it started, a marker never changes or goes."""
    keep = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in ("id", "name", "variant", "share", "starts_on",
                                                           "started_at", "source"))
    return [
        """CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            variant TEXT NOT NULL,
            share TEXT NOT NULL,
            starts_on TEXT NOT NULL,
            stops_on TEXT,
            started_at TEXT NOT NULL,
            source TEXT NOT NULL,
            CHECK (stops_on IS NULL OR stops_on >= starts_on)
        )""",
        """CREATE TABLE variant_entries (
            id INTEGER PRIMARY KEY REFERENCES ledger(id),
            experiment TEXT NOT NULL REFERENCES experiments(name)
        )""",
        _refuse("experiments", "UPDATE", "experiments keeps its history: an experiment is only stopped, once",
                keep + " OR OLD.stops_on IS NOT NULL"),
        _refuse("experiments", "DELETE", "experiments keeps its history: a row is never deleted"),
        _refuse("experiments", "INSERT", "experiments keeps its history: a row cannot be replaced",
                "EXISTS (SELECT 1 FROM experiments WHERE id = NEW.id OR name = NEW.name)"),
        _refuse("variant_entries", "UPDATE", "variant_entries is append-only: what an entry earned under never changes"),
        _refuse("variant_entries", "DELETE", "variant_entries is append-only: what an entry earned under never changes"),
        _refuse("variant_entries", "INSERT", "variant_entries is append-only: a row cannot be replaced",
                "EXISTS (SELECT 1 FROM variant_entries WHERE id = NEW.id)"),
    ]


# Where the migrations that ran are recorded (made before the first one runs).
MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"

MIGRATIONS = [m001_initial, m002_summaries, m003_no_replace, m004_lot_uses_no_replace, m005_application_id,
              m006_member_key, m007_history_guards, m008_lot_available_on, m009_chain,
              m010_store, m011_experiments]


def m012_households(_conn) -> list[str]:
    """Households (issue 20, "1+N"): a family whose members earn on their own cards but redeem from
    one pool of points and, under tiers.pooling = "household", reach a tier together. A household
    has a name (unique without regard to case: `name_key`, folded like a member id) and a head, the
    one column that changes. A membership is one row from the day a member joined the household to
    the day they left it (NULL while they are in it): kept for ever, so `db check` can tell who was
    in a household when a pooled redemption took their points. A member is in at most one
    household at a time (the partial unique index); a membership row only ever has its left_at set,
    once; neither table loses a row. Pooled redemptions are redeem entries of the ledger with a ref
naming the household (indexed: no other redeem entry has a ref)."""
    changed = lambda columns: " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)  # noqa: E731
    return [
        """CREATE TABLE households (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            head TEXT NOT NULL REFERENCES members(member_id),
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE household_members (
            id INTEGER PRIMARY KEY,
            household_id INTEGER NOT NULL REFERENCES households(id),
            member_id TEXT NOT NULL REFERENCES members(member_id),
            joined_at TEXT NOT NULL,
            left_at TEXT CHECK (left_at IS NULL OR left_at >= joined_at)
        )""",
        "CREATE UNIQUE INDEX household_members_current ON household_members(member_id) WHERE left_at IS NULL",
        "CREATE INDEX household_members_household ON household_members(household_id, joined_at)",
        "CREATE INDEX household_members_member ON household_members(member_id, joined_at)",
        # The entries of pooled redemptions (ref `household:NAME:ENTRY`), for `db check` and for refusing a
        # removal dated before one: only they are redeem entries with a ref, so the index stays small.
        "CREATE INDEX ledger_pooled ON ledger(ref) WHERE kind = 'redeem' AND ref IS NOT NULL",
        _refuse("households", "UPDATE", "households keep their history: only the head changes",
                changed(("id", "name", "name_key", "created_at"))),
        _refuse("households", "DELETE", "households keep their history: a household is never deleted"),
        _refuse("households", "INSERT", "households keep their history: a row cannot be replaced",
                "EXISTS (SELECT 1 FROM households WHERE id = NEW.id)"),
        _refuse("household_members", "UPDATE",
                "household_members keep their history: a membership only ends, once",
                changed(("id", "household_id", "member_id", "joined_at")) + " OR OLD.left_at IS NOT NULL"),
        _refuse("household_members", "DELETE", "household_members keep their history: a membership is never deleted"),
        _refuse("household_members", "INSERT", "household_members keep their history: a row cannot be replaced",
                "EXISTS (SELECT 1 FROM household_members WHERE id = NEW.id)"),
    ]


MIGRATIONS.append(m012_households)


# Ledger entries of a merge (`members merge DUP --into KEEP`): the points leaving the duplicate and
# arriving on the member kept. Appended to the kinds m001 allows by m013 (its CHECK widened in place).
MERGE_KINDS = ("merge_out", "merge_in")
# The tier change a merge makes (KEEP takes the higher of the two tiers until the next recalc).
TIER_REASONS = ("purchase", "recalc", "manual")
MERGE_REASON = "merge"


def _widen_checks(conn) -> list[str]:
    """Statements widening two CHECK constraints m001 wrote (the ledger's kinds, the tier changes'
    reasons) in the schema itself: SQLite cannot ALTER a CHECK, and rebuilding the ledger would copy
    every entry (and fight its foreign keys). Allowing more values never makes a stored row invalid,
    which is the case SQLite documents as safe to change with writable_schema; the schema version
    is bumped so every other connection reads the new schema."""
    # Whole CHECK clauses: a schema already widened no longer holds the old one (run twice, nothing changes).
    old_kinds = f"CHECK ({one_of('kind', ENTRY_KINDS)})"
    new_kinds = f"CHECK ({one_of('kind', ENTRY_KINDS + MERGE_KINDS)})"
    old_reasons = "CHECK (" + " OR ".join(f"reason = '{r}'" for r in TIER_REASONS) + ")"
    new_reasons = "CHECK (" + " OR ".join(f"reason = '{r}'" for r in TIER_REASONS + (MERGE_REASON,)) + ")"
    version = conn.execute("PRAGMA schema_version").fetchone()[0] if conn is not None else 0
    q = lambda text: text.replace("'", "''")  # noqa: E731  (SQL text inside a SQL string)
    return [
        "PRAGMA writable_schema = ON",
        f"UPDATE sqlite_master SET sql = replace(sql, '{q(old_kinds)}', '{q(new_kinds)}') "
        "WHERE type = 'table' AND name = 'ledger'",
        f"UPDATE sqlite_master SET sql = replace(sql, '{q(old_reasons)}', '{q(new_reasons)}') "
        "WHERE type = 'table' AND name = 'tier_changes'",
        f"PRAGMA schema_version = {version + 1}",
        "PRAGMA writable_schema = OFF",
    ]


def m013_member_hygiene(conn) -> list[str]:
    """Member hygiene (issue 20): merging a member enrolled twice, marketing consent, and the record
    of every campaign list exported.

    - `members.merged_into`: the member a duplicate was merged into (its alias: later sales naming
      it are the kept member's). Not a foreign key, like lots.member_id: `db check` verifies it
      against the merges the chain recorded (and `db copy` need not order members by it).
    - `member_merges`: each merge, with the two ledger entries that moved the points (merge_out on
      the duplicate, merge_in on the member kept: two new entry kinds, and a tier change of reason
      'merge'); append-only.
    - consent: each member's email and SMS opt-in, with the date and source (counter, import,
      edit) of the latest answer, and `consent_changes`, every answer given (append-only).
    - `campaign_exports`: who exported which campaign list, when, for which channel and how many
      members (append-only): `loyalty db audit` lists them."""
    statements = [] if conn is None else _widen_checks(conn)  # (PostgreSQL: store.pg_schema restates it)
    statements += [
        "ALTER TABLE members ADD COLUMN merged_into TEXT",
        "CREATE INDEX members_merged_into ON members(merged_into) WHERE merged_into IS NOT NULL",
        "ALTER TABLE members ADD COLUMN email_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (email_opt_in = 0 OR email_opt_in = 1)",
        "ALTER TABLE members ADD COLUMN email_consent_at TEXT",
        "ALTER TABLE members ADD COLUMN email_consent_source TEXT",
        "ALTER TABLE members ADD COLUMN sms_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (sms_opt_in = 0 OR sms_opt_in = 1)",
        "ALTER TABLE members ADD COLUMN sms_consent_at TEXT",
        "ALTER TABLE members ADD COLUMN sms_consent_source TEXT",
        """CREATE TABLE member_merges (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            into_id TEXT NOT NULL REFERENCES members(member_id),
            at TEXT NOT NULL,
            by TEXT NOT NULL,
            points INTEGER NOT NULL,
            entry_out INTEGER REFERENCES ledger(id),
            entry_in INTEGER REFERENCES ledger(id)
        )""",
        "CREATE INDEX member_merges_into ON member_merges(into_id)",
        """CREATE TABLE consent_changes (
            id INTEGER PRIMARY KEY,
            member_id TEXT NOT NULL REFERENCES members(member_id),
            channel TEXT NOT NULL CHECK (channel = 'email' OR channel = 'sms'),
            opt_in INTEGER NOT NULL CHECK (opt_in = 0 OR opt_in = 1),
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            by TEXT
        )""",
        "CREATE INDEX consent_changes_member ON consent_changes(member_id, id)",
        """CREATE TABLE campaign_exports (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            by TEXT NOT NULL,
            list TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel = 'email' OR channel = 'sms'),
            as_of TEXT NOT NULL,
            members INTEGER NOT NULL,
            destination TEXT NOT NULL
        )""",
    ]
    for table, instead in (("member_merges", "a merge is recorded once (it cannot be undone)"),
                           ("consent_changes", "record the new answer instead"),
                           ("campaign_exports", "an export is recorded once")):
        statements += [
            _refuse(table, "UPDATE", f"{table} is append-only: {instead}"),
            _refuse(table, "DELETE", f"{table} is append-only: {instead}"),
            _refuse(table, "INSERT", f"{table} is append-only: a row cannot be replaced",
                    f"EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id)"),
        ]
    return statements


MIGRATIONS.append(m013_member_hygiene)
