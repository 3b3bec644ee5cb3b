"""`loyalty program simulate` (issue 19): a proposed programme tried on the shop's own history,
side by side with today's rules, in scratch databases; the shop's database is only read.

The hand-built shops below are small enough to check by hand (SPEC §6 earning: points =
round_down(amount × points_per_unit × multipliers); the history is dated in 2026, before today).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from pathlib import Path

import pytest

from tests import backend
from tests.db import raw
from tests.helpers import fresh_db, ok, one_error_line, run

pytestmark = pytest.mark.any_backend  # shops made by fresh_db: PostgreSQL too

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"

PLAIN = """
[earn]
points_per_unit = "{ppu}"
signup_bonus = 0
[expiry]
months = 0
[tiers]
levels = [{{ name = "Bronze", min = "0", multiplier = "1" }}]
"""

GOLD = """
[earn]
signup_bonus = 0
[expiry]
months = 0
[tiers]
hold_months = 12
levels = [
  {{ name = "Bronze", min = "0", multiplier = "1" }},
  {{ name = "Gold", min = "{gold}", multiplier = "1.5" }},
]
"""


def simulate(db, proposal, *args) -> dict:
    return json.loads(ok(db, "program", "simulate", proposal, *args, "--json").stdout)


def write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def all_zero(value) -> bool:
    """Every number in a change document is 0 (shares 0.0; None where a share has no total)."""
    if isinstance(value, dict):
        return all(all_zero(v) for v in value.values())
    if isinstance(value, list):
        return all(all_zero(v) for v in value)
    if isinstance(value, str):
        return value.lstrip("-") in ("0", "0.00")
    return value is None or value == 0


def shop(tmp_path, programme: str, members: list[str], till: str) -> Path:
    """A shop with `programme` loaded, members joined 2026-01-01, and the till's CSV imported."""
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "-q", "program", "load", write(tmp_path, "now.toml", programme))
    for mid in members:
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--email", f"{mid.lower()}@shop.example",
           "--phone", "+44 7700 900123", "--joined", "2026-01-01")
    ok(db, "-q", "purchases", "import", write(tmp_path, "till.csv", "purchase_id,member_id,purchased_at,amount,kind,refund_of\n"
                                                + till))
    return db


@pytest.fixture
def sample_shop(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "-q", "program", "load", SAMPLE / "program.toml")
    ok(db, "-q", "members", "import", SAMPLE / "members.csv")
    ok(db, "-q", "purchases", "import", SAMPLE / "purchases.csv")
    return db


# -- identical proposal: zero change -------------------------------------------------------------
def test_a_proposal_identical_to_the_programme_changes_nothing_on_the_sample_shop(sample_shop):
    doc = simulate(sample_shop, SAMPLE / "program.toml")
    assert doc["period"] == {"from": "2025-11-01", "to": "2026-10-31"}  # the twelve months up to the last purchase
    assert doc["history"]["sales"] > 4000 and doc["history"]["members"] == 300
    assert all_zero(doc["change"]), doc["change"]
    assert doc["baseline"] == doc["proposed"]
    assert doc["tier_moves"] == {"up": 0, "down": 0}
    assert all(s["points_issued"]["change"] == 0 for s in doc["segments"])
    # The baseline is the shop's own history replayed: what its sales really earned in the period.
    real = dict(raw(sample_shop, "SELECT CASE WHEN kind = 'bonus' THEN note ELSE kind END, sum(points) FROM ledger "
                                 "WHERE at >= '2025-11-01' AND at <= '2026-10-31T23:59:59' AND points > 0 "
                                 "GROUP BY 1"))
    assert doc["baseline"]["points_issued_by_rule"] == real
    assert doc["baseline"]["points_issued"] == 145_769


def generated_shop(tmp_path) -> Path:
    """A seeded history with every kind of event the replay handles: referrals, birthdays, sales and
    partial refunds, redemptions (points and a reward's voucher, one cancelled), awards, adjustments
    both ways, transfers, and a recalc run by the shop."""
    rng = random.Random(19)
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "-q", "program", "load", SAMPLE / "program.toml")
    members = io.StringIO()
    w = csv.writer(members)
    w.writerow(["member_id", "name", "birthday", "joined_on", "referred_by"])
    for i in range(1, 41):
        w.writerow([f"G{i:02d}", f"Member {i}", f"1980-{rng.randint(1, 12):02d}-15",
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", f"G{i - 1:02d}" if i % 7 == 0 else ""])
    ok(db, "-q", "members", "import", write(tmp_path, "members.csv", members.getvalue()))
    till = io.StringIO()
    w = csv.writer(till)
    w.writerow(["purchase_id", "member_id", "purchased_at", "amount", "category", "kind", "refund_of"])
    sales = []
    days = sorted(f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T{rng.randint(8, 19):02d}:00:00"
                  for _ in range(600))  # a till exports its day in order
    for n, day in enumerate(days, 1):
        mid = f"G{rng.randint(1, 40):02d}"
        amount = rng.randint(100, 30000)
        w.writerow([f"S{n:03d}", mid, day, f"{amount // 100}.{amount % 100:02d}",
                    rng.choice(["grocery", "bakery", "gifts", "tobacco"]), "sale", ""])
        sales.append((f"S{n:03d}", mid, day, amount))
    for n, (pid, mid, day, amount) in enumerate(rng.sample(sales, 40), 1):
        part = rng.randint(1, amount)
        refund_day = max(day, "2026-10-29T12:00:00")  # refunds come back at the end of October
        w.writerow([f"R{n}", mid, refund_day, f"{part // 100}.{part % 100:02d}", "", "refund", pid])
    ok(db, "-q", "purchases", "import", write(tmp_path, "till.csv", till.getvalue()))
    ok(db, "-q", "rewards", "add", "MUG", "--name", "Mug", "--cost", "100")
    ok(db, "-q", "tiers", "recalc", "--as-of", "2026-10-31")
    for i in range(1, 41, 3):
        mid = f"G{i:02d}"
        ok(db, "-q", "points", "award", mid, "25", "--reason", "goodwill", "--at", "2026-11-02")
        run(db, "-q", "points", "redeem", mid, "120", "--at", "2026-11-03")
        run(db, "-q", "points", "transfer", mid, f"G{i + 1:02d}", "30", "--at", "2026-11-04")
        run(db, "-q", "points", "adjust", mid, "-10", "--reason", "typo", "--at", "2026-11-05")
    voucher = json.loads(ok(db, "points", "redeem", "G02", "--reward", "MUG", "--at", "2026-11-06", "--json").stdout)
    ok(db, "-q", "vouchers", "cancel", voucher["voucher"], "--at", "2026-11-07")
    return db


def test_a_proposal_identical_to_the_programme_changes_nothing_on_a_generated_history(tmp_path):
    db = generated_shop(tmp_path)
    doc = simulate(db, SAMPLE / "program.toml", "--from", "2026-01-01", "--to", "2026-11-30")
    assert all_zero(doc["change"]), doc["change"]
    assert doc["baseline"]["points_redeemed"] > 0 and doc["baseline"]["points_reversed"] > 0
    assert doc["baseline"]["redemptions_refused"] == 0  # today's rules are the rules they were made under
    real = dict(raw(db, "SELECT CASE WHEN kind = 'bonus' THEN note ELSE kind END, sum(points) FROM ledger "
                        "WHERE at >= '2026-01-01' AND points > 0 AND kind NOT IN ('transfer_in', 'voucher_cancel') "
                        "GROUP BY 1"))
    real["manual"] = real.pop("award", 0) + real.pop("adjust", 0)
    assert doc["baseline"]["points_issued_by_rule"] == real
    assert doc["baseline"]["points_redeemed"] == -raw(db, "SELECT sum(points) FROM ledger WHERE kind = 'redeem'")[0][0]


# -- the worked examples ---------------------------------------------------------------------------
# Whole amounts, so that doubling points_per_unit doubles every sale's points exactly:
# M1 10.00 + 25.00 (refunded 5.00 later) and M2 7.00 + 40.00 earn 10 + 25 + 7 + 40 = 82 points at
# 1 a unit; the refund of 5.00 of 25.00 reverses 25 × 5/25 = 5. At 2 a unit: 164 and 10.
DOUBLE_TILL = """P1,M1,2026-02-01T10:00,10.00,sale,
P2,M1,2026-03-01T10:00,25.00,sale,
P3,M2,2026-03-05T11:00,7.00,sale,
P4,M2,2026-04-01T12:00,40.00,sale,
R1,M1,2026-04-02T09:00,5.00,refund,P2
"""


def test_doubling_points_per_unit_exactly_doubles_the_points_issued_on_a_hand_built_history(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "M2"], DOUBLE_TILL)
    doc = simulate(db, write(tmp_path, "double.toml", PLAIN.format(ppu="2")), "--from", "2026-01-01")
    assert doc["period"] == {"from": "2026-01-01", "to": "2026-04-02"}
    assert doc["history"] == {"members": 2, "sales": 4, "refunds": 1, "net_sales": "77.00"}
    base, prop = doc["baseline"], doc["proposed"]
    assert (base["points_issued"], prop["points_issued"]) == (82, 164)
    assert base["points_issued_by_rule"] == {"earn": 82} and prop["points_issued_by_rule"] == {"earn": 164}
    assert (base["points_reversed"], prop["points_reversed"]) == (5, 10)
    assert (base["outstanding_points"], prop["outstanding_points"]) == (77, 154)
    assert (base["liability"], prop["liability"], doc["change"]["liability"]) == ("0.77", "1.54", "0.77")
    assert doc["change"]["points_issued"] == 82
    # points cost: (issued − reversed) × 0.01 over net sales 77.00: 0.77/77.00 = 1%, then 2%
    assert (base["points_cost_share"], prop["points_cost_share"]) == (0.01, 0.02)


# Gold from 1,500 today; the proposal raises it to 2,000. M1 (1,200) never reaches Gold; M2 (1,600)
# and M4 (1,800) reach Gold today but not under the proposal; M3 (2,500) is Gold either way.
GOLD_TILL = """A1,M1,2026-02-01T10:00,1200.00,sale,
B1,M2,2026-02-01T10:00,900.00,sale,
B2,M2,2026-03-01T10:00,700.00,sale,
B3,M2,2026-04-01T10:00,100.00,sale,
C1,M3,2026-02-01T10:00,2500.00,sale,
C2,M3,2026-03-01T10:00,100.00,sale,
D1,M4,2026-02-01T10:00,1800.00,sale,
D2,M4,2026-05-01T10:00,100.00,sale,
"""


def test_raising_the_gold_threshold_moves_the_members_between_the_thresholds_down(tmp_path):
    db = shop(tmp_path, GOLD.format(gold="1500"), ["M1", "M2", "M3", "M4"], GOLD_TILL)
    moves = tmp_path / "moves.csv"
    doc = simulate(db, write(tmp_path, "gold.toml", GOLD.format(gold="2000")), "--from", "2026-01-01",
                   "--members", moves)
    assert doc["baseline"]["tiers"] == {"Bronze": 1, "Gold": 3}
    assert doc["proposed"]["tiers"] == {"Bronze": 3, "Gold": 1}
    assert doc["tier_moves"] == {"up": 0, "down": 2}
    with open(moves, newline="") as f:
        rows = {r["member_id"]: r for r in csv.DictReader(f)}
    down = sorted(mid for mid, r in rows.items() if (r["tier_baseline"], r["tier_proposed"]) == ("Gold", "Bronze"))
    assert down == ["M2", "M4"]
    # the sale after reaching Gold earns the tier bonus today (100 × 1.5: 50 more), not under the proposal
    assert doc["baseline"]["points_issued_by_rule"]["tier:Gold"] == 150
    assert doc["proposed"]["points_issued_by_rule"]["tier:Gold"] == 50
    assert rows["M2"]["points_issued_change"] == "-50" and rows["M4"]["points_issued_change"] == "-50"


def test_a_redemption_the_proposal_cannot_cover_is_counted_as_refused_not_clamped(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "M2"], "P1,M1,2026-02-01T10:00,100.00,sale,\n"
                                                            "P2,M2,2026-02-01T10:00,100.00,sale,\n")
    ok(db, "-q", "points", "redeem", "M1", "80", "--at", "2026-03-01")
    ok(db, "-q", "points", "redeem", "M2", "40", "--at", "2026-03-01")
    moves = tmp_path / "moves.csv"
    doc = simulate(db, write(tmp_path, "half.toml", PLAIN.format(ppu="0.5")), "--from", "2026-01-01",
                   "--to", "2026-03-31", "--members", moves)
    base, prop = doc["baseline"], doc["proposed"]
    assert (base["redemptions_refused"], base["points_redeemed"]) == (0, 120)
    # At half a point per unit M1 has 50 points: the redemption of 80 would have been refused (not
    # clamped to 50); M2's 40 still fits.
    assert (prop["redemptions_refused"], prop["points_refused"], prop["points_redeemed"]) == (1, 80, 40)
    assert (base["outstanding_points"], prop["outstanding_points"]) == (20 + 60, 50 + 10)
    with open(moves, newline="") as f:
        rows = {r["member_id"]: r for r in csv.DictReader(f)}
    assert (rows["M1"]["redemptions_refused_proposed"], rows["M1"]["balance_proposed"]) == ("1", "50")
    assert rows["M2"]["redemptions_refused_proposed"] == "0"


# -- the shop's database is only read --------------------------------------------------------------
def snapshot(db) -> object:
    """SQLite: the sha256 of the database file and of its -wal (a missing -wal counts as empty);
    PostgreSQL: every table's rows."""
    if backend.postgres():
        tables = ("members", "purchases", "ledger", "lots", "lot_uses", "tier_changes", "program_versions",
                  "recalc_runs", "chain", "settings", "member_totals", "daily_sales", "daily_points")
        return {t: raw(db, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
    out = {}
    for suffix in ("", "-wal"):
        path = Path(f"{db}{suffix}")
        out[suffix] = hashlib.sha256(path.read_bytes() if path.exists() else b"").hexdigest()
    return out


def test_the_shops_database_is_byte_identical_after_a_simulation(tmp_path):
    db = shop(tmp_path, GOLD.format(gold="1500"), ["M1", "M2", "M3", "M4"], GOLD_TILL)
    before = snapshot(db)
    simulate(db, write(tmp_path, "gold.toml", GOLD.format(gold="2000")))
    ok(db, "program", "simulate", tmp_path / "gold.toml", "--members", tmp_path / "m.csv")
    assert snapshot(db) == before
    assert not list(Path(tmp_path).glob("**/loyalty-simulate-*"))


@pytest.mark.sqlite_only
def test_a_read_only_database_file_can_be_simulated(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "M2"], DOUBLE_TILL)
    before = snapshot(db)
    Path(db).chmod(0o400)
    try:
        doc = simulate(db, write(tmp_path, "double.toml", PLAIN.format(ppu="2")))
    finally:
        Path(db).chmod(0o600)
    assert doc["change"]["points_issued"] == 82
    assert snapshot(db) == before


# -- refusals ---------------------------------------------------------------------------------------
BAD_PROPOSALS = {
    "not-toml.toml": "[earn\npoints_per_unit = 2\n",
    "unknown-key.toml": "[earn]\npoints_per_unit = \"1\"\nbonus_points = 3\n",
    "negative.toml": "[earn]\npoints_per_unit = \"-1\"\n",
    "currency.toml": "currency_decimals = 3\n",
    "empty.toml": "\n",
}


@pytest.mark.parametrize("name", sorted(BAD_PROPOSALS))
def test_a_bad_proposal_gets_the_errors_of_program_load_exit_3_and_changes_nothing(tmp_path, name):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "M2"], DOUBLE_TILL)
    bad = write(tmp_path, name, BAD_PROPOSALS[name])
    before = snapshot(db)
    simulated = run(db, "program", "simulate", bad)
    loaded = run(db, "program", "load", bad)
    assert (simulated.exit_code, loaded.exit_code) == (3, 3)
    assert one_error_line(simulated) == one_error_line(loaded)
    assert snapshot(db) == before


def test_a_proposal_that_is_not_there_or_not_utf8_is_exit_3(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1"], "P1,M1,2026-02-01T10:00,10.00,sale,\n")
    assert "programme file" in one_error_line(run(db, "program", "simulate", tmp_path / "missing.toml"))
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[earn]\n# Café\n'.encode("latin-1"))
    result = run(db, "program", "simulate", latin)
    assert result.exit_code == 3 and "is not UTF-8 text" in one_error_line(result)


def test_a_shop_without_purchases_has_nothing_to_simulate_exit_1(tmp_path):
    db = fresh_db(tmp_path / "shop.db")
    result = run(db, "program", "simulate", SAMPLE / "program.toml")
    assert result.exit_code == 1
    assert one_error_line(result) == ("Error: there is nothing to simulate: no sale or refund is recorded yet "
                                      "(import the till's sales first: loyalty purchases import FILE)")
    (tmp_path / "other").mkdir()
    db = shop(tmp_path / "other", PLAIN.format(ppu="1"), ["M1"], "P1,M1,2026-02-01T10:00,10.00,sale,\n")
    result = run(db, "program", "simulate", SAMPLE / "program.toml", "--from", "2026-03-01", "--to", "2026-03-31")
    assert result.exit_code == 1
    assert one_error_line(result) == ("Error: there is nothing to simulate: no sale or refund is dated from "
                                      "2026-03-01 to 2026-03-31 (the last one is dated 2026-02-01)")


def test_a_period_that_ends_before_it_starts_is_a_usage_error(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1"], "P1,M1,2026-02-01T10:00,10.00,sale,\n")
    result = run(db, "program", "simulate", SAMPLE / "program.toml", "--from", "2026-03-01", "--to", "2026-02-01")
    assert result.exit_code == 2
    assert "--from 2026-03-01 is after --to 2026-02-01" in result.stderr


# -- outputs ----------------------------------------------------------------------------------------
def test_members_csv_is_masked_unless_show_pii_and_neutralises_formulas(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "=M2"], "P1,M1,2026-02-01T10:00,10.00,sale,\n"
                                                               "P2,=M2,2026-02-02T10:00,20.00,sale,\n")
    proposal = write(tmp_path, "double.toml", PLAIN.format(ppu="2"))
    masked, shown = tmp_path / "masked.csv", tmp_path / "shown.csv"
    result = ok(db, "program", "simulate", proposal, "--members", masked)
    assert f"wrote 2 members to {masked}" in result.stderr
    ok(db, "program", "simulate", proposal, "--members", shown, "--show-pii")
    masked_rows = list(csv.reader(open(masked, newline="")))
    shown_rows = list(csv.reader(open(shown, newline="")))
    assert masked_rows[0][:4] == ["member_id", "email_masked", "phone_masked", "segment"]
    assert shown_rows[0][:4] == ["member_id", "email", "phone", "segment"]
    assert masked_rows[1][:3] == ["'=M2", "'=***@shop.example", "********0123"]  # a formula neutralised
    assert shown_rows[1][:3] == ["'=M2", "'=m2@shop.example", "'+44 7700 900123"]
    assert masked_rows[2][:3] == ["M1", "m***@shop.example", "********0123"]
    assert shown_rows[2][:3] == ["M1", "m1@shop.example", "'+44 7700 900123"]
    assert shown_rows[2][6:9] == ["10", "20", "10"]  # points issued today, proposed, change
    assert (Path(masked).stat().st_mode & 0o777) == 0o600


def test_members_file_cannot_be_the_database(tmp_path):
    if backend.postgres():
        pytest.skip("a database file")
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1"], "P1,M1,2026-02-01T10:00,10.00,sale,\n")
    before = snapshot(db)
    result = run(db, "program", "simulate", SAMPLE / "program.toml", "--members", db)
    assert result.exit_code == 2 and "is the database" in one_error_line(result)
    assert snapshot(db) == before


def test_json_is_one_document_with_both_programmes_and_their_change(tmp_path):
    db = shop(tmp_path, PLAIN.format(ppu="1"), ["M1", "M2"], DOUBLE_TILL)
    doc = simulate(db, write(tmp_path, "double.toml", PLAIN.format(ppu="2")))
    assert set(doc) == {"period", "programmes", "history", "baseline", "proposed", "change", "tier_moves",
                        "segments", "sales_not_replayed"}
    figures = {"points_issued", "points_issued_by_rule", "points_reversed", "points_expired", "points_redeemed",
               "redemptions_refused", "points_refused", "other_debits_refused", "outstanding_points", "liability",
               "points_cost", "points_cost_share", "redemption_rate", "tiers"}
    assert set(doc["baseline"]) == set(doc["proposed"]) == set(doc["change"]) == figures
    assert doc["programmes"]["proposed"] == "double.toml"
    assert doc["programmes"]["baseline"].startswith("the programme in force on ")
    segment = doc["segments"][0]
    assert set(segment) == {"segment", "members", "points_issued", "moved_up", "moved_down"}
    assert set(segment["points_issued"]) == {"baseline", "proposed", "change"}
    assert sum(s["points_issued"]["change"] for s in doc["segments"]) == doc["change"]["points_issued"]


def test_the_table_fits_80_columns_and_says_what_changed(sample_shop, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    proposal = write(tmp_path, "richer.toml", (SAMPLE / "program.toml").read_text().replace(
        'points_per_unit = "1"', 'points_per_unit = "2"'))
    result = ok(sample_shop, "program", "simulate", proposal)
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    assert lines[0].startswith("period 2025-11-01 to 2026-10-31: ")
    earn = next(line for line in lines if line.startswith("issued: earn"))
    doc = simulate(sample_shop, proposal)
    base, prop = (doc[k]["points_issued_by_rule"]["earn"] for k in ("baseline", "proposed"))
    assert earn.split()[-3:] == [f"{base:,}", f"{prop:,}", f"+{prop - base:,}"]
    assert base == 95_699 and 2 * base <= prop <= 2 * base + doc["history"]["sales"]  # roughly double: rounding
    assert any(line.startswith("members who would move up a tier: ") for line in lines)
    assert "segment" in result.stdout and "champions" in result.stdout
    assert result.stderr == ""


def test_the_period_defaults_to_the_twelve_months_up_to_the_last_purchase():
    from loyalty_cli.simulate import period, schedule

    assert period("2026-10-31", None, None) == ("2025-11-01", "2026-10-31")
    assert period("2026-10-31", "2026-03-01", None) == ("2026-03-01", "2026-10-31")
    assert period("2026-10-31", None, "2026-02-28") == ("2025-03-01", "2026-02-28")
    # expiry on each month's first day and the last day; a recalc on the last run of each month the
    # shop ran one, and on the last day
    plan = [(kind, day) for _, _, kind, day in schedule("2026-01-15", "2026-03-10", ["2026-01-20", "2026-01-31",
                                                                                      "2026-03-02"])]
    assert plan == [("recalc", "2026-01-31"), ("expire", "2026-02-01"), ("expire", "2026-03-01"),
                    ("recalc", "2026-03-02"), ("expire", "2026-03-10"), ("recalc", "2026-03-10")]


def test_a_refund_in_the_period_never_takes_again_what_expired_of_its_sale_before_it(tmp_path):
    # P1's 100 points expire on 2026-02-10 and are written off on 2026-02-20, before the period; its
    # refund of 40.00 in the period reverses min(100 × 40/100, 100 − 100) = 0, not 40 of P2's 50.
    programme = PLAIN.format(ppu="1").replace("months = 0", 'months = 1\nround_to = "day"')
    db = shop(tmp_path, programme, ["M1"], "P1,M1,2026-01-10T10:00,100.00,sale,\n")
    ok(db, "-q", "points", "expire", "--as-of", "2026-02-20")
    ok(db, "-q", "purchases", "add", "M1", "50.00", "--id", "P2", "--at", "2026-03-05T10:00")
    ok(db, "-q", "purchases", "refund", "P1", "40.00", "--id", "R1", "--at", "2026-03-10T10:00")
    assert raw(db, "SELECT points FROM ledger WHERE kind = 'reversal'") == []
    doc = simulate(db, write(tmp_path, "same.toml", programme), "--from", "2026-03-01", "--to", "2026-03-31")
    assert doc["baseline"]["points_reversed"] == 0
    assert doc["baseline"]["outstanding_points"] == 50
    assert all_zero(doc["change"])


def test_a_tier_set_by_hand_in_the_period_is_set_again_in_both_replays(tmp_path):
    # M1 is made Gold by hand on 2026-03-01 (held through 2026-12-31): the sale after it earns the
    # Gold bonus (100 × 1.5: 50 more) in the shop, and so in both replays; the final recalc keeps the
    # floor.
    db = shop(tmp_path, GOLD.format(gold="1500"), ["M1"], "P1,M1,2026-02-01T10:00,10.00,sale,\n")
    ok(db, "-q", "tiers", "set", "M1", "Gold", "--until", "2026-12-31", "--at", "2026-03-01")
    ok(db, "-q", "purchases", "add", "M1", "100.00", "--id", "P2", "--at", "2026-03-05T10:00")
    doc = simulate(db, write(tmp_path, "same.toml", GOLD.format(gold="1500")), "--from", "2026-01-01")
    assert doc["baseline"]["points_issued_by_rule"] == {"earn": 110, "tier:Gold": 50}
    assert doc["baseline"]["tiers"] == {"Bronze": 0, "Gold": 1}
    assert all_zero(doc["change"])
