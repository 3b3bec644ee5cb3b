"""Member hygiene's rows (migration m013): merges of duplicate members, marketing consent, the record
of every campaign list exported, and what `members export` gathers about one member.

Every change is chained (store.chain: kinds member_merges, consent_changes, campaign_exports); the
current state they make (members.merged_into and the consent columns) is rebuilt from the chain by
`db check` (replay.py, hygiene.compare_replayed).
"""

from __future__ import annotations

from loyalty_cli.store import in_parts

CHANNELS = ("email", "sms")
# The columns of a member's consent, per channel (names fixed here: never user text).
CONSENT_COLUMNS = {"email": ("email_opt_in", "email_consent_at", "email_consent_source"),
                   "sms": ("sms_opt_in", "sms_consent_at", "sms_consent_source")}


# -- aliases -----------------------------------------------------------------------------------
def merged_into(tx, member_id: str) -> str | None:
    """The member `member_id` was merged into (None when it was not)."""
    row = tx.execute("SELECT merged_into FROM members WHERE member_id = ?", (member_id,)).fetchone()
    return row[0] if row else None


def ids_with_keys_and_aliases(tx, keys: list[str]) -> list[tuple[str, str, str | None]]:
    """(key, stored id, the member it was merged into or None) of every member whose key is among
    `keys` (at most 500 a call): an import resolves a chunk's ids, aliases included, in one query."""
    return tx.execute(f"SELECT member_key, member_id, merged_into FROM members "
                      f"WHERE member_key IN ({','.join('?' * len(keys))})", keys).fetchall()


def aliases_of(tx, member_id: str) -> list[str]:
    """The members merged into `member_id`, in id order."""
    return [m for (m,) in tx.execute("SELECT member_id FROM members WHERE merged_into = ? ORDER BY member_id",
                                     (member_id,))]


def referred(tx, member_id: str) -> list[str]:
    """The members `member_id` referred, in id order."""
    return [m for (m,) in tx.execute("SELECT member_id FROM members WHERE referred_by = ? ORDER BY member_id",
                                     (member_id,))]


def standing(tx, member_id: str) -> tuple | None:
    """(erased_at, merged_into, tier, referred_by) of a member, or None when not enrolled."""
    return tx.execute("SELECT erased_at, merged_into, tier, referred_by FROM members WHERE member_id = ?",
                      (member_id,)).fetchone()


def open_lots(tx, member_id: str) -> list[tuple]:
    """(id, expires_on, remaining, purchase_id, origin, available_on) of the member's open lots, in id
    order: what a merge moves."""
    return tx.execute("SELECT id, expires_on, remaining, purchase_id, origin, available_on FROM lots "
                      "WHERE member_id = ? AND remaining > 0 ORDER BY id", (member_id,)).fetchall()


def record_merge(tx, member_id: str, into_id: str, at: str, by: str, points: int, entry_out, entry_in) -> None:
    """Mark `member_id` merged into `into_id` (and every member merged into it before: an alias is
    one step), and record the merge."""
    tx.execute("UPDATE members SET merged_into = ? WHERE member_id = ? OR merged_into = ?", (into_id, member_id, member_id))
    row = (member_id, into_id, at, by, points, entry_out, entry_in)
    tx.execute("INSERT INTO member_merges (id, member_id, into_id, at, by, points, entry_out, entry_in) "
               "VALUES ((SELECT coalesce(max(id), 0) + 1 FROM member_merges), ?, ?, ?, ?, ?, ?, ?)", row)
    tx.journal.add("member_merges", row)


def merges(tx, member_id: str | None = None) -> list[tuple]:
    """(id, member_id, into_id, at, by, points, entry_out, entry_in) of every merge (or those naming
    `member_id` on either side), in order."""
    if member_id is None:
        return tx.execute("SELECT id, member_id, into_id, at, by, points, entry_out, entry_in FROM member_merges "
                          "ORDER BY id").fetchall()
    return tx.execute("SELECT id, member_id, into_id, at, by, points, entry_out, entry_in FROM member_merges "
                      "WHERE member_id = ? OR into_id = ? ORDER BY id", (member_id, member_id)).fetchall()


def entries_by_id(tx, ids: list[int]) -> dict[int, tuple]:
    """{entry id: (member_id, kind, points, at)} of the entries `ids`."""
    found = {}
    for part, marks in in_parts(ids):
        for row in tx.execute(f"SELECT id, member_id, kind, points, at FROM ledger WHERE id IN ({marks})",
                              part):
            found[row[0]] = row[1:]
    return found


def lots_used_by(tx, entry_id: int) -> list[tuple]:
    """(expires_on, points, purchase_id, available_on) of the lot uses of entry `entry_id`, in lot order."""
    return tx.execute("SELECT l.expires_on, u.points, l.purchase_id, l.available_on FROM lot_uses u "
                      "JOIN lots l ON l.id = u.lot_id WHERE u.entry_id = ? ORDER BY l.id", (entry_id,)).fetchall()


def lots_made_by(tx, entry_id: int) -> list[tuple]:
    """(expires_on, points, purchase_id, available_on) of the lots entry `entry_id` created, in id order."""
    return tx.execute("SELECT expires_on, points, purchase_id, available_on FROM lots WHERE entry_id = ? ORDER BY id",
                      (entry_id,)).fetchall()


def merge_entries(tx) -> list[tuple]:
    """(id, member_id, kind, points) of every merge_out and merge_in entry."""
    return tx.execute("SELECT id, member_id, kind, points FROM ledger WHERE kind = 'merge_out' OR kind = 'merge_in' "
                      "ORDER BY id").fetchall()


def entries_after(tx, member_id: str, entry_id: int) -> list[int]:
    """The ids of `member_id`'s ledger entries recorded after entry `entry_id` (a merged member takes
    nothing new: they should be none)."""
    return [e for (e,) in tx.execute("SELECT id FROM ledger WHERE member_id = ? AND id > ? ORDER BY id LIMIT 10",
                                     (member_id, entry_id))]


def merged_members(tx) -> list[tuple[str, str | None]]:
    """(member_id, merged_into) of every member merged into another."""
    return tx.execute("SELECT member_id, merged_into FROM members WHERE merged_into IS NOT NULL ORDER BY member_id").fetchall()


# -- consent -----------------------------------------------------------------------------------
def consent(tx, member_id: str) -> dict:
    """{channel: (opt_in as 0/1, at, source)} of a member."""
    row = tx.execute("SELECT email_opt_in, email_consent_at, email_consent_source, sms_opt_in, sms_consent_at, "
                     "sms_consent_source FROM members WHERE member_id = ?", (member_id,)).fetchone()
    if row is None:
        return {}
    return {"email": tuple(row[:3]), "sms": tuple(row[3:])}


def set_consent(tx, member_id: str, channel: str, opt_in: bool, at: str, source: str, by: str | None) -> None:
    """Record a member's answer for one channel and make it their current consent."""
    row = (member_id, channel, int(opt_in), at, source, by)
    write_consent(tx, [row])
    tx.journal.add("consent_changes", row)


def write_consent(tx, answers: list[tuple]) -> None:
    """Write answers [(member_id, channel, opt_in, at, source, by)], in order: each member's current
    consent, and the answers' rows numbered on from the last (the caller records them on the chain)."""
    for channel, (opted, at_column, source_column) in CONSENT_COLUMNS.items():
        current: dict = {}  # the last answer of each member on the channel is the one that stays
        for member_id, answered, opt_in, at, source, __ in answers:
            if answered == channel:
                current[member_id] = (opt_in, at, source, member_id)
        if current:
            tx.executemany(f"UPDATE members SET {opted} = ?, {at_column} = ?, {source_column} = ? WHERE member_id = ?",
                           list(current.values()))
    last = tx.execute("SELECT coalesce(max(id), 0) FROM consent_changes").fetchone()[0]
    tx.executemany("INSERT INTO consent_changes (id, member_id, channel, opt_in, at, source, by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(last + n, *row) for n, row in enumerate(answers, 1)])


def consent_changes(tx, member_id: str) -> list[tuple]:
    """(channel, opt_in, at, source, by) of every consent answer of a member, in order."""
    return tx.execute("SELECT channel, opt_in, at, source, by FROM consent_changes WHERE member_id = ? ORDER BY id",
                      (member_id,)).fetchall()


def consent_states(tx) -> list[tuple]:
    """(member_id, email_opt_in, email_consent_at, email_consent_source, sms_opt_in, sms_consent_at,
    sms_consent_source, merged_into) of every member (db check)."""
    return tx.execute("SELECT member_id, email_opt_in, email_consent_at, email_consent_source, sms_opt_in, "
                      "sms_consent_at, sms_consent_source, merged_into FROM members").fetchall()


def contacts(tx, channel: str) -> dict[str, tuple]:
    """{member_id: (name, email, phone)} of the members who opted in to `channel`, are not erased and
    were not merged into another: the only members a campaign list may name."""
    opted = CONSENT_COLUMNS[channel][0]
    return {r[0]: r[1:] for r in tx.execute(
        f"SELECT member_id, name, email, phone FROM members WHERE {opted} = 1 AND erased_at IS NULL "
        "AND merged_into IS NULL")}


# -- campaign exports --------------------------------------------------------------------------
def record_export(tx, at: str, by: str, list_name: str, channel: str, as_of: str, members: int, destination: str) -> int:
    """Record one campaign list exported; returns its id."""
    row = (at, by, list_name, channel, as_of, members, destination)
    new_id = tx.execute("SELECT coalesce(max(id), 0) + 1 FROM campaign_exports").fetchone()[0]
    tx.execute("INSERT INTO campaign_exports (id, at, by, list, channel, as_of, members, destination) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (new_id, *row))
    tx.journal.add("campaign_exports", row)
    return new_id


def audit_rows(tx) -> list[tuple]:
    """(at, kind, by, what, members, *parts) of every campaign export, merge and erasure, by date then
    kind; `parts` are the values `what` is made of (list, channel, as_of, destination; member, into;
    member), for saying it in the language of the person reading."""
    return tx.execute(
        """SELECT at, 'campaign export' AS kind, by, list || ' by ' || channel || ' as of ' || as_of || ' to '
                  || destination AS what, members, list, channel, as_of, destination FROM campaign_exports
           UNION ALL
           SELECT at, 'merge', by, member_id || ' into ' || into_id, 1, member_id, into_id, '', '' FROM member_merges
           UNION ALL
           SELECT at, 'erasure', by, member_id, 1, member_id, '', '', '' FROM erasures
           ORDER BY 1, 2, 4""").fetchall()


# -- members export (right of access) ------------------------------------------------------------
def member_record(tx, member_id: str) -> dict | None:
    """Every column of the member's row, by name (None when not enrolled)."""
    cursor = tx.execute("SELECT * FROM members WHERE member_id = ?", (member_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    return {name: value for name, value in zip(names, row) if name not in ("member_key", "rowid")}


def _dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def purchases_of(tx, member_id: str) -> list[dict]:
    """The member's purchases, in date then id order."""
    return _dicts(tx.execute("SELECT purchase_id, kind, amount, purchased_at, category, refund_of, points, store "
                             "FROM purchases WHERE member_id = ? ORDER BY purchased_at, purchase_id", (member_id,)))


def ledger_of(tx, member_id: str) -> list[dict]:
    """The member's ledger entries, in recorded order."""
    return _dicts(tx.execute('SELECT id, at, kind, points, ref, note, "by" FROM ledger WHERE member_id = ? ORDER BY id',
                             (member_id,)))


def lots_of(tx, member_id: str) -> list[dict]:
    """The member's lots (credits with their expiry and what is left of them), in id order."""
    return _dicts(tx.execute("SELECT id, entry_id, expires_on, points, remaining, purchase_id, origin, available_on "
                             "FROM lots WHERE member_id = ? ORDER BY id", (member_id,)))


def vouchers_of(tx, member_id: str) -> list[dict]:
    """The member's vouchers, in issue order."""
    return _dicts(tx.execute("SELECT code, reward_code, points, status, issued_at, closed_at FROM vouchers "
                             "WHERE member_id = ? ORDER BY issued_at, code", (member_id,)))


def tier_changes_of(tx, member_id: str) -> list[dict]:
    """The member's tier changes, in recorded order."""
    return _dicts(tx.execute('SELECT at, from_tier, to_tier, reason, until, "by", ref FROM tier_changes '
                             "WHERE member_id = ? ORDER BY id", (member_id,)))


def feedback_of(tx, member_id: str) -> list[dict]:
    """The member's feedback scores and comments, in date order."""
    return _dicts(tx.execute("SELECT at, score, comment FROM feedback WHERE member_id = ? ORDER BY at, id",
                             (member_id,)))


def erasure_of(tx, member_id: str) -> dict | None:
    """When and by whom the member was erased, or None."""
    found = _dicts(tx.execute('SELECT at, "by" FROM erasures WHERE member_id = ? ORDER BY id', (member_id,)))
    return found[0] if found else None
