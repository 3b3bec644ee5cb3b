"""One rule for ids (issue 15, SPEC §4): a member id is trimmed and matched without regard to case
everywhere; ids are NFC and refuse characters that render as nothing; names refuse line separators
and bidirectional marks. Each test checks what a shop owner would see: members, balances, purchases,
exit codes and the one error line."""

from __future__ import annotations

import json
import unicodedata

import pytest

from tests.db import connect, count, entries, member, members, purchases, rows
from tests.helpers import undo_chain
from loyalty_cli.store import Store
from loyalty_cli.store.migrations import MIGRATIONS

# Characters that render as nothing (issue 15): appended to an id they made a new purchase or member.
INVISIBLE = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u0301", "\u200b", "\u200c", "\u200d", "\u200e",
             "\u200f", "\u202a", "\u202e", "\u2060", "\u2066", "\ufeff", "\u180e", "\u034f", "\u17b4", "\u17b5",
             "\ufe0f", "\U000e0100", "\U000e0041", "\u00ad", "\u061c", "\u2028", "\u2029"]
NFC = unicodedata.normalize("NFC", "Té-1")
NFD = unicodedata.normalize("NFD", "Té-1")
assert NFC != NFD


@pytest.fixture
def ok(run):
    def invoke(*args):
        r = run(*args)
        assert r.exit_code == 0, (args, r.stdout, r.stderr)
        return r
    return invoke


@pytest.fixture
def shop(ok):
    """A database with a signup bonus of 50, M0042 (Ana) and M0001 (Bo), and a reward COFFEE."""
    ok("init")
    ok("program", "set", "earn.signup_bonus", "50")
    ok("members", "add", "--id", "M0042", "--name", "Ana", "--joined", "2026-01-01")
    ok("members", "add", "--id", "M0001", "--name", "Bo", "--joined", "2026-01-01")
    ok("rewards", "add", "COFFEE", "--name", "Coffee", "--cost", "10")
    return ok


def balance(run, member):
    return json.loads(run("points", "balance", member, "--json").stdout)["balance"]


def test_show_finds_a_member_typed_in_another_case_and_trimmed(run, shop):
    r = run("members", "show", "  m0042 ", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["member_id"] == "M0042"


def test_add_refuses_an_id_differing_only_by_case_so_no_second_signup_bonus(run, shop, db):
    r = run("members", "add", "--id", "m0042", "--name", "Ana again")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("Error: member M0042 already exists")
    assert [m.member_id for m in members(db) if m.member_id.lower() == "m0042"] == ["M0042"]
    assert sum(e.points for e in entries(db, kind="signup")) == 100  # Ana's and Bo's only


def test_unicode_case_folding_not_only_ascii(run, shop):
    shop("members", "add", "--id", "ÖZTÜRK-1", "--name", "Öz")
    shop("members", "add", "--id", "STRASSE", "--name", "Gasse")
    assert json.loads(run("members", "show", "öztürk-1", "--json").stdout)["member_id"] == "ÖZTÜRK-1"
    assert json.loads(run("members", "show", "straße", "--json").stdout)["member_id"] == "STRASSE"
    assert run("members", "add", "--id", "Straße", "--name", "again").exit_code == 1


@pytest.mark.parametrize("args", [
    ("points", "award", "m0042", "7", "--reason", "goodwill"),
    ("points", "adjust", "m0042", "7", "--reason", "fix"),
    ("purchases", "add", "m0042", "7.00", "--id", "R-1", "--at", "2026-02-01"),
    ("points", "transfer", "m0001", "m0042", "7", "--at", "2026-02-01"),
])
def test_counter_commands_credit_the_stored_member(run, shop, db, args):
    assert run(*args).exit_code == 0
    assert balance(run, "M0042") == 57
    assert {e.member_id for e in entries(db) if e.member_id.lower() == "m0042"} == {"M0042"}


def test_every_command_taking_a_member_id_finds_it_in_any_case(run, shop, db):
    shop("points", "award", "m0042", "100", "--reason", "goodwill", "--at", "2026-02-01")
    shop("points", "redeem", "m0042", "--reward", "coffee", "--at", "2026-02-02")
    assert [v["member_id"] for v in json.loads(run("vouchers", "list", "--member", "m0042", "--json").stdout)] == ["M0042"]
    assert json.loads(run("points", "history", "m0042", "--json").stdout)[-1]["kind"] == "redeem"
    shop("tiers", "set", "m0042", "Gold", "--at", "2026-02-03")
    assert json.loads(run("tiers", "history", "m0042", "--json").stdout)[-1]["to"] == "Gold"
    shop("feedback", "add", "m0042", "9")
    shop("members", "edit", "m0042", "--name", "Ana Li")
    assert [(m.name, m.tier) for m in rows(db, "members", member_id="M0042")] == [("Ana Li", "Gold")]
    assert [f.member_id for f in rows(db, "feedback")] == ["M0042"]
    shop("members", "add", "--id", "N1", "--name", "New", "--referred-by", "m0042")
    assert member(db, "N1").referred_by == "M0042"
    assert run("points", "transfer", "m0042", "M0042", "5").exit_code == 1  # the same member
    shop("members", "erase", "m0042", "--yes")
    assert (member(db, "M0042").name, member(db, "M0042").erased_at is not None) == (None, True)


def test_purchases_import_attaches_an_id_in_another_case_to_the_member(run, shop, db, tmp_path):
    f = tmp_path / "sales.csv"
    f.write_text("purchase_id,member_id,purchased_at,amount\nP1,m0042,2026-02-01,10.00\nP2, M0042 ,2026-02-02,5.00\n")
    assert run("purchases", "import", f).exit_code == 0
    assert [(p.purchase_id, p.member_id) for p in purchases(db)] == [("P1", "M0042"), ("P2", "M0042")]
    assert balance(run, "M0042") == 65
    again = run("purchases", "import", f, "--json")  # the same rows are duplicates, not "different data"
    assert again.exit_code == 0 and json.loads(again.stdout)["duplicates"] == 2


def test_create_members_enrols_two_spellings_in_one_file_once(run, shop, db, tmp_path):
    f = tmp_path / "sales.csv"
    f.write_text("purchase_id,member_id,purchased_at,amount\nP1,new-7,2026-02-03,10.00\nP2,NEW-7,2026-02-01,5.00\n")
    r = run("purchases", "import", f, "--create-members", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["members_created"] == 1
    assert [(m.member_id, m.joined_on) for m in members(db) if m.member_id.lower() == "new-7"] == [("new-7", "2026-02-01")]
    assert {p.member_id for p in purchases(db)} == {"new-7"}
    assert balance(run, "NEW-7") == 50 + 15


def test_members_import_updates_the_member_an_id_in_another_case_names(run, shop, db, tmp_path):
    f = tmp_path / "members.csv"
    f.write_text("member_id,name,email,referred_by\nm0042,Ana Li,ana@shop.example,\nN2,Nia,,m0001\n")
    r = run("members", "import", f, "--json")
    assert r.exit_code == 0, r.stderr
    assert [(m.member_id, m.name, m.email) for m in members(db)
            if m.member_id.lower() == "m0042"] == [("M0042", "Ana Li", "ana@shop.example")]
    assert member(db, "N2").referred_by == "M0001"


def _legacy_pair(db):
    """Two members differing only by case, as a database made before the rule may hold."""
    with connect(db) as conn:
        conn.execute("INSERT INTO members (member_id, name, joined_on, tier, tier_since, member_key) "
                     "VALUES ('m0042', 'Other', '2026-01-01', 'Bronze', '2026-01-01', 'm0042')")
        undo_chain(conn)  # made before the chain too: opening it extends a chain over both
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    Store.open(db).close()


def test_an_old_pair_differing_only_by_case_is_refused_as_ambiguous_and_reported(run, shop, db, tmp_path):
    _legacy_pair(db)
    r = run("points", "award", "M0042", "5", "--reason", "x")
    assert r.exit_code == 1 and r.stdout == ""
    assert "ambiguous" in r.stderr and "M0042 and m0042" in r.stderr and len(r.stderr.splitlines()) == 1
    assert run("members", "show", "m0042").exit_code == 1
    f = tmp_path / "sales.csv"
    f.write_text("purchase_id,member_id,purchased_at,amount\nP1,M0001,2026-02-01,1.00\nP2,M0042,2026-02-01,1.00\n")
    r = run("purchases", "import", f)
    assert r.exit_code == 3 and "line 3" in r.stderr and "ambiguous" in r.stderr
    assert count(db, "purchases") == 0
    check = run("db", "check", "--json")
    assert check.exit_code == 4
    problems = json.loads(check.stdout)["problems"]
    assert [p["check"] for p in problems] == ["member_ids"] and "M0042 and m0042" in problems[0]["message"]
    assert sum(m.member_id.lower() == "m0042" for m in members(db)) == 2  # nothing merged


@pytest.mark.sqlite_only  # db backup / db restore of a SQLite file
def test_a_backup_holding_an_old_pair_can_still_be_restored(run, shop, db, tmp_path):
    _legacy_pair(db)
    backup = tmp_path / "backup.db"
    assert run("db", "backup", backup).exit_code == 0
    r = run("db", "restore", backup, "--yes")
    assert r.exit_code == 0, r.stderr


@pytest.mark.sqlite_only  # no PostgreSQL database predates m006 (that backend starts at the latest schema)
def test_a_database_from_before_the_key_column_gets_it_when_opened(run, shop, db):
    with connect(db) as conn:
        # As such a database is: without the columns later migrations added to members after the key
        # (m013's, run again on opening), so that the key column takes its place before them.
        from tests.helpers import undo_member_hygiene

        undo_member_hygiene(conn)
        conn.execute("DROP INDEX members_key")
        conn.execute("ALTER TABLE members DROP COLUMN member_key")
        conn.execute("DELETE FROM migrations WHERE name = 'm006_member_key'")
        conn.execute("PRAGMA user_version = 5")
    assert json.loads(run("members", "show", "m0042", "--json").stdout)["member_id"] == "M0042"
    r = run("db", "check"); assert r.exit_code == 0, r.stderr


# -- invisible and unnormalised ids ---------------------------------------------------------------
@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_receipt_id_with_an_invisible_suffix_is_refused_in_an_import_and_at_the_counter(run, shop, db, tmp_path, char):
    f = tmp_path / "sales.csv"
    f.write_text(f"purchase_id,member_id,purchased_at,amount\nT-1,M0042,2026-02-01,10.00\nT-1{char},M0042,2026-02-01,10.00\n",
                 encoding="utf-8")
    r = run("purchases", "import", f, "--json")
    if f"T-1{char}".strip() == "T-1":  # a line separator at the end is trimmed: the same receipt, a duplicate
        assert r.exit_code == 0 and json.loads(r.stdout)["duplicates"] == 1
        assert run("purchases", "add", "M0042", "10.00", "--id", f"T-1{char}").exit_code == 1
        assert balance(run, "M0042") == 60
        return
    assert r.exit_code == 3 and "line 3" in r.stderr, r.stderr
    assert count(db, "purchases") == 0
    r = run("purchases", "add", "M0042", "10.00", "--id", f"T-1{char}")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith("Error: --id")
    assert balance(run, "M0042") == 50


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_member_id_with_an_invisible_suffix_is_refused(run, shop, db, tmp_path, char):
    r = run("members", "add", "--id", f"M0042{char}", "--name", "Twin")
    assert r.exit_code == (1 if f"M0042{char}".strip() == "M0042" else 2) and r.stdout == ""  # trimmed: M0042 exists
    f = tmp_path / "members.csv"
    f.write_text(f"member_id,name\nM7,Seven\nM7{char},Twin\n", encoding="utf-8")
    r = run("members", "import", f)
    if f"M7{char}".strip() == "M7":  # trimmed: the same member, renamed
        assert r.exit_code == 0 and member(db, "M7").name == "Twin"
        return
    assert r.exit_code == 3 and "line 3" in r.stderr
    assert count(db, "members") == 2


def test_nfc_and_nfd_receipt_ids_are_one_purchase_in_an_import(run, shop, db, tmp_path):
    f = tmp_path / "sales.csv"
    f.write_text(f"purchase_id,member_id,purchased_at,amount\n{NFC},M0042,2026-02-01,10.00\n{NFD},M0042,2026-02-01,10.00\n",
                 encoding="utf-8")
    r = run("purchases", "import", f, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["imported"] == 1 and json.loads(r.stdout)["duplicates"] == 1
    assert [p.purchase_id for p in purchases(db)] == [NFC]
    assert balance(run, "M0042") == 60


def test_nfc_and_nfd_receipt_ids_are_one_purchase_at_the_counter(run, shop, db):
    assert run("purchases", "add", "M0042", "10.00", "--id", NFD, "--at", "2026-02-01").exit_code == 0
    r = run("purchases", "add", "M0042", "10.00", "--id", NFC, "--at", "2026-02-01")
    assert r.exit_code == 1 and "already recorded" in r.stderr
    assert [p.purchase_id for p in purchases(db)] == [NFC]
    assert run("purchases", "refund", NFD, "--at", "2026-02-02").exit_code == 0  # found however it is spelled
    assert balance(run, "M0042") == 50


def test_nfc_and_nfd_member_ids_are_one_member(run, shop, db, tmp_path):
    zoe_nfd = unicodedata.normalize("NFD", "Zoë")
    shop("members", "add", "--id", zoe_nfd, "--name", "Zoë")
    assert [m.member_id for m in members(db) if m.member_id.lower().startswith("zo")] == ["Zoë"]
    assert run("members", "add", "--id", "ZOË", "--name", "again").exit_code == 1
    f = tmp_path / "sales.csv"
    f.write_text(f"purchase_id,member_id,purchased_at,amount\nZ1,{zoe_nfd},2026-02-01,3.00\n", encoding="utf-8")
    assert run("purchases", "import", f).exit_code == 0
    assert balance(run, "zoë") == 53


def test_ids_in_scripts_written_with_marks_are_welcome(run, shop, db):
    shop("members", "add", "--id", "नमस्ते-1", "--name", "Devi")
    shop("purchases", "add", "नमस्ते-1", "4.00", "--id", "रसीद-१", "--category", "किताब")
    assert [(p.purchase_id, p.category) for p in purchases(db)] == [("रसीद-१", "किताब")]


def test_a_category_with_an_invisible_suffix_is_refused(run, shop):
    r = run("purchases", "add", "M0042", "4.00", "--category", "tobacco\u3164")
    assert r.exit_code == 2 and "U+3164" in r.stderr


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u200e", "\u200f", "\u061c", "\u202a", "\u202e", "\u2066", "\u2069"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_names_refuse_line_separators_and_bidi_marks(run, shop, db, tmp_path, char):
    assert run("members", "add", "--name", f"Ana{char}Li").exit_code == 2
    assert run("members", "edit", "M0042", "--name", f"Ana{char}Li").exit_code == 2
    f = tmp_path / "members.csv"
    f.write_text(f"member_id,name\nM9,Ana{char}Li\n", encoding="utf-8")
    r = run("members", "import", f)
    assert r.exit_code == 3 and "line 2" in r.stderr
    assert member(db, "M0042").name == "Ana"


def test_names_keep_zwj_and_zwnj_and_are_stored_nfc(run, shop, db):
    shop("members", "add", "--id", "K1", "--name", "क्\u200dष")           # ZWJ: a Devanagari conjunct
    shop("members", "add", "--id", "F1", "--name", "می\u200cخواهم")        # ZWNJ: Persian
    shop("members", "add", "--id", "Z1", "--name", unicodedata.normalize("NFD", "Zoë"))
    assert [(m.member_id, m.name) for m in members(db) if m.member_id in ("K1", "F1", "Z1")] == [
        ("F1", "می\u200cخواهم"), ("K1", "क्\u200dष"), ("Z1", "Zoë")]


# -- reward and voucher codes ---------------------------------------------------------------------
def test_reward_and_voucher_codes_match_without_regard_to_case(run, shop, db):
    r = run("rewards", "add", "coffee", "--name", "Another", "--cost", "5")
    assert r.exit_code == 1 and "reward COFFEE already exists" in r.stderr
    shop("points", "award", "M0042", "100", "--reason", "goodwill")
    code = json.loads(run("points", "redeem", "M0042", "--reward", "Coffee", "--json").stdout)["voucher"]
    assert [v.reward_code for v in rows(db, "vouchers")] == ["COFFEE"]
    shop("vouchers", "use", f" {code.lower()} ")
    assert [v.status for v in rows(db, "vouchers")] == ["used"]
    assert run("rewards", "add", "TEA\u200b", "--name", "Tea", "--cost", "5").exit_code == 2


def test_a_programme_category_matches_purchases_however_it_is_normalised(run, shop, db, tmp_path):
    toml = tmp_path / "program.toml"
    toml.write_text('[earn]\n[[earn.categories]]\nname = "' + unicodedata.normalize("NFD", "Café") + '"\nmultiplier = "0"\n',
                    encoding="utf-8")
    shop("program", "load", toml, "--from", "2026-01-01")
    shop("purchases", "add", "M0042", "10.00", "--id", "C1", "--at", "2026-02-01", "--category", "café")
    assert [(p.category, p.points) for p in purchases(db)] == [("café", 0)]
