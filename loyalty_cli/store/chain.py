"""The chain: every state change, in blocks, each hashed over the one before and signed.

A write transaction collects what it changes as records, one list per kind (`RECORDS`): the
ledger entries, lots, lot uses, purchases and tier changes a `Book` writes, members enrolled
and their rights changed, erasures, programme versions, settings, rewards and their stock,
vouchers issued and closed, recalc runs, feedback scores. Before it commits (and every
`BLOCK_ROWS` records of a big import) they become one block of table `chain`:

    id      1, 2, 3 … in order
    kinds   the kinds of record the block holds (",ledger,lots,…,"): found without reading bodies
    key     the id of the key that signs it (keys.key_id)
    counts  JSON {kind: records of that kind in blocks 1..id}: where each kind's rows stand
    hash    sha256 over the previous block's hash and this block's id, kinds, key, counts and body
    mac     HMAC-SHA256 of the hash under the chain key (keys.py), kept outside the database
    body    JSON {"rows": {kind: [record, …]}} (and "rekey", "adopted" where they apply); over
            COMPRESS_FROM bytes it is stored zlib-compressed (a BLOB): an import's blocks would
            otherwise double the bytes it writes, and cost a tenth of its time in page traffic

Personal data (names, emails, phones, birthdays, comments) is never written to the chain, so
an erasure leaves none behind in it. Tables of current state (balances, lots' remaining
points, tiers, voucher status, stock, the summaries) are not chained: `db check` derives them
from the records by replaying the chain and compares.
"""

from __future__ import annotations

import json

from loyalty_cli.store import dialect
from loyalty_cli.i18n import M_, _

GENESIS = "0" * 64
BLOCK_ROWS = 20_000  # records buffered before a big import writes a block mid-transaction
COMPRESS_FROM = 4096  # bodies larger than this are stored compressed; a counter's blocks stay plain JSON

# Each kind of record: the table it is a row of, and its columns as recorded (the values the
# tool wrote). "position": the table's rows are numbered 1, 2, 3 … in the order recorded (its
# rowid), so the n-th record of the kind is row n; "key": looked up by that column.
RECORDS = {
    # The ledger is a hash chain of its own (each entry's hash over its fields and the entry before):
    # a block records the range of entries it wrote and the hash of the last, which signs them all.
    "ledger": ("ledger", ("first", "last", "hash"), "range"),
    # A lot as created (its remaining points are current state); its id is its position.
    "lots": ("lots", ("entry_id", "member_id", "expires_on", "points", "purchase_id", "origin", "available_on"),
             "position"),
    "lot_uses": ("lot_uses", ("entry_id", "lot_id", "points"), "position"),
    # `store` (migration m010) last: blocks written before it hold the first ten (a missing store is NULL).
    "purchases": ("purchases", ("purchase_id", "member_id", "kind", "amount", "purchased_at", "category",
                                "refund_of", "points", "basis_points", "lot_id", "store"), "purchase_id"),
    "tier_changes": ("tier_changes", ("member_id", "at", "from_tier", "to_tier", "reason", "until", "by", "ref"),
                     "position"),
    "members": ("members", ("member_id", "joined_on", "referred_by", "tier", "tier_since"), "member_id"),
    "member_edits": (None, ("member_id", "field", "value"), None),
    "erasures": ("erasures", ("member_id", "at", "by"), "position"),
    "program_versions": ("program_versions", ("applies_from", "rules", "loaded_at", "source"), "position"),
    "settings": ("settings", ("key", "value"), "key"),
    "rewards": ("rewards", ("code", "name", "cost", "stock"), "code"),
    "reward_edits": (None, ("code", "name", "cost", "stock"), None),
    "reward_stock": (None, ("code", "change"), None),
    "reward_retirements": (None, ("code", "at"), None),
    "vouchers": ("vouchers", ("code", "member_id", "reward_code", "points", "redeem_entry", "status", "issued_at"),
                 "code"),
    "voucher_closes": (None, ("code", "status", "at"), None),
    "recalc_runs": ("recalc_runs", ("as_of", "ran_at", "upgraded", "downgraded"), "position"),
    "feedback": ("feedback", ("member_id", "at", "score"), "position"),
    # Experiments (m011): each as started (its stop is a record of its own), and each ledger entry
    # earned under a variant, by the entry's id.
    "experiments": ("experiments", ("id", "name", "variant", "share", "starts_on", "started_at", "source"), "name"),
    "experiment_stops": (None, ("name", "stops_on"), None),
    "variant_entries": ("variant_entries", ("id", "experiment"), "id"),
}
# Member fields that are rights, not personal data: their changes are chained.
CHAINED_MEMBER_FIELDS = ("joined_on", "referred_by")

INSERT_BLOCK = "INSERT INTO chain (id, kinds, key, counts, hash, mac, body) VALUES (?,?,?,?,?,?,?)"


def block_hash(prev: str, block_id: int, kinds: str, key: str, counts: str, body: str | bytes) -> str:
    """sha256 over the previous block's hash and this block's id, kinds, key, counts and body as
    stored (a compressed body is hashed as it is: checking a hash needs no decompression)."""
    import hashlib

    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    return hashlib.sha256(f"{prev}\x1f{block_id}\x1f{kinds}\x1f{key}\x1f{counts}\x1f".encode() + data).hexdigest()


def body_of(stored: str | bytes) -> dict:
    """A block's body as stored (JSON text, or zlib-compressed JSON), read. Raises ValueError when it
    is neither."""
    if isinstance(stored, (bytes, memoryview)) and bytes(stored[:1]) != b"{":  # (PostgreSQL: JSON as bytes)
        import zlib

        try:
            stored = zlib.decompress(stored)
        except zlib.error as exc:
            raise ValueError(str(exc)) from None
    return json.loads(stored)


def block_mac(key: bytes, hash_: str) -> str:
    """HMAC-SHA256 of a block's hash under the chain key."""
    import hmac

    return hmac.new(key, hash_.encode(), "sha256").hexdigest()


def head(tx) -> tuple[int, str, str | None, dict]:
    """(last block id, its hash, the id of the key that signed it, cumulative counts): (0, GENESIS,
    None, {}) before the first block."""
    row = tx.execute("SELECT id, hash, key, counts FROM chain ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS, None, {}
    return row[0], row[1], row[2], parse_counts(row[3])


def parse_counts(text) -> dict:
    try:
        counts = json.loads(text or "{}")
    except ValueError:
        return {}
    return counts if isinstance(counts, dict) else {}


class Signer:
    """The chain key for one database, loaded when the first block is written (commands that only
    read never touch the key file). `path`: the key file (keys.resolve_path).

    The shop must go on selling when the key file is gone (a new till, a lost disk): a block is
    then signed with a new key made at `path`, and records the key the chain had (`key_changed`);
    `notes` says so. That is not a takeover: `db check` goes on reporting every block signed
    with a key other than the one it is given, until the owner restores the old key file or
    accepts the new key with `loyalty db rekey --yes` (a block signed with it saying so). A key
    file holding another key is used the same way, and said."""

    def __init__(self, path):
        self.path = path
        self._key: bytes | None = None
        self.created = False
        self.notes: list[str] = []

    def key_for(self, chain_key_id: str | None) -> tuple[bytes, str, str | None]:
        """(key, key id, the key id it takes over from or None) to sign the next block of a chain
        signed so far by `chain_key_id` (None: no block yet)."""
        from loyalty_cli import keys

        if self._key is None:
            key = keys.read(self.path)
            if key is None:
                key = keys.create(self.path)
                self.created = True
                if chain_key_id is not None:
                    self.notes.append(
                        _("warning: the chain key file {path} did not exist: made a new key there (key {key_id}), but the chain is signed with key {chain_key_id}: 'loyalty db check' reports the blocks signed with either one it is not given; put the old key file back, or, if it is lost for good: loyalty db rekey --yes").format(path=self.path, key_id=keys.key_id(key), chain_key_id=chain_key_id))
            self._key = key
        kid = keys.key_id(self._key)
        if chain_key_id is not None and kid != chain_key_id:
            if not self.created and not self.notes:
                self.notes.append(
                    _("warning: the chain key in {path} (key {kid}) is not the one this database's chain is signed with (key {chain_key_id}): 'loyalty db check' reports the blocks signed with either one it is not given; point LOYALTY_KEY_FILE at the right key file, or: loyalty db rekey --yes").format(path=self.path, kid=kid, chain_key_id=chain_key_id))
            return self._key, kid, chain_key_id
        return self._key, kid, None


class Journal:
    """The records one write transaction adds to the chain, written as blocks (see the module)."""

    __slots__ = ("conn", "signer", "rows", "count", "_head", "_pending")

    def __init__(self, conn, signer: Signer):
        self.conn = conn
        self.signer = signer
        self.rows: dict[str, list] = {}
        self.count = 0
        self._head = None  # (id, hash, key id, counts) of the last block written, once read
        self._pending = None  # a block being compressed: ((id, None, key id, counts), block, thread, result)

    def add(self, kind: str, record) -> None:
        """Record one row of `kind` (a tuple of RECORDS[kind]'s columns)."""
        rows = self.rows.get(kind)
        if rows is None:
            rows = self.rows[kind] = []
        rows.append(record)
        self.count += 1

    def extend(self, kind: str, records) -> None:
        """Record many rows of `kind`; a big import writes a block every BLOCK_ROWS records."""
        rows = self.rows.get(kind)
        if rows is None:
            rows = self.rows[kind] = []
        before = len(rows)
        rows.extend(records)
        self.count += len(rows) - before
        if self.count >= BLOCK_ROWS:
            self.write_block()

    def ledger(self, first: int, last: int, last_hash: str) -> None:
        """Record that entries `first`..`last` were written, the last with hash `last_hash`."""
        rows = self.rows.get("ledger")
        if rows and rows[-1][1] + 1 == first:
            rows[-1] = (rows[-1][0], last, last_hash)
        elif rows:
            rows.append((first, last, last_hash))
        else:
            self.rows["ledger"] = [(first, last, last_hash)]
        self.count += last - first + 1
        if self.count >= BLOCK_ROWS:
            self.write_block()

    def discard(self) -> None:
        """Forget the records (the transaction was rolled back)."""
        self.rows.clear()
        self.count = 0
        self._head = None

    def write_block(self, note: dict | None = None) -> int | None:
        """Write what is buffered as the next block; returns its id (None when nothing is buffered).
        `note`: extra fields of the body (a rekey, an adoption).

        A big body is compressed on another thread while the import goes on (zlib lets go of the
        interpreter while it works): the block is written when the next one is, or at `finish`,
        so at most one is in flight, and always within the transaction."""
        if not self.rows and not note:
            return None
        if self._head is None:
            self._head = head(self.conn)
        last_id, __, chain_key_id, counts = self._pending[0] if self._pending else self._head
        key, kid, rekey = self.signer.key_for(chain_key_id)
        counts = dict(counts)
        for kind, rows in self.rows.items():
            counts[kind] = counts.get(kind, 0) + size(kind, rows)
        body = {"rows": self.rows}
        if rekey:
            body["key_changed"] = rekey  # the key the chain had (not a takeover: see Signer)
        if note:
            body.update(note)
        text = json.dumps(body, separators=(",", ":"), check_circular=False)  # plain lists and tuples only
        block_id = last_id + 1
        kinds = "," + ",".join(sorted(self.rows)) + "," if self.rows else ","
        block = (block_id, kinds, kid, counts, key)
        self.rows = {}
        self.count = 0
        self.finish()
        if len(text) <= COMPRESS_FROM:
            self._insert(block, text)
        else:
            import threading

            done: list = []
            worker = threading.Thread(target=_compress, args=(text, done), daemon=True)
            worker.start()
            self._pending = ((block_id, None, kid, counts), block, worker, done)
        return block_id

    def finish(self) -> None:
        """Write the block still being compressed, if any (before the transaction commits)."""
        if self._pending is None:
            return
        __, block, worker, done = self._pending
        self._pending = None
        worker.join()
        if not done or isinstance(done[0], BaseException):
            raise done[0] if done else RuntimeError(M_("the chain block was not compressed"))
        self._insert(block, done[0])

    def abandon(self) -> None:
        """The transaction is rolled back: wait for a compression in flight, and forget it."""
        if self._pending is not None:
            self._pending[2].join()
            self._pending = None
        self.discard()

    def _insert(self, block, stored) -> None:
        block_id, kinds, kid, counts, key = block
        prev = self._head[1]
        counts_text = json.dumps(counts, separators=(",", ":"), sort_keys=True)
        h = block_hash(prev, block_id, kinds, kid, counts_text, stored)
        if isinstance(stored, str) and dialect(self.conn) == "postgresql":
            stored = stored.encode("utf-8", "surrogatepass")  # a BYTEA column: the bytes hashed
        self.conn.execute(INSERT_BLOCK, (block_id, kinds, kid, counts_text, h, block_mac(key, h), stored))
        self._head = (block_id, h, kid, counts)


def _compress(text: str, done: list) -> None:
    import zlib

    try:
        done.append(zlib.compress(text.encode("utf-8", "surrogatepass"), 1))
    except BaseException as exc:  # handed to the writer, which raises it
        done.append(exc)


def size(kind: str, records) -> int:
    """How many rows `records` of `kind` stand for (a ledger record is a range of entries)."""
    if kind == "ledger":
        return sum(last - first + 1 for first, last, __ in records)
    return len(records)


# -- reading the chain (db check) ------------------------------------------------------------
def blocks(tx, kinds: str | None = None):
    """(id, kinds, key, counts, hash, mac, body) of every block, in order (streamed); with `kinds`, only
    the blocks holding records of that kind."""
    pattern = "%" if kinds is None else f"%,{kinds},%"
    from loyalty_cli.store import stream

    return stream(tx, "SELECT id, kinds, key, counts, hash, mac, body FROM chain WHERE kinds LIKE ? ORDER BY id",
                  (pattern,))


def has_chain(tx) -> bool:
    """Whether the database has the chain table (a backup made before m009 has not)."""
    return tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain'").fetchone() is not None


# -- adopting the rows of a database made before the chain -------------------------------------
ADOPT = (
    ("settings", "SELECT key, value FROM settings ORDER BY rowid"),
    ("program_versions", "SELECT applies_from, rules, loaded_at, source FROM program_versions ORDER BY id"),
    ("rewards", "SELECT code, name, cost, stock FROM rewards ORDER BY code"),
    ("members", "SELECT member_id, joined_on, referred_by, tier, tier_since FROM members ORDER BY member_id"),
    ("lots", "SELECT entry_id, member_id, expires_on, points, purchase_id, origin, available_on FROM lots ORDER BY id"),
    ("lot_uses", "SELECT entry_id, lot_id, points FROM lot_uses ORDER BY rowid"),
    ("purchases", "SELECT purchase_id, member_id, kind, amount, purchased_at, category, refund_of, points, "
                  "basis_points, lot_id, store FROM purchases ORDER BY purchase_id"),
    ("tier_changes", "SELECT member_id, at, from_tier, to_tier, reason, until, by, ref FROM tier_changes ORDER BY id"),
    ("erasures", "SELECT member_id, at, by FROM erasures ORDER BY id"),
    ("vouchers", "SELECT code, member_id, reward_code, points, redeem_entry, 'issued', issued_at FROM vouchers "
                 "ORDER BY code"),
    ("voucher_closes", "SELECT code, status, closed_at FROM vouchers WHERE status != 'issued' ORDER BY code"),
    ("reward_stock", None),
    ("reward_retirements", "SELECT code, retired_at FROM rewards WHERE retired_at IS NOT NULL ORDER BY code"),
    ("recalc_runs", "SELECT as_of, ran_at, upgraded, downgraded FROM recalc_runs ORDER BY id"),
    ("feedback", "SELECT member_id, at, score FROM feedback ORDER BY id"),
)


def adopt(tx, journal_: Journal) -> dict[str, int]:
    """Extend the chain over the rows a database holds from before it (migration m009): every row
    of history as it is now, and the current state as its starting point (a lot's size, not
    what remains of it; a voucher as issued, then its closing; a reward's stock as it is now,
    with no change recorded). Returns how many records of each kind were chained."""
    counts: dict[str, int] = {}
    first = tx.execute("SELECT min(id), max(id) FROM ledger").fetchone()
    if first[0] is not None:
        (last_hash,) = tx.execute("SELECT hash FROM ledger WHERE id = ?", (first[1],)).fetchone()
        journal_.ledger(first[0], first[1], last_hash)
        counts["ledger entries"] = first[1] - first[0] + 1
    for kind, sql in ADOPT:
        if sql is None:
            continue
        n = 0
        for chunk in _chunks(tx.execute(sql)):
            journal_.extend(kind, chunk)
            n += len(chunk)
        if n:
            counts[kind] = n
    return counts


def _chunks(cursor, size: int = 5000):
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


def counts_of(tx, block_id: int) -> dict | None:
    """The cumulative counts block `block_id` carries (None when there is no such block)."""
    row = tx.execute("SELECT counts FROM chain WHERE id = ?", (block_id,)).fetchone()
    return parse_counts(row[0]) if row else None


def hash_of(tx, block_id: int) -> str | None:
    """Block `block_id`'s stored hash, or None when there is no such block."""
    row = tx.execute("SELECT hash FROM chain WHERE id = ?", (block_id,)).fetchone()
    return row[0] if row else None


def keys_not_chained(tx, kind: str, key: str, limit: int) -> list:
    """The keys of rows of `kind`'s table that no block records (every body holding that kind is
    read: only when the counts say there are such rows)."""
    table, columns, __ = RECORDS[kind]
    at = columns.index(key)
    chained = set()
    for *__, body in blocks(tx, kinds=kind):
        try:
            chained.update(rec[at] for rec in body_of(body)["rows"].get(kind, ()))
        except (ValueError, KeyError, TypeError, IndexError):
            continue  # an unreadable block is reported by the replay itself
    extra = []
    for (k,) in tx.execute(f"SELECT {key} FROM {table} ORDER BY {key}"):
        if k not in chained:
            extra.append(k)
            if len(extra) >= limit:
                break
    return extra


def signing_keys(tx) -> list[str]:
    """The ids of every key some block is signed with."""
    return [k for (k,) in tx.execute("SELECT DISTINCT key FROM chain ORDER BY key")]


def rekey(tx, through: int) -> int:
    """A block, signed with the key the key file holds now (made if missing), that accepts blocks
    1..`through` as they are, whatever key signed them (`loyalty db rekey`): the owner's word, after
    the chain passed `db check --no-key`. Returns the block's id."""
    return tx.journal.write_block({"rekey": {"through": through, "keys": signing_keys(tx)}})


# Member hygiene (migration m013): merges of duplicate members, consent answers, campaign lists exported.
# Their rows are history (compared whole by the replay); the members' aliases and consent they make
# are current state, rebuilt from them (hygiene.compare_replayed).
RECORDS.update({
    "member_merges": ("member_merges", ("member_id", "into_id", "at", "by", "points", "entry_out", "entry_in"),
                      "position"),
    "consent_changes": ("consent_changes", ("member_id", "channel", "opt_in", "at", "source", "by"), "position"),
    "campaign_exports": ("campaign_exports", ("at", "by", "list", "channel", "as_of", "members", "destination"),
                         "position"),
})
