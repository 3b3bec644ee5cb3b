"""Tamper evidence that holds (issue 17): every edit an adversarial run made with the sqlite3 shell,
with no hash recomputed (and, for the siblings, with every hash and signature recomputed), is found
by `db check` (exit 4, in its default mode and with --full) with a message naming the table, the row
and the field that changed; and `db check` passes on an untouched database after every kind of
normal use.

The shop is sealed after its first day of trading and trades on after it, so that the default
`db check` is the incremental one, comparing rows from that seal on; the tampering is done to rows
written after the seal (rows before it are compared by --full: see the last tamper test). Each
tampering is done as a careful attacker would: the guarding triggers dropped, the edit made, the
triggers put back, so that the schema check alone does not find it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db import connect, count, member, raw, row
from tests.helpers import chain_key, guards_dropped, is_postgres, ok, rechain, run, undo_chain, block_text, small_shop
from tests.test_import_bulk import head_of

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def check(db, *args, env=None) -> tuple[int, list[dict]]:
    result = run(db, "db", "check", "--json", *args, env=env)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 4), (result.exit_code, result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert set(doc) == {"ok", "problems"} and doc["ok"] == (result.exit_code == 0)  # SPEC: exactly these two
    return result.exit_code, doc["problems"]


def passes(db, *args) -> None:
    """db check passes, in its default mode and with --full."""
    for mode in ((), ("--full",)):
        code, problems = check(db, *mode, *args)
        assert (code, problems) == (0, []), (mode, problems)


def found(db, *fragments, args=()) -> list[str]:
    """db check fails (exit 4) in its default mode and with --full, and in each some problem's message
    holds every fragment given; returns the --full messages."""
    messages = []
    for mode in ((), ("--full",)):
        code, problems = check(db, *mode, *args)
        messages = [p["message"] for p in problems]
        assert code == 4, (mode, problems)
        assert any(all(f in m for f in fragments) for m in messages), (mode, fragments, messages)
    human = run(db, "db", "check", *args)
    assert human.exit_code == 4 and human.stdout == "" and "Traceback" not in human.output
    return messages


def voucher_codes(db) -> dict[str, str]:
    return {v["member_id"]: v["code"] for v in json.loads(ok(db, "vouchers", "list", "--json").stdout)}


@pytest.fixture
def shop(tmp_path, db):
    """A shop with real activity: the programme loaded, members imported, a day of sales and a refund
    imported from the till, a reward with stock, then sealed; after the seal sales at the counter, a
    refund, two vouchers (one used, one cancelled), a transfer, tiers set by hand and recalculated,
    feedback and an erasure."""
    db = small_shop(tmp_path, 20, db)  # (the db fixture's: on the PostgreSQL run too)
    ok(db, "-q", "db", "seal", "--at", "2025-05-31T23:00")
    # After the seal: what the default db check compares row by row.
    ok(db, "purchases", "add", "M0005", "600.00", "--id", "C1", "--at", "2025-06-01T10:00", "--category", "grocery")
    ok(db, "purchases", "add", "M0006", "60.00", "--id", "C2", "--at", "2025-06-01T11:00")
    ok(db, "purchases", "refund", "C2", "--id", "CR2", "--at", "2025-06-02T10:00")
    ok(db, "points", "redeem", "M0001", "--reward", "MUG", "--at", "2025-06-03")
    ok(db, "points", "redeem", "M0005", "--reward", "MUG", "--at", "2025-06-03")
    codes = voucher_codes(db)
    ok(db, "vouchers", "use", codes["M0001"], "--at", "2025-06-04")
    ok(db, "vouchers", "cancel", codes["M0005"], "--at", "2025-06-04")
    ok(db, "points", "transfer", "M0005", "M0007", "20", "--at", "2025-06-05")
    ok(db, "tiers", "set", "M0002", "Gold", "--at", "2025-06-05")
    ok(db, "tiers", "recalc", "--as-of", "2025-07-01")
    ok(db, "feedback", "add", "M0003", "9", "--comment", "lovely bread", "--at", "2025-06-06")
    ok(db, "members", "erase", "M0004", "--yes", "--at", "2025-06-07")
    return db


def test_the_shop_passes_untouched_and_its_default_check_is_incremental(shop):
    passes(shop)
    assert ok(shop, "db", "check").stdout.startswith("ok: every check passed (rows compared from the seal at block ")
    assert count(shop, "vouchers", status="used") == 1 and count(shop, "vouchers", status="cancelled") == 1
    assert count(shop, "purchases", kind="refund") == 2 and count(shop, "tier_changes") >= 2


# -- the tampering the adversarial run did (issue 17) -----------------------------------------------
def lot_of(conn, purchase_id: str) -> int:
    (lot_id,), = conn.execute("SELECT id FROM lots WHERE purchase_id = ?", (purchase_id,)).fetchall()
    return lot_id


def test_a_lots_expiry_set_to_9999_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "lots"):
        lot_id = lot_of(conn, "C1")
        conn.execute("UPDATE lots SET expires_on = '9999-12-31' WHERE id = ?", (lot_id,))
    found(shop, f"lot {lot_id} (lots)", "expires_on is '9999-12-31' but the chain recorded '2026-06-30'")


def test_a_used_voucher_set_back_to_issued_is_found(shop):
    code = voucher_codes(shop)["M0001"]
    with connect(shop) as conn, guards_dropped(conn, "vouchers"):
        conn.execute("UPDATE vouchers SET status = 'issued', closed_at = NULL WHERE code = ?", (code,))
    assert ok(shop, "vouchers", "use", code, "--at", "2025-06-08")  # what the tampering was for: a second use
    with connect(shop) as conn, guards_dropped(conn, "vouchers"):
        conn.execute("UPDATE vouchers SET status = 'issued', closed_at = NULL WHERE code = ?", (code,))
    found(shop, f"voucher {code}", "status is 'issued' but the chain recorded 'used'")


def test_points_per_unit_raised_in_the_stored_programme_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "program_versions"):
        (rules,), = conn.execute("SELECT rules FROM program_versions WHERE id = 1").fetchall()
        assert '"points_per_unit": "1"' in rules
        conn.execute("UPDATE program_versions SET rules = ? WHERE id = 1",
                     (rules.replace('"points_per_unit": "1"', '"points_per_unit": "100"'),))
    ok(shop, "purchases", "add", "M0008", "10.00", "--id", "C9", "--at", "2025-06-09")
    assert row(shop, "purchases", purchase_id="C9").points == 2000  # 100 a pound, doubled for a first purchase
    found(shop, "programme version row 1 (program_versions): rules is", 'points_per_unit": "100", ',
          'but the chain recorded ...\'points_per_unit": "1", ')  # the change itself, not the rules' first 60 characters


def test_a_forged_tier_change_to_platinum_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "tier_changes", "members"):
        conn.execute("INSERT INTO tier_changes (member_id, at, from_tier, to_tier, reason, until, by, ref) "
                     "VALUES ('M0006', '2025-06-10T00:00:00', 'Bronze', 'Platinum', 'manual', NULL, 'root', NULL)")
        conn.execute("UPDATE members SET tier = 'Platinum', tier_since = '2025-06-10' WHERE member_id = 'M0006'")
        (n,), = conn.execute("SELECT count(*) FROM tier_changes").fetchall()
    assert member(shop, "M0006").tier == "Platinum"
    found(shop, f"tier change row {n} (tier_changes) is not in the chain")


def test_a_purchase_amount_raised_with_the_summaries_rebuilt_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "purchases", "member_totals", "daily_sales"):
        conn.execute("UPDATE purchases SET amount = amount + 500000 WHERE purchase_id = 'C1'")
        conn.execute("UPDATE member_totals SET net_spend = net_spend + 500000 WHERE member_id = 'M0005'")
        conn.execute("UPDATE daily_sales SET sales_amount = sales_amount + 500000 WHERE day = '2025-06-01'")
    found(shop, "purchase C1 (purchases)", "amount is 560000 but the chain recorded 60000")


def test_a_refund_deleted_with_its_reversal_entries_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "purchases", "ledger", "lot_uses", "lots"):
        reversals = [eid for (eid,) in conn.execute("SELECT id FROM ledger WHERE kind = 'reversal' AND ref = 'CR2'")]
        assert reversals
        for eid in reversals:
            for lot_id, points in conn.execute("SELECT lot_id, points FROM lot_uses WHERE entry_id = ?", (eid,)).fetchall():
                conn.execute("UPDATE lots SET remaining = remaining + ? WHERE id = ?", (points, lot_id))
            conn.execute("DELETE FROM lot_uses WHERE entry_id = ?", (eid,))
            (points,), = conn.execute("SELECT points FROM ledger WHERE id = ?", (eid,)).fetchall()
            conn.execute("UPDATE members SET balance = balance - ? WHERE member_id = 'M0006'", (points,))
            conn.execute("DELETE FROM ledger WHERE id = ?", (eid,))
        conn.execute("DELETE FROM purchases WHERE purchase_id = 'CR2'")
    messages = found(shop, "purchase CR2 (purchases) is missing")
    assert any(m.startswith(f"entry {reversals[0]} (ledger) is missing") for m in messages), messages


def test_lot_uses_moved_between_lots_are_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "lot_uses"):
        (eid,), = conn.execute("SELECT id FROM ledger WHERE kind = 'redeem' AND member_id = 'M0005'").fetchall()
        (lot_id,), = conn.execute("SELECT lot_id FROM lot_uses WHERE entry_id = ?", (eid,)).fetchall()
        other = conn.execute("SELECT id FROM lots WHERE member_id = 'M0005' AND id != ? ORDER BY id", (lot_id,)).fetchone()[0]
        conn.execute("UPDATE lot_uses SET lot_id = ? WHERE entry_id = ?", (other, eid))
    found(shop, "lot use row", "(lot_uses)", f"lot_id is {other} but the chain recorded {lot_id}")


def test_an_erasure_flag_cleared_and_the_name_put_back_is_found(shop):
    with connect(shop) as conn:
        conn.execute("UPDATE members SET erased_at = NULL, erased_by = NULL, name = 'Back Again' "
                     "WHERE member_id = 'M0004'")
    found(shop, "member M0004", "erased_at is NULL but the chain recorded '2025-06-07")


def test_a_name_put_back_after_an_erasure_is_found(shop):
    with connect(shop) as conn:
        conn.execute("UPDATE members SET email = 'back@shop.example' WHERE member_id = 'M0004'")
    found(shop, "member M0004", "email holds personal data again after the erasure")


def test_reward_stock_edited_is_found(shop):
    with connect(shop) as conn:
        conn.execute("UPDATE rewards SET stock = 99 WHERE code = 'MUG'")
    found(shop, "reward MUG", "stock is 99 but the chain recorded 4")


def test_an_extra_trigger_copying_personal_data_is_found(shop):
    with connect(shop) as conn:
        conn.execute("CREATE TABLE stash (member_id TEXT, name TEXT, email TEXT)")
        if is_postgres(conn):  # the same trigger in PostgreSQL's terms: a function and a row trigger
            conn.execute("CREATE FUNCTION stash_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                         "INSERT INTO stash VALUES (OLD.member_id, OLD.name, OLD.email); RETURN NEW; END $$")
            conn.execute("CREATE TRIGGER members_copy BEFORE UPDATE ON members FOR EACH ROW EXECUTE FUNCTION stash_copy()")
        else:
            conn.execute("CREATE TRIGGER members_copy BEFORE UPDATE ON members "
                         "BEGIN INSERT INTO stash VALUES (OLD.member_id, OLD.name, OLD.email); END")
    ok(shop, "members", "erase", "M0009", "--yes", "--at", "2025-06-09")
    assert row(shop, "stash", member_id="M0009").name is not None  # what it was made for
    found(shop, "an extra trigger members_copy on members")
    found(shop, "an extra table stash")


# -- siblings -----------------------------------------------------------------------------------
def test_a_programme_versions_source_and_applies_from_edited_are_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "program_versions"):
        conn.execute("UPDATE program_versions SET source = 'owner.toml', applies_from = '2023-01-01' WHERE id = 1")
    found(shop, "programme version row 1 (program_versions)", "applies_from is '2023-01-01' but the chain recorded "
          "'2024-01-01'", "source is 'owner.toml'")


def test_a_voucher_code_edited_is_found(shop):
    code = voucher_codes(shop)["M0005"]
    with connect(shop) as conn, guards_dropped(conn, "vouchers"):
        conn.execute("UPDATE vouchers SET code = 'VFORGED01' WHERE code = ?", (code,))
    messages = found(shop, "voucher VFORGED01 is not in the chain")
    assert any(m.startswith(f"voucher {code} is missing") for m in messages), messages


def test_a_lots_available_on_moved_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "lots"):
        lot_id = lot_of(conn, "C1")
        conn.execute("UPDATE lots SET available_on = '2025-01-01' WHERE id = ?", (lot_id,))
    found(shop, f"lot {lot_id} (lots)", "available_on is '2025-01-01'")


def award_two_and_seal(shop) -> int:
    """Two awards to M0007 after everything, then a seal; returns the block count sealed."""
    ok(shop, "points", "award", "M0007", "10", "--reason", "late 1", "--at", "2025-07-02")
    ok(shop, "points", "award", "M0007", "10", "--reason", "late 2", "--at", "2025-07-03")
    ok(shop, "-q", "db", "seal", "--at", "2025-07-03T23:00")
    (blocks,), = raw(shop, "SELECT max(id) FROM chain")
    return blocks


def delete_last_awards(conn, blocks: int, key: bytes | None) -> None:
    """The last two entries (M0007's awards) deleted with their lots, the balance and daily totals set
    back; with the key, the blocks that recorded them deleted too (a chain that ends earlier is still
    a signed chain); without it, the blocks are left (deleting them is the same truncation)."""
    eids = [eid for (eid,) in conn.execute("SELECT id FROM ledger ORDER BY id DESC LIMIT 2")]
    conn.execute(f"DELETE FROM lots WHERE entry_id IN ({eids[0]}, {eids[1]})")
    conn.execute(f"DELETE FROM ledger WHERE id IN ({eids[0]}, {eids[1]})")
    conn.execute("UPDATE members SET balance = balance - 20 WHERE member_id = 'M0007'")
    conn.execute("DELETE FROM daily_points WHERE day IN ('2025-07-02', '2025-07-03')")
    if key is not None:
        conn.execute("DELETE FROM chain WHERE id > ?", (blocks - 2,))


def test_deleting_the_last_entries_with_the_key_is_found_by_the_anchors(shop, tmp_path):
    blocks = award_two_and_seal(shop)
    with connect(shop) as conn, guards_dropped(conn, "ledger", "lots", "chain"):
        delete_last_awards(conn, blocks, chain_key())
    found(shop, f"the chain has {blocks - 2} blocks but was sealed at {blocks} blocks on 2025-07-03: blocks were "
                "deleted")


def test_deleting_the_last_entries_without_the_key_is_found_by_the_chain(shop, tmp_path):
    blocks = award_two_and_seal(shop)
    (tmp_path / "config" / "loyalty" / "chain.key").unlink()  # the attacker has no key; the owner lost it
    with connect(shop) as conn, guards_dropped(conn, "ledger", "lots"):
        delete_last_awards(conn, blocks, None)
    (eid,), = raw(shop, "SELECT max(id) FROM ledger")
    # Sealed at the last block, the default check compares no row but counts them; --full names them.
    code, problems = check(shop, "--no-key")
    assert code == 4 and any(p["message"].startswith("ledger has 2 fewer rows than the chain recorded: rows were "
                                                     "deleted") for p in problems), problems
    code, problems = check(shop, "--full", "--no-key")
    assert code == 4 and [p["message"] for p in problems if p["message"].startswith("entry ")] == [
        f"entry {eid + n} (ledger) is missing: the chain recorded it in block {blocks - 2 + n}; it was deleted behind "
        "the tool's back" for n in (1, 2)]


def rewrite_s1(conn) -> int:
    """S1's amount raised in the purchases table and in the block that recorded it (no summary fixed:
    the attacker re-chains; the point is the chain). Returns that block's id."""
    block_id, body = block_text(conn, "purchases", '"S1","M0001","sale",12000,')
    conn.execute("UPDATE purchases SET amount = 92000 WHERE purchase_id = 'S1'")
    conn.execute("UPDATE member_totals SET net_spend = net_spend + 80000 WHERE member_id = 'M0001'")
    conn.execute("UPDATE daily_sales SET sales_amount = sales_amount + 80000 WHERE day = '2025-05-01'")
    conn.execute("UPDATE chain SET body = ? WHERE id = ?",
                 (body.replace('"S1","M0001","sale",12000,', '"S1","M0001","sale",92000,'), block_id))
    return block_id


def test_rechained_history_with_the_key_is_found_by_the_anchors(shop):
    blocks = award_two_and_seal(shop)
    with connect(shop) as conn, guards_dropped(conn, "purchases", "chain"):
        first = rewrite_s1(conn)
        rechain(conn, first, chain_key())
    messages = found(shop, f"block {blocks}'s hash is not the one sealed at {blocks} blocks on 2025-07-03: history "
                           "was rewritten")
    assert all("chain block" not in m for m in messages), messages  # the chain itself is whole and signed


def test_rechained_history_without_the_key_is_found_by_the_signatures(shop):
    with connect(shop) as conn, guards_dropped(conn, "purchases", "chain"):
        first = rewrite_s1(conn)
        rechain(conn, first, None)
    found(shop, f"chain block {first} is not signed by the chain key: it was forged or rewritten")


def test_an_extra_table_is_found(shop):
    with connect(shop) as conn:
        conn.execute("CREATE TABLE contacts AS SELECT name, email, phone FROM members")
    found(shop, "an extra table contacts that loyalty did not make")


def test_a_blocks_body_edited_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "chain"):
        block_id, body = block_text(conn, "purchases", '"C1","M0005"')
        conn.execute("UPDATE chain SET body = ? WHERE id = ?", (body.replace('"C1","M0005"', '"C1","M0006"'), block_id))
    messages = found(shop, f"chain block {block_id} does not hash to what is stored")
    assert any(m.startswith("purchase C1 (purchases): member_id is 'M0005' but the chain recorded 'M0006'")
               for m in messages), messages


def test_a_block_deleted_in_the_middle_is_found(shop):
    with connect(shop) as conn, guards_dropped(conn, "chain"):
        block_id, _ = block_text(conn, "purchases", '"C2","M0006","sale"')
        conn.execute("DELETE FROM chain WHERE id = ?", (block_id,))
    messages = found(shop, f"chain blocks {block_id}..{block_id} are missing")
    assert any(m.startswith(f"chain block {block_id + 1} does not hash") for m in messages), messages


def another_key() -> bytes:
    return bytes(range(32))


def test_a_block_signed_with_another_key_is_found(shop):
    from loyalty_cli.keys import key_id
    from loyalty_cli.store.chain import block_hash, block_mac

    mine, theirs = key_id(chain_key()), key_id(another_key())
    with connect(shop) as conn, guards_dropped(conn, "chain"):
        (block_id, kinds, counts, body), = conn.execute(
            "SELECT id, kinds, counts, body FROM chain ORDER BY id DESC LIMIT 1").fetchall()
        (prev,), = conn.execute("SELECT hash FROM chain WHERE id = ?", (block_id - 1,)).fetchall()
        h = block_hash(prev, block_id, kinds, theirs, counts, body)
        conn.execute("UPDATE chain SET key = ?, hash = ?, mac = ? WHERE id = ?",
                     (theirs, h, block_mac(another_key(), h), block_id))
    found(shop, f"chain block {block_id} is signed with key {theirs}, not with the chain key given (key {mine})")


def test_the_key_file_replaced_by_another_key_is_found(shop, tmp_path):
    from loyalty_cli.keys import key_id

    mine = key_id(chain_key())
    (tmp_path / "config" / "loyalty" / "chain.key").write_text(another_key().hex() + "\n")
    (last,), = raw(shop, "SELECT max(id) FROM chain")
    messages = found(shop, f"chain blocks 1..{last} are signed with key {mine}, not with the chain key given "
                           f"(key {key_id(another_key())})")
    assert [m for m in messages if m.startswith("chain block")] == [messages[0]], messages  # one line for them all


def test_rows_before_the_seal_are_compared_by_full(shop):
    """The default check compares history from the latest seal; --full every row, since the first block."""
    with connect(shop) as conn, guards_dropped(conn, "lots"):
        lot_id = lot_of(conn, "S2")
        conn.execute("UPDATE lots SET expires_on = '9999-12-31' WHERE id = ?", (lot_id,))
    code, problems = check(shop, "--full")
    assert code == 4 and any(p["message"].startswith(f"lot {lot_id} (lots): expires_on is '9999-12-31'")
                             for p in problems), problems


# -- normal use passes ----------------------------------------------------------------------------
def test_db_check_passes_after_every_kind_of_normal_use_on_the_sample_data(tmp_path):
    db = tmp_path / "shop.db"
    ok(db, "-q", "init")
    passes(db)
    ok(db, "-q", "program", "load", SAMPLE / "program.toml", "--from", "2024-01-01")
    ok(db, "members", "import", SAMPLE / "members.csv")
    ok(db, "purchases", "import", head_of(SAMPLE / "purchases.csv", tmp_path / "first.csv", 0, 1500))
    passes(db)
    ok(db, "-q", "db", "seal")
    passes(db)
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "50", "--stock", "5")
    ok(db, "rewards", "add", "BAG", "--name", "Bag", "--cost", "80")
    ok(db, "rewards", "edit", "MUG", "--stock", "7")
    ok(db, "points", "redeem", "M0001", "--reward", "MUG", "--at", "2025-11-01")
    ok(db, "points", "redeem", "M0002", "--reward", "MUG", "--at", "2025-11-01")
    codes = voucher_codes(db)
    ok(db, "vouchers", "use", codes["M0001"], "--at", "2025-11-02")
    ok(db, "vouchers", "cancel", codes["M0002"], "--at", "2025-11-02")
    ok(db, "rewards", "retire", "BAG")
    ok(db, "points", "transfer", "M0001", "M0003", "5", "--at", "2025-11-03")
    ok(db, "points", "award", "M0010", "25", "--reason", "prize", "--at", "2025-11-03")
    ok(db, "points", "adjust", "M0010", "-5", "--reason", "typo", "--at", "2025-11-03")
    ok(db, "points", "redeem", "M0010", "10", "--at", "2025-11-03")
    ok(db, "purchases", "add", "M0011", "42.50", "--id", "C1", "--at", "2025-11-04T10:00")
    ok(db, "purchases", "refund", "C1", "10.00", "--at", "2025-11-04T11:00")
    ok(db, "program", "set", "earn.pending_days", "14", "--from", "2025-11-05")
    ok(db, "members", "add", "--id", "N1", "--name", "New One", "--joined", "2025-11-05", "--referred-by", "M0001")
    ok(db, "members", "edit", "N1", "--email", "n1@shop.example")
    ok(db, "points", "expire", "--as-of", "2025-11-04")
    ok(db, "tiers", "recalc", "--as-of", "2025-11-05")
    ok(db, "tiers", "set", "M0005", "Platinum", "--until", "2026-06-30", "--at", "2025-11-05")
    ok(db, "feedback", "add", "M0003", "8", "--comment", "friendly staff", "--at", "2025-11-06")
    ok(db, "members", "erase", "M0003", "--yes")  # no sale of theirs in the second import
    passes(db)
    ok(db, "-q", "db", "seal")
    ok(db, "purchases", "import", head_of(SAMPLE / "purchases.csv", tmp_path / "rest.csv", 1500, 3000))
    passes(db)


def test_db_check_passes_after_a_members_import_that_updates_and_an_erasure(shop, tmp_path):
    update = tmp_path / "update.csv"
    update.write_text("member_id,name,email,phone,birthday,joined_on,referred_by\n"
                      "M0010,Tenth Member,tenth@shop.example,,,2025-01-05,M0001\n"
                      "M0100,New Member,new@shop.example,,,2025-06-01,\n")
    ok(shop, "members", "import", update)
    passes(shop)
    ok(shop, "members", "erase", "M0010", "--yes")
    passes(shop)
    assert member(shop, "M0010").name is None


def test_db_check_passes_after_a_database_from_before_the_chain_is_migrated(shop, tmp_path):
    """A database of a loyalty made before the chain, sealed as it sealed then (the ledger's entries):
    opening it extends a chain over every row it holds, and every check passes, the old seal too."""
    from loyalty_cli.store.migrations import MIGRATIONS

    (eid, h), = raw(shop, "SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1")
    anchors_file, = (tmp_path / "config" / "loyalty" / "anchors").iterdir()
    anchors_file.write_text(f"# loyalty anchors\n2025-06-30T23:00:00 entries={eid} head={h} db={shop}\n")
    with connect(shop) as conn:
        undo_chain(conn)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    assert not raw(shop, "SELECT name FROM sqlite_master WHERE name = 'chain'")
    result = ok(shop, "db", "check", "--full")  # opening it extends the chain over every row, and says so
    assert "the chain now covers the rows recorded before it" in result.stderr
    assert raw(shop, "SELECT count(*) FROM chain")[0][0] == 1
    passes(shop)
    ok(shop, "-q", "db", "seal")
    ok(shop, "points", "award", "M0007", "10", "--reason", "after", "--at", "2025-07-02")
    passes(shop)


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
def test_db_check_passes_after_a_restore(shop, tmp_path):
    backup = tmp_path / "backup.db"
    ok(shop, "db", "backup", backup)
    ok(shop, "points", "award", "M0007", "10", "--reason", "after the backup", "--at", "2025-07-02")
    ok(shop, "db", "restore", backup, "--yes")
    passes(shop)
    ok(shop, "points", "award", "M0007", "10", "--reason", "after the restore", "--at", "2025-07-03")
    passes(shop)


# -- the key --------------------------------------------------------------------------------------
def key_file(tmp_path) -> Path:
    return tmp_path / "config" / "loyalty" / "chain.key"


def test_init_makes_a_private_key_and_never_overwrites_one(tmp_path, umask_zero):
    db = tmp_path / "shop.db"
    result = ok(db, "init")
    path = key_file(tmp_path)
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and int(text, 16) >= 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert str(path) in result.stderr
    ok(tmp_path / "second.db", "init")  # another shop of the same user: the same key
    ok(db, "init")
    assert path.read_text() == text
    passes(tmp_path / "second.db")


def test_loyalty_key_file_is_used(tmp_path):
    db = tmp_path / "shop.db"
    mine = tmp_path / "keys" / "shop.key"
    env = {"LOYALTY_KEY_FILE": str(mine)}
    ok(db, "init", env=env)
    assert mine.exists() and not key_file(tmp_path).exists()
    ok(db, "members", "add", "--id", "M1", "--name", "Ana", "--joined", "2025-01-01", env=env)
    assert not key_file(tmp_path).exists()
    for mode in ((), ("--full",)):
        result = run(db, "db", "check", *mode, env=env)
        assert result.exit_code == 0, result.stderr
    code, problems = check(db)  # without it, the default place has no key
    assert code == 4 and [p["check"] for p in problems] == ["key"]
    result = run(db, "db", "check", env={"LOYALTY_KEY_FILE": ""})
    assert result.exit_code == 2 and "LOYALTY_KEY_FILE is set but empty" in result.stderr


def test_a_missing_key_fails_the_check_naming_the_file_and_no_key(shop, tmp_path):
    key_file(tmp_path).unlink()
    for mode in ((), ("--full",)):
        code, problems = check(shop, *mode)
        assert code == 4 and [p["check"] for p in problems] == ["key"], problems
        assert str(key_file(tmp_path)) in problems[0]["message"] and "--no-key" in problems[0]["message"]
    result = run(shop, "db", "check")
    assert result.exit_code == 4 and result.stdout == "" and str(key_file(tmp_path)) in result.stderr
    assert not key_file(tmp_path).exists()  # checking never makes a key


def test_no_key_passes_an_untouched_database_and_says_the_signatures_were_not_checked(shop, tmp_path):
    key_file(tmp_path).unlink()
    passes(shop, "--no-key")
    for mode in ((), ("--full",)):
        result = ok(shop, "db", "check", "--no-key", *mode)
        assert result.stdout.startswith("ok: every check passed")
        assert "the chain's signatures were not checked (--no-key)" in result.stderr


def test_a_write_with_the_key_missing_warns_and_goes_on_but_every_check_reports_it(shop, tmp_path):
    """A lost key file must not stop the till, nor be a way to launder blocks: the write makes a new key
    and says so, and db check reports, with either key, the blocks the other one signed."""
    path = key_file(tmp_path)
    old = path.read_bytes()
    (first_new,), = raw(shop, "SELECT max(id) + 1 FROM chain")
    path.unlink()
    result = ok(shop, "points", "award", "M0007", "10", "--reason", "new till", "--at", "2025-07-02")
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(path) in warnings[0] and "did not exist" in warnings[0], result.stderr
    assert "loyalty db rekey --yes" in warnings[0]
    assert path.exists() and path.read_bytes() != old
    found(shop, f"chain blocks 1..{first_new - 1} are signed with key")  # with the new key
    path.write_bytes(old)
    found(shop, f"chain block {first_new} is signed with key")  # with the old key


def test_a_block_forged_with_another_key_is_not_laundered_by_the_owners_next_write(shop, tmp_path):
    """An attacker's block signed with a key of their own, then the owner's ordinary sale: still reported."""
    attacker = tmp_path / "attacker.key"
    (first_forged,), = raw(shop, "SELECT max(id) + 1 FROM chain")
    ok(shop, "points", "award", "M0007", "5000", "--reason", "x", "--at", "2025-07-02",
       env={"LOYALTY_KEY_FILE": str(attacker)})
    result = ok(shop, "points", "award", "M0007", "1", "--reason", "owner", "--at", "2025-07-03")
    assert "warning: the chain key in" in result.stderr and "is not the one" in result.stderr
    found(shop, f"chain block {first_forged} is signed with key")


def test_rekey_accepts_the_blocks_before_once_the_chain_passes_without_its_key(shop, tmp_path):
    path = key_file(tmp_path)
    (first_new,), = raw(shop, "SELECT max(id) + 1 FROM chain")
    path.unlink()  # lost for good
    ok(shop, "points", "award", "M0007", "10", "--reason", "new till", "--at", "2025-07-02")
    assert run(shop, "db", "check").exit_code == 4
    result = run(shop, "db", "rekey")
    assert result.exit_code == 2 and "--yes" in result.stderr
    (last,), = raw(shop, "SELECT max(id) FROM chain")
    result = ok(shop, "db", "rekey", "--yes", "--json")
    doc = json.loads(result.stdout)
    assert doc["accepted_through"] == last and doc["block"] == last + 1 and doc["key_file"] == str(path)
    for mode in ((), ("--full",)):
        result = ok(shop, "db", "check", *mode)
        assert f"chain blocks 1..{first_new - 1} " in result.stderr and "accepted by 'loyalty db rekey'" in result.stderr


def test_rekey_refuses_a_chain_that_fails_without_its_key(shop, tmp_path):
    with connect(shop) as conn, guards_dropped(conn, "purchases"):
        conn.execute("UPDATE purchases SET amount = amount + 1 WHERE purchase_id = 'S1'")
    (blocks,), = raw(shop, "SELECT count(*) FROM chain")
    result = run(shop, "db", "rekey", "--yes")
    assert result.exit_code == 4 and "must pass 'loyalty db check --no-key'" in result.stderr
    assert raw(shop, "SELECT count(*) FROM chain") == [(blocks,)]


def test_a_first_sale_cleared_is_found_by_every_check(shop):
    with connect(shop) as conn:
        (mid,), = conn.execute("SELECT member_id FROM members WHERE first_sale IS NOT NULL LIMIT 1").fetchall()
        conn.execute("UPDATE members SET first_sale = NULL WHERE member_id = ?", (mid,))
    found(shop, "first_sale is NULL but they have sales: their next sale would earn the first-purchase bonus again")


# -- random normal activity ---------------------------------------------------------------------
STEPS = st.lists(st.tuples(
    st.sampled_from(("member", "sale", "sale", "refund", "award", "redeem", "reward", "use", "cancel", "transfer",
                     "tier", "recalc", "expire", "erase", "rule", "seal", "stock", "feedback", "check")),
    st.integers(0, 5), st.integers(1, 400), st.integers(0, 3)), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_random_normal_activity_never_fails_db_check(tmp_path_factory, steps):
    """Whatever mix of the shop's own commands is run (refusals allowed: exit 1), on dates that only
    move forward, db check passes after it, in the default mode and with --full, sealed or not."""
    db = tmp_path_factory.mktemp("prop") / "shop.db"
    ok(db, "-q", "init")
    ok(db, "-q", "program", "load", SAMPLE / "program.toml", "--from", "2024-01-01")
    ok(db, "rewards", "add", "MUG", "--name", "Mug", "--cost", "30", "--stock", "3")
    day = dt.date(2025, 1, 1)
    ids = ["P0", "P1"]
    for mid in ids:
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    sales: list[str] = []
    for n, (op, who, amount, extra) in enumerate(steps):
        day += dt.timedelta(days=extra * 9)
        at = day.isoformat() + f"T{10 + n % 10:02d}:00"
        mid, other = ids[who % len(ids)], ids[(who + 1) % len(ids)]
        codes = [v["code"] for v in json.loads(ok(db, "vouchers", "list", "--json").stdout)
                 if v["status"] == "issued"]
        args = {
            "member": ("members", "add", "--id", f"P{len(ids)}", "--name", "New", "--joined", day.isoformat(),
                       "--referred-by", mid),
            "sale": ("purchases", "add", mid, f"{amount}.{extra}0", "--id", f"S{n}", "--at", at),
            "refund": ("purchases", "refund", sales[who % len(sales)] if sales else "S-none", f"{1 + amount % 9}.00",
                       "--at", at),
            "award": ("points", "award", mid, str(amount), "--reason", "gift", "--at", at),
            "redeem": ("points", "redeem", mid, str(1 + amount % 60), "--at", at),
            "reward": ("points", "redeem", mid, "--reward", "MUG", "--at", at),
            "use": ("vouchers", "use", codes[0] if codes else "VNONE", "--at", at),
            "cancel": ("vouchers", "cancel", codes[-1] if codes else "VNONE", "--at", at),
            "transfer": ("points", "transfer", mid, other, str(1 + amount % 50), "--at", at),
            "tier": ("tiers", "set", mid, ("Bronze", "Silver", "Gold", "Platinum")[extra], "--at", at)
                    + (("--until", (day + dt.timedelta(days=amount // 4)).isoformat()) if amount % 2 else ()),
            "recalc": ("tiers", "recalc", "--as-of", day.isoformat()),
            "expire": ("points", "expire", "--as-of", day.isoformat()),
            "erase": ("members", "erase", mid, "--yes", "--at", at),
            "rule": ("program", "set", "earn.points_per_unit", str(1 + extra), "--from", day.isoformat()),
            "seal": ("db", "seal", "--at", at),
            "stock": ("rewards", "edit", "MUG", "--stock", str(amount % 5)),
            "feedback": ("feedback", "add", mid, str(amount % 11), "--comment", "hi", "--at", at),
            "check": ("db", "check"),
        }[op]
        result = run(db, *args)
        assert result.exit_code in (0, 1), (op, args, result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        if result.exit_code == 0 and op == "sale":
            sales.append(f"S{n}")
        if result.exit_code == 0 and op == "member":
            ids.append(f"P{len(ids)}")
    passes(db)


def test_a_first_sale_cleared_is_found_by_full(shop):
    """members.first_sale NULL again: the member's next sale would earn double as a first purchase, and
    their referrer the referral bonus again. --full reads every purchase record and names it."""
    with connect(shop) as conn:
        conn.execute("UPDATE members SET first_sale = NULL WHERE member_id = 'M0005'")
    code, problems = check(shop, "--full")
    assert code == 4 and [p["message"] for p in problems] == [
        "first_sale is NULL but they have sales: their next sale would earn the first-purchase bonus again: changed "
        "behind the tool's back",
        "member M0005: first_sale is NULL but the chain recorded their first sale 'C1' (block 6): changed behind the "
        "tool's back (a NULL earns the first-purchase bonus again)"], problems
    with connect(shop) as conn:  # the tool then takes another sale as the first: still not the chain's first
        conn.execute("UPDATE members SET first_sale = 'S2' WHERE member_id = 'M0005'")
    code, problems = check(shop, "--full")
    assert code == 4 and any(p["message"].startswith("member M0005: first_sale is 'S2' but the chain recorded")
                             for p in problems), problems


def test_a_tier_floor_forged_is_found(shop):
    """floor_tier/floor_until written by hand: every later recalc (the tool itself, chained) would keep
    the member at that tier."""
    with connect(shop) as conn:
        conn.execute("UPDATE members SET floor_tier = 'Platinum', floor_until = '9999-12-31' WHERE member_id = 'M0006'")
    found(shop, "member M0006: floor_tier is 'Platinum' through '9999-12-31' but no manual tier change gave it one")


def test_a_tier_floor_extended_is_found_and_a_real_one_passes(shop):
    ok(shop, "tiers", "set", "M0006", "Gold", "--until", "2025-12-31", "--at", "2025-07-02")
    ok(shop, "tiers", "recalc", "--as-of", "2025-08-01")  # the floor holds
    passes(shop)
    with connect(shop) as conn:
        conn.execute("UPDATE members SET floor_tier = 'Platinum', floor_until = '2030-12-31' WHERE member_id = 'M0006'")
    found(shop, "member M0006: floor_tier is 'Platinum' through '2030-12-31' but tier change row",
          "gave 'Gold' through '2025-12-31'")
    with connect(shop) as conn:
        conn.execute("UPDATE members SET floor_tier = 'Gold', floor_until = '2025-12-31' WHERE member_id = 'M0006'")
    ok(shop, "tiers", "recalc", "--as-of", "2026-02-01")  # lapsed: the recalc clears it
    assert member(shop, "M0006").floor_tier is None
    passes(shop)
