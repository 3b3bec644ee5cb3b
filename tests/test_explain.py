"""`purchases explain` (issue 19): a sale's points recomputed by the earning engine and shown step by
step, within 80 columns, agreeing with the ledger (and saying so when it does not)."""

from __future__ import annotations

import pytest

from tests.db import connect
from tests.helpers import as_json, guards_dropped, ok, one_error_line, run

PROGRAMME = """
[earn]
points_per_unit = "1"
birthday_multiplier = "2"
first_purchase_multiplier = "1.5"
stacking = "max"
[[earn.categories]]
name = "wine"
multiplier = "0.5"
[[campaigns]]
name = "spring"
from = "2026-03-01"
to = "2026-03-31"
multiplier = "3"
"""


@pytest.fixture
def shop(db, tmp_path):
    """The README's worked example: Ann (born in May) holds Gold (×1.5) and buys for 37.99 in May."""
    program = tmp_path / "program.toml"
    program.write_text(PROGRAMME)
    ok(db, "-q", "program", "load", program)
    ok(db, "-q", "members", "add", "--id", "A", "--name", "Ann", "--birthday", "1980-05-03", "--joined", "2026-01-01")
    ok(db, "-q", "purchases", "add", "A", "5.00", "--id", "P0", "--at", "2026-02-10")  # her first purchase
    ok(db, "-q", "tiers", "set", "A", "Gold", "--at", "2026-05-01")
    ok(db, "-q", "purchases", "add", "A", "37.99", "--id", "P1", "--at", "2026-05-10T12:00")
    return db


def test_the_readme_example_shows_each_step(shop):
    text = ok(shop, "purchases", "explain", "P1").stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0] == "sale P1 of A, 2026-05-10 12:00:00, amount 37.99"
    assert "programme    version #1, in force from 0001-01-01 (program.toml)" in lines
    assert "experiment   none running that day" in lines
    assert "base         37.99 × 1 point per unit = 37.99 → 37 (rounding down): earn 37" in lines
    assert "promotion    birthday ×2 (applies)" in lines
    assert "stacking     max: only the largest promotion applies" in lines
    assert "step         birthday: 37.99 × 2 = 75.98 → 75: bonus +38" in lines
    assert "tier bonus   tier:Gold: 75.98 × 1.5 = 113.97 → 113: bonus +38" in lines
    assert "total        113 points (each step rounded down from the exact product)" in lines
    assert any(line.startswith("ledger       #") and line.endswith(
        "#3 earn 37, #4 bonus birthday 38, #5 bonus tier:Gold 38: agrees") for line in lines), lines
    assert "lot          lot 2: 113 points, expires 2027-05-31; 113 left" in lines
    assert "refunds      none" in lines
    r = as_json(shop, "purchases", "explain", "P1")
    assert [(s["step"], s["rule"], s["exact"], s["total"], s["points"]) for s in r["steps"]] == [
        ("base", None, "37.99", 37, 37), ("promotion", "birthday", "75.98", 75, 38),
        ("tier", "tier:Gold", "113.97", 113, 38)]
    assert (r["points"], r["points_recorded"], r["agrees"], r["disagreements"]) == (113, 113, True, [])
    assert r["tier"] == "Gold" and r["birthday"] and not r["first_purchase"] and r["experiment"] is None


def test_the_first_purchase_category_and_a_campaign_under_max(shop):
    r = as_json(shop, "purchases", "explain", "P0")
    assert r["first_purchase"] and r["tier"] == "Bronze"
    assert [(s["rule"], s["points"]) for s in r["steps"]] == [(None, 5), ("first_purchase", 2)]  # 7.5 → 7
    ok(shop, "-q", "purchases", "add", "A", "10.00", "--id", "W1", "--at", "2026-03-10", "--category", "wine")
    # base 10 × 0.5 = 5; spring ×3 = 15; recorded after the Gold tier was set (in May), the March sale
    # earned at Gold (SPEC §6: the tier held when the sale is recorded): ×1.5 = 22.5 → 22
    r = as_json(shop, "purchases", "explain", "W1")
    assert r["steps"][0]["category_multiplier"] == "0.5" and r["steps"][0]["total"] == 5
    assert [(p["rule"], p["applies"]) for p in r["promotions"]] == [("campaign:spring", True)]
    assert [(s["rule"], s["total"]) for s in r["steps"]] == [(None, 5), ("campaign:spring", 15), ("tier:Gold", 22)]
    assert (r["tier"], r["tier_from"]) == ("Gold", "as the ledger's tier bonus names it")
    assert r["points"] == 22 and r["agrees"]


def test_refunds_and_what_each_reversed(shop):
    ok(shop, "-q", "purchases", "refund", "P1", "10.00", "--id", "R1", "--at", "2026-05-20")
    ok(shop, "-q", "purchases", "refund", "P1", "--id", "R2", "--at", "2026-05-21")
    r = as_json(shop, "purchases", "explain", "P1")
    assert [(f["refund_id"], f["amount"], f["points_reversed"]) for f in r["refunds"]] == [
        ("R1", "10.00", 29), ("R2", "27.99", 84)]  # floor(113 × 10.00 / 37.99) = 29; then all that is left
    text = ok(shop, "purchases", "explain", "R2").stdout  # a refund explains its sale
    assert text.splitlines()[1] == "(R2 is a refund of this sale: see refunds)"
    assert "refund       R1 on 2026-05-20, 10.00 (refunded so far 10.00): reversed 29 =" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_an_unknown_purchase_is_one_error_line(shop):
    result = run(shop, "purchases", "explain", "NOPE")
    assert result.exit_code == 1
    assert one_error_line(result) == "Error: purchase NOPE not found"


def test_a_ledger_that_disagrees_is_said(shop):
    with connect(shop) as conn, guards_dropped(conn, "purchases"):
        conn.execute("UPDATE purchases SET points = 200 WHERE purchase_id = 'P1'")
    r = as_json(shop, "purchases", "explain", "P1")
    assert not r["agrees"]
    assert r["disagreements"] == ["the purchase row records 200 points, the engine gives 113"]
    assert "DISAGREES    the purchase row records 200 points, the engine gives 113" in \
        ok(shop, "purchases", "explain", "P1").stdout


def test_a_variant_sale_says_its_experiment_and_group(db, tmp_path, monkeypatch):
    from loyalty_cli.cli import common
    from tests.test_experiments import group_of, shop as experiment_shop, start

    monkeypatch.setattr(common, "today", lambda: "2027-01-01")
    experiment_shop(db, tmp_path, members=20)
    assert start(db, tmp_path).exit_code == 0
    control, variant = group_of(20)
    ok(db, "-q", "purchases", "add", variant[0], "10.00", "--id", "V1", "--at", "2027-01-05", "--allow-future")
    ok(db, "-q", "purchases", "add", control[0], "10.00", "--id", "C1", "--at", "2027-01-05", "--allow-future")
    text = ok(db, "purchases", "explain", "V1").stdout
    assert 'experiment   dbl: variant group (share 0.5), earning under {"earn":' in text
    assert "base         10.00 × 2 points per unit = 10 → 20 (rounding down): earn 20" in text or \
        "10.00 × 2 points per unit = 20 → 20" in text
    assert "(experiment dbl): agrees" in text
    assert "experiment   dbl: control group: the programme as it is" in ok(db, "purchases", "explain", "C1").stdout
    r = as_json(db, "purchases", "explain", "V1")
    assert r["experiment"]["group"] == "variant" and r["ledger"][0]["experiment"] == "dbl" and r["agrees"]
