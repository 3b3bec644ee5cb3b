"""A member merged into another (`members merge DUP --into KEEP`) is an alias, not a member in its
own right: lists, counts, recalc and the reports that judge customers by their purchases treat the
pair as one customer.

The shop (1 point per 1.00; Gold from 100.00 of spend in a rolling 12 months, held 12 months):

    M1 (KEEP)  sale K1  50.00 on 2025-06-01
    M2 (DUP)   sale D1 100.00 on 2026-01-10 (Gold on the sale)
    M3         sale O1  20.00 on 2026-01-20
    merge M2 into M1 on 2026-02-01: M1 takes Gold until the next recalc

As of 2026-03-01 the pair is one customer: last sale 2026-01-10 (50 days before), two sales in the
year, 150.00 spent in it; M3 last bought 40 days before.
"""

from __future__ import annotations

import pytest

from tests.db import raw
from tests.helpers import as_json, fresh_db, ok, run

pytestmark = pytest.mark.any_backend

RULES = """
[earn]
points_per_unit = "1"
signup_bonus = 0
first_purchase_multiplier = "1"
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
levels = [
  { name = "Bronze", min = "0", multiplier = "1" },
  { name = "Gold", min = "100", multiplier = "1" },
]
"""


def shop(tmp_path, *member_options):
    """RULES and members M1, M2, M3 joined 2025-01-01 (`member_options`: more `members add` options,
    `{m}` in them the member's id in lower case)."""
    db = fresh_db(tmp_path / "shop.db")
    (tmp_path / "rules.toml").write_text(RULES)
    ok(db, "-q", "program", "load", tmp_path / "rules.toml")
    for mid in ("M1", "M2", "M3"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01",
           *(option.format(m=mid.lower()) for option in member_options))
    return db


@pytest.fixture
def db(tmp_path):
    db = shop(tmp_path, "--email", "{m}@shop.example", "--consent-email", "yes")
    ok(db, "-q", "purchases", "add", "M1", "50.00", "--id", "K1", "--at", "2025-06-01T10:00")
    ok(db, "-q", "purchases", "add", "M2", "100.00", "--id", "D1", "--at", "2026-01-10T10:00")
    ok(db, "-q", "purchases", "add", "M3", "20.00", "--id", "O1", "--at", "2026-01-20T10:00")
    ok(db, "-q", "members", "merge", "M2", "--into", "M1", "--at", "2026-02-01T10:00", "--yes")
    return db


def test_members_list_leaves_merged_members_out_unless_asked(db):
    assert [m["member_id"] for m in as_json(db, "members", "list")] == ["M1", "M3"]
    listed = as_json(db, "members", "list", "--merged")
    assert [(m["member_id"], m["merged_into"]) for m in listed] == [("M1", None), ("M2", "M1"), ("M3", None)]
    csv_text = ok(db, "members", "list", "--merged", "--csv").stdout
    assert csv_text.splitlines()[0].endswith(",merged_into")
    assert ok(db, "members", "list", "--csv").stdout.splitlines()[0] == \
        "member_id,name,email_masked,phone_masked,tier,balance,joined_on"


def test_rfm_and_segments_count_the_pair_as_one_customer(db):
    rows = {r["member_id"]: r for r in as_json(db, "report", "rfm", "--as-of", "2026-03-01")["members"]}
    assert sorted(rows) == ["M1", "M3"]
    assert (rows["M1"]["recency_days"], rows["M1"]["frequency"], rows["M1"]["monetary"]) == (50, 2, "150.00")
    assert as_json(db, "report", "segments", "--as-of", "2026-03-01")["members"] == 2
    # as of a day before the merge they were two members
    before = as_json(db, "report", "rfm", "--as-of", "2026-01-31")["members"]
    assert [r["member_id"] for r in before] == ["M1", "M2", "M3"]


def test_churn_judges_the_pair_by_its_latest_sale(db):
    # 45 days: M1 alone last bought 2025-06-01 (273 days), but the pair bought on 2026-01-10 (50 days)
    doc = as_json(db, "report", "churn", "--as-of", "2026-03-01", "--days", "45", "--show-pii")
    assert [(m["member_id"], m["last_sale"], m["days_since"], m["lifetime_spend"], m["email"])
            for m in doc["members"]] == [("M1", "2026-01-10", 50, "150.00", "m1@shop.example")]
    doc = as_json(db, "report", "churn", "--as-of", "2026-03-01", "--days", "30", "--sort", "spend")
    assert [(m["member_id"], m["days_since"]) for m in doc["members"]] == [("M1", 50), ("M3", 40)]
    doc = as_json(db, "report", "churn", "--as-of", "2026-03-01", "--days", "30", "--limit", "1")
    assert [m["member_id"] for m in doc["members"]] == ["M1"]  # by last sale, oldest first
    # the campaign list built on churn names the member kept, never the alias
    listed = ok(db, "campaign", "list", "churn-risk", "--channel", "email", "--days", "45", "--as-of", "2026-03-01",
                "--csv").stdout
    assert [line.split(",")[0] for line in listed.splitlines()[1:]] == ["M1"]


def test_the_dashboard_counts_members_without_aliases(db):
    doc = as_json(db, "dashboard", "--as-of", "2026-03-01")
    assert doc["members"]["total"] == 2
    assert [m["member_id"] for m in doc["top_members"]] == ["M1", "M3"]
    assert as_json(db, "dashboard", "--as-of", "2026-01-31")["members"]["total"] == 3


def test_recalc_leaves_the_alias_alone(tmp_path):
    """M2 reached Gold on 2025-01-10 (100.00) and was merged into M1 on 2025-03-01. A recalc as of
    2026-06-01 (no spend in the window, the hold over) moves M1 down to Bronze, never M2: the
    alias keeps the tier it had, and is not counted among the members judged."""
    db = fresh_db(tmp_path / "shop.db")
    (tmp_path / "rules.toml").write_text(RULES)
    ok(db, "-q", "program", "load", tmp_path / "rules.toml")
    for mid in ("M1", "M2"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "-q", "purchases", "add", "M2", "100.00", "--id", "D1", "--at", "2025-01-10T10:00")
    ok(db, "-q", "members", "merge", "M2", "--into", "M1", "--at", "2025-03-01T10:00", "--yes")
    result = as_json(db, "tiers", "recalc", "--as-of", "2026-06-01")
    assert [(c["member_id"], c["to"]) for c in result["changes"]] == [("M1", "Bronze")]
    assert raw(db, "SELECT tier FROM members WHERE member_id = 'M2'")[0][0] == "Gold"
    assert run(db, "db", "check", "--full").exit_code == 0


def test_the_dashboard_activity_and_pareto_count_the_pair_as_one_customer(db):
    # M1 buys again after the merge; as of 2026-02-15 (30-day periods: this one from 2026-01-17, the
    # one before from 2025-12-18) the pair bought in both periods (D1 under M2, K2 under M1), M3 in this one.
    ok(db, "-q", "purchases", "add", "M1", "30.00", "--id", "K2", "--at", "2026-02-10T10:00")
    doc = as_json(db, "dashboard", "--as-of", "2026-02-15")
    assert (doc["members"]["active"], doc["repeat_rate"], doc["retention"]) == (2, 0.0, 1.0)  # 0.0 counted apart
    pareto = as_json(db, "report", "pareto", "--as-of", "2026-02-15")
    # the pair spent 180.00 of the 200.00 in the year: the top member is half of the two customers
    assert (pareto["member_count"], pareto["total_spend"], pareto["top_spend"]["1"],
            pareto["members_share_for_80pct"]) == (2, "200.00", "180.00", 0.5)
    # before the merge they were two customers
    before = as_json(db, "report", "pareto", "--as-of", "2026-01-31")
    assert (before["member_count"], before["top_spend"]["1"]) == (3, "100.00")


def test_a_branchs_buyers_count_the_pair_as_one_customer(tmp_path):
    db = shop(tmp_path)
    for pid, mid, day, branch in (("N1", "M1", "2026-01-20", "North"), ("N2", "M2", "2026-01-25", "North"),
                                  ("S1", "M3", "2026-01-26", "South"), ("S2", "M2", "2026-01-27", "South")):
        ok(db, "-q", "purchases", "add", mid, "10.00", "--id", pid, "--at", f"{day}T10:00", "--store", branch)
    before = {b["store"]: b["buyers"] for b in as_json(db, "dashboard", "--as-of", "2026-01-31")["stores"]}
    assert before == {"North": 2, "South": 2}
    ok(db, "-q", "members", "merge", "M2", "--into", "M1", "--at", "2026-02-01T10:00", "--yes")
    doc = as_json(db, "dashboard", "--as-of", "2026-02-15")
    assert {b["store"]: (b["sales"], b["buyers"]) for b in doc["stores"]} == {"North": (2, 1), "South": (2, 2)}
    assert doc["members"]["active"] == 2
    north = as_json(db, "dashboard", "--as-of", "2026-02-15", "--store", "North")
    assert (north["members"]["active"], [b["buyers"] for b in north["stores"]]) == (1, [1])
