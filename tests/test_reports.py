"""Reports, dashboard and feedback (SPEC §8, §11), on small shops built here by hand.

Every figure below was worked out on paper from the purchases in the test; the
comments show the arithmetic, so a failure says which rule moved.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from loyalty_cli.cli import app

# A plain programme: 1 point per 1.00, rounding down, 12-month expiry at month end,
# tier multipliers of 1 (so no tier bonus entries), small anomaly thresholds.
PROGRAMME = """
currency_decimals = 2
point_value = "0.01"
[earn]
points_per_unit = "1"
signup_bonus = 0
[expiry]
months = 12
round_to = "month_end"
[tiers]
levels = [
  { name = "Bronze", min = "0", multiplier = "1" },
  { name = "Silver", min = "100", multiplier = "1" },
]
[anomalies]
max_sales_per_day = 3
small_sale = "2.00"
small_burst = 3
small_burst_minutes = 30
refund_ratio_factor = "2"
award_redeem_points = 100
award_redeem_days = 3
"""


class Shop:
    """Drives the CLI in-process against one database file."""

    def __init__(self, tmp_path, programme: str = PROGRAMME):
        self.db = tmp_path / "reports.db"
        self.runner = CliRunner()
        toml = tmp_path / "programme.toml"
        toml.write_text(programme, encoding="utf-8")
        self.ok("init")  # only init creates a database
        self.ok("program", "load", toml)

    def run(self, *args):
        return self.runner.invoke(app, ["--db", str(self.db), *map(str, args)])

    def ok(self, *args):
        result = self.run(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args):
        return json.loads(self.ok(*args, "--json").stdout)

    def member(self, member_id, joined="2024-01-01", **fields):
        extra = []
        for key, value in fields.items():
            extra += [f"--{key}", value]
        self.ok("members", "add", "--id", member_id, "--name", f"Member {member_id}", "--joined", joined, *extra)

    def sale(self, member_id, amount, at, pid=None):
        args = ["purchases", "add", member_id, amount, "--at", at]
        if pid:
            args += ["--id", pid]
        self.ok(*args)

    def refund(self, pid, amount, at):
        self.ok("purchases", "refund", pid, amount, "--at", at)


@pytest.fixture
def shop(tmp_path):
    return Shop(tmp_path)


# -- RFM, segments, Pareto, churn -------------------------------------------------------------
@pytest.fixture
def rfm_shop(shop):
    """Six buyers and one member who never bought; as of 2026-06-30 the window is 2025-07-01..2026-06-30.

    member  sales (in window)                 last sale   recency  F  monetary
    A       100 (06-30), 50 (06-01), 50 (05-01) 2026-06-30    0     3  200.00
    B       10 (06-30)                         2026-06-30    0     1   10.00
    C       30 (04-01), 30 (04-02), 30 (04-03) 2026-04-03   88     3   90.00
    D       500 (2025-06-30: outside), 20 (2025-07-01)
                                               2025-07-01  364     1   20.00
    E       70 (2024-01-10: outside); refund 20 dated 2026-02-01 (in window)
                                               2024-01-10  902     0  -20.00
    G       40 (06-15), 0.00 (06-16: a zero sale is a sale)
                                               2026-06-16   14     2   40.00
    """
    s = shop
    for m in "ABCDEGF":
        s.member(m)
    s.sale("A", "100.00", "2026-06-30T10:00")
    s.sale("A", "50.00", "2026-06-01")
    s.sale("A", "50.00", "2026-05-01")
    s.sale("B", "10.00", "2026-06-30T09:00")
    for day in ("01", "02", "03"):
        s.sale("C", "30.00", f"2026-04-{day}")
    s.sale("D", "500.00", "2025-06-30T23:59")
    s.sale("D", "20.00", "2025-07-01T00:00")
    s.sale("E", "70.00", "2024-01-10", pid="E1")
    s.refund("E1", "20.00", "2026-02-01")
    s.sale("G", "40.00", "2026-06-15")
    s.sale("G", "0.00", "2026-06-16")
    return s


def test_rfm_scores_ties_and_segments(rfm_shop):
    doc = rfm_shop.json("report", "rfm", "--as-of", "2026-06-30")
    assert doc["as_of"] == "2026-06-30"
    got = {m["member_id"]: m for m in doc["members"]}
    assert set(got) == set("ABCDEG")  # F never bought
    assert {k: (m["recency_days"], m["frequency"], m["monetary"]) for k, m in got.items()} == {
        "A": (0, 3, "200.00"), "B": (0, 1, "10.00"), "C": (88, 3, "90.00"),
        "D": (364, 1, "20.00"), "E": (902, 0, "-20.00"), "G": (14, 2, "40.00"),
    }
    # n = 6; score = 1 + floor(5 × strictly worse / 6): worse 0,1 → 1; 2 → 2; 3 → 3; 4 → 4; 5 → 5.
    # R (higher recency worse): A, B tie at 0 with 4 worse → 4 each; G 3 → 3; C 2 → 2; D 1 → 1; E 0 → 1.
    # F (lower worse): A, C tie at 3 with 4 worse → 4 each; G 3 → 3; B, D tie at 1 with 1 worse → 1; E → 1.
    # M: E < B < D < G < C < A → 1, 1, 2, 3, 4, 5.
    assert {k: (m["r"], m["f"], m["m"]) for k, m in got.items()} == {
        "A": (4, 4, 5), "B": (4, 1, 1), "C": (2, 4, 4), "D": (1, 1, 2), "E": (1, 1, 1), "G": (3, 3, 3),
    }
    # first match: A champions; B potential (R ≥ 4); C loyal (F ≥ 4, M ≥ 3) before at_risk; D, E lost; G regular.
    assert {k: m["segment"] for k, m in got.items()} == {
        "A": "champions", "B": "potential", "C": "loyal", "D": "lost", "E": "lost", "G": "regular"}


def test_rfm_sort_limit_and_csv(rfm_shop):
    doc = rfm_shop.json("report", "rfm", "--as-of", "2026-06-30", "--sort", "monetary", "--limit", "2")
    assert [m["member_id"] for m in doc["members"]] == ["A", "C"]
    out = rfm_shop.ok("report", "rfm", "--as-of", "2026-06-30", "--csv", "--sort", "recency").stdout.splitlines()
    assert out[0] == "member_id,last_sale,recency_days,frequency,monetary,r,f,m,segment"
    assert out[1:3] == ["A,2026-06-30,0,3,200.00,4,4,5,champions", "B,2026-06-30,0,1,10.00,4,1,1,potential"]
    bad = rfm_shop.run("report", "rfm", "--sort", "name")
    assert bad.exit_code == 2 and "--sort" in bad.stderr and bad.stdout == ""


@pytest.mark.parametrize("r, f, m, segment", [
    (5, 5, 5, "champions"), (4, 4, 4, "champions"),
    (4, 4, 3, "loyal"), (1, 5, 3, "loyal"),          # loyal wins over at_risk
    (5, 3, 5, "potential"), (4, 4, 2, "potential"),
    (2, 3, 1, "at_risk"), (1, 1, 3, "at_risk"), (2, 4, 2, "at_risk"),
    (2, 2, 2, "lost"), (1, 1, 1, "lost"),
    (3, 3, 3, "regular"), (3, 5, 2, "regular"), (3, 4, 3, "loyal"),
])
def test_segment_rules_first_match_wins(r, f, m, segment):
    from loyalty_cli.reports import segment_of

    assert segment_of(r, f, m) == segment


def test_segments_report(rfm_shop):
    doc = rfm_shop.json("report", "segments", "--as-of", "2026-06-30")
    seg = {s["segment"]: s for s in doc["segments"]}
    assert list(seg) == ["champions", "loyal", "potential", "at_risk", "lost", "regular"]
    assert doc["members"] == 6 and doc["spend"] == "340.00"  # 200 + 10 + 90 + 20 − 20 + 40
    assert seg["lost"]["members"] == 2 and seg["lost"]["spend"] == "0.00"  # D 20.00 + E −20.00
    assert seg["lost"]["share_of_members"] == pytest.approx(2 / 6)
    assert seg["champions"]["share_of_spend"] == pytest.approx(200 / 340)
    assert seg["champions"]["average_order_value"] == "66.67"  # 200.00 / 3 sales, half up
    assert seg["regular"]["average_order_value"] == "20.00"  # 40.00 / 2 sales (the zero sale counts)
    assert seg["at_risk"] == {"segment": "at_risk", "members": 0, "share_of_members": 0.0, "spend": "0.00",
                              "share_of_spend": 0.0, "sales": 0, "average_order_value": None}


def test_members_list_by_segment(rfm_shop):
    doc = rfm_shop.json("members", "list", "--segment", "lost", "--as-of", "2026-06-30")
    assert sorted(m["member_id"] for m in doc) == ["D", "E"]
    bad = rfm_shop.run("members", "list", "--segment", "vip")
    assert bad.exit_code == 2 and "champions, loyal, potential, at_risk, lost, regular" in bad.stderr


def test_pareto_shares(rfm_shop):
    doc = rfm_shop.json("report", "pareto", "--as-of", "2026-06-30")
    # net spend ranked: A 200, C 90, G 40, D 20, B 10, E −20; total 340.
    # top ⌈6·p/100⌉: p = 1, 5, 10 → 1 member (200/340); p = 20 → 2 members (290/340).
    assert doc["top_shares"] == {"1": 200 / 340, "5": 200 / 340, "10": 200 / 340, "20": 290 / 340}
    # 80 % of 340 = 272: the top 1 has 200, the top 2 have 290 → 2/6 of the members.
    assert doc["members_share_for_80pct"] == 2 / 6


def test_pareto_null_when_total_not_positive(shop):
    shop.member("Z")
    shop.sale("Z", "10.00", "2025-01-01", pid="Z1")
    shop.refund("Z1", "10.00", "2025-01-05")
    doc = shop.json("report", "pareto", "--as-of", "2025-01-05")
    assert doc["top_shares"] == {"1": None, "5": None, "10": None, "20": None}
    assert doc["members_share_for_80pct"] is None
    empty = shop.json("report", "pareto", "--as-of", "2024-12-31")  # nobody has bought yet
    assert empty["top_shares"]["20"] is None and empty["members_share_for_80pct"] is None


def test_churn_boundary_exactly_n_days_counts(rfm_shop):
    # C's last sale, 2026-04-03, is exactly 88 days before 2026-06-30.
    doc = rfm_shop.json("report", "churn", "--as-of", "2026-06-30", "--days", "88")
    assert doc["days"] == 88
    assert doc["members"] == [
        {**doc["members"][0], "member_id": "E", "last_sale": "2024-01-10", "lifetime_spend": "50.00"},  # 70 − 20
        {**doc["members"][1], "member_id": "D", "last_sale": "2025-07-01", "lifetime_spend": "520.00"},
        {**doc["members"][2], "member_id": "C", "last_sale": "2026-04-03", "lifetime_spend": "90.00"},
    ]
    assert [m["member_id"] for m in rfm_shop.json("report", "churn", "--as-of", "2026-06-30", "--days", "89")["members"]] == ["E", "D"]
    default = rfm_shop.json("report", "churn", "--as-of", "2026-06-30")  # 365 days: D's 364 is not enough
    assert default["days"] == 365 and [m["member_id"] for m in default["members"]] == ["E"]


def test_churn_masks_contacts_unless_show_pii(shop):
    shop.member("P", email="pat.jones@shop.example", phone="+44 7700 900123")
    shop.sale("P", "5.00", "2025-01-01")
    masked = shop.json("report", "churn", "--as-of", "2026-06-30", "--days", "30")["members"][0]
    assert masked["email"] == "p***@shop.example" and masked["phone"] == "********0123"  # 12 digits: all but the last four hidden
    shown = shop.json("report", "churn", "--as-of", "2026-06-30", "--days", "30", "--show-pii")["members"][0]
    assert shown["email"] == "pat.jones@shop.example"
    csv_out = shop.ok("report", "churn", "--as-of", "2026-06-30", "--days", "30", "--csv").stdout
    assert "pat.jones" not in csv_out and "p***@shop.example" in csv_out


def test_csv_neutralises_formulas(shop):
    shop.member("=HYPERLINK(1)")
    shop.sale("=HYPERLINK(1)", "5.00", "2026-01-01")
    lines = shop.ok("report", "rfm", "--as-of", "2026-06-30", "--csv").stdout.splitlines()
    assert lines[1].startswith("'=HYPERLINK(1),")


def test_csv_keeps_negative_money_a_number(shop):
    # A sale fully refunded leaves a negative net spend: "-100.00" is a number, never prefixed.
    shop.member("N1")
    shop.sale("N1", "100.00", "2025-01-10", "n1")
    shop.refund("n1", "100.00", "2026-03-01")
    assert shop.json("report", "rfm", "--as-of", "2026-03-31")["members"][0]["monetary"] == "-100.00"
    row = shop.ok("report", "rfm", "--as-of", "2026-03-31", "--csv").stdout.splitlines()[1]
    assert ",-100.00," in row and "'" not in row


def test_csv_keeps_ids_and_phones_starting_with_a_sign_as_text(shop):
    shop.member("-42", phone="+447700900373")
    listed = shop.ok("members", "list", "--csv", "--show-pii").stdout.splitlines()[1]
    assert listed.startswith("'-42,") and ",'+447700900373," in listed


# -- liability and expiring ------------------------------------------------------------------------
@pytest.fixture
def liability_shop(shop):
    """As of 2026-06-30 (12-month expiry, at month end):

    L1  500 pts from 2025-06-15 (E 2026-06-30), 20 pts from 2025-07-10 (E 2026-07-31)
    L2  50 pts from 2026-05-01 (E 2027-05-31), 100 pts from 2026-06-30 (E 2027-06-30: 13th month)
    L3  100 pts on 2026-06-01, redeems 80 on 06-02, full refund on 06-03 reverses 100 → balance −80
    L4  60 pts from 2026-01-10 (E 2027-01-31); redeems 40 on 2026-07-05, after the as-of date
    L5  30 pts from 2026-07-02, after the as-of date
    L6  40 pts from 2025-05-10 (E 2026-05-31): lapsed, not yet written off on 2026-06-30
    and `points expire --as-of 2026-07-01` writes off L1's 500 and L6's 40, dated after it.
    """
    s = shop
    for m in ("L1", "L2", "L3", "L4", "L5", "L6"):
        s.member(m)
    s.sale("L1", "500.00", "2025-06-15")
    s.sale("L1", "20.00", "2025-07-10")
    s.sale("L2", "50.00", "2026-05-01")
    s.sale("L2", "100.00", "2026-06-30T18:00")
    s.sale("L3", "100.00", "2026-06-01", pid="L3S")
    s.ok("points", "redeem", "L3", "80", "--at", "2026-06-02")
    s.refund("L3S", "100.00", "2026-06-03")
    s.sale("L4", "60.00", "2026-01-10")
    s.ok("points", "redeem", "L4", "40", "--at", "2026-07-05")
    s.sale("L5", "30.00", "2026-07-02")
    s.sale("L6", "40.00", "2025-05-10")
    s.ok("points", "expire", "--as-of", "2026-07-01")
    return s


def test_liability_as_of_a_date(liability_shop):
    doc = liability_shop.json("report", "liability", "--as-of", "2026-06-30")
    # positive balances on 2026-06-30: L1 520 + L2 150 + L4 60 + L6 40 = 770 (L3 is −80, L5 has nothing yet)
    assert doc["outstanding_points"] == 770
    assert doc["value"] == "7.70"
    months = {e["month"]: e["points"] for e in doc["expiring"]}
    assert [e["month"] for e in doc["expiring"]] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11",
                                                     "2026-12", "2027-01", "2027-02", "2027-03", "2027-04", "2027-05"]
    # L6's 40 lapsed in May and are not written off yet: they go with June, when the next run takes them
    assert {m: p for m, p in months.items() if p} == {"2026-06": 540, "2026-07": 20, "2027-01": 60, "2027-05": 50}
    assert doc["negative"] == [{"member_id": "L3", "balance": -80}]


def test_liability_the_next_day(liability_shop):
    doc = liability_shop.json("report", "liability", "--as-of", "2026-07-01")
    # the expiry run dated 2026-07-01 wrote off 500 (L1) and 40 (L6): 20 + 150 + 60 = 230
    assert doc["outstanding_points"] == 230 and doc["value"] == "2.30"
    months = {e["month"]: e["points"] for e in doc["expiring"] if e["points"]}
    assert months == {"2026-07": 20, "2027-01": 60, "2027-05": 50, "2027-06": 100}
    assert len(doc["expiring"]) == 12 and doc["expiring"][0]["month"] == "2026-07"


def test_liability_months_end_with_the_calendar(liability_shop):
    doc = liability_shop.json("report", "liability", "--as-of", "9999-10-31")
    assert [e["month"] for e in doc["expiring"]] == ["9999-10", "9999-11", "9999-12"]  # never "10000-01"


def test_expiring_window_is_inclusive(liability_shop):
    doc = liability_shop.json("report", "expiring", "--as-of", "2026-06-30", "--days", "31")
    assert [(m["member_id"], m["date"], m["points"]) for m in doc["members"]] == [
        ("L1", "2026-06-30", 500), ("L1", "2026-07-31", 20)]
    doc = liability_shop.json("report", "expiring", "--as-of", "2026-06-30", "--days", "30")
    assert [(m["member_id"], m["date"], m["points"]) for m in doc["members"]] == [("L1", "2026-06-30", 500)]
    # L4's lot had 60 unused on 2026-06-30, 20 after the redemption of 2026-07-05
    doc = liability_shop.json("report", "expiring", "--as-of", "2027-01-01", "--days", "30")
    assert [(m["member_id"], m["date"], m["points"]) for m in doc["members"]] == [("L4", "2027-01-31", 20)]


# -- birthdays ----------------------------------------------------------------------------------
def test_birthdays_window_leap_day_and_year_wrap(shop):
    people = {"B1": "1992-02-29", "B2": "1985-03-02", "B3": "1985-03-03", "B4": "1980-02-19", "B5": "1980-02-20",
              "B6": "2000-01-04", "B7": "2000-12-31", "B8": "2000-01-05"}
    for member_id, birthday in people.items():
        shop.member(member_id, birthday=birthday)
    doc = shop.json("report", "birthdays", "--as-of", "2027-02-20", "--days", "10")
    # 2027 is not a leap year: 29 February is celebrated on the 28th; 20 Feb and 2 Mar are both inside.
    assert [(m["member_id"], m["date"], m["age"]) for m in doc["members"]] == [
        ("B5", "2027-02-20", 47), ("B1", "2027-02-28", 35), ("B2", "2027-03-02", 42)]
    wrap = shop.json("report", "birthdays", "--as-of", "2026-12-25", "--days", "10")
    assert [(m["member_id"], m["date"], m["age"]) for m in wrap["members"]] == [
        ("B7", "2026-12-31", 26), ("B6", "2027-01-04", 27)]
    leap = shop.json("report", "birthdays", "--as-of", "2028-02-25", "--days", "6")  # 2028 has a 29 February
    assert [(m["member_id"], m["date"]) for m in leap["members"]] == [("B1", "2028-02-29"), ("B2", "2028-03-02")]


# -- anomalies -----------------------------------------------------------------------------------
@pytest.fixture
def anomaly_shop(shop):
    """Thresholds: > 3 sales a day; 3 sales under 2.00 within 30 minutes; refunds/sales > 2 × the shop's
    (members with ≥ 3 sales and ≥ 2 refunds); an award of ≥ 100 points redeemed within 3 days."""
    s = shop
    for m in ("X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8", "X9", "X10", "X11", "X12"):
        s.member(m)
    for h in (9, 11, 13, 15):                       # X1: 4 sales on one day → flagged
        s.sale("X1", "10.00", f"2026-06-01T{h:02d}:00")
    for h in (9, 11, 13):                           # X2: exactly 3 → not flagged
        s.sale("X2", "10.00", f"2026-06-02T{h:02d}:00")
    for t in ("10:00", "10:15", "10:30"):           # X3: 3 small sales, first to last exactly 30 minutes → flagged
        s.sale("X3", "1.99", f"2026-06-03T{t}")
    for t in ("11:00", "11:20", "11:31"):           # X4: 31 minutes → not flagged
        s.sale("X4", "1.99", f"2026-06-03T{t}")
    for t, amount in (("12:00", "1.99"), ("12:05", "2.00"), ("12:10", "1.99")):  # X5: 2.00 is not below 2.00
        s.sale("X5", amount, f"2026-06-03T{t}")
    for day in ("05", "06", "07", "08"):            # X6: 4 sales, 2 refunds → ratio 0.5
        s.sale("X6", "10.00", f"2026-05-{day}", pid=f"X6-{day}")
    s.refund("X6-05", "10.00", "2026-05-20")
    s.refund("X6-06", "5.00", "2026-05-21")
    for day in ("05", "06", "07", "08"):            # X7: 4 sales, 1 refund → one refund is never a pattern
        s.sale("X7", "10.00", f"2026-04-{day}", pid=f"X7-{day}")
    s.refund("X7-05", "10.00", "2026-04-20")
    for day in range(1, 9):                          # X9: 8 sales, 2 refunds → 0.25, under the limit
        s.sale("X9", "10.00", f"2026-03-{day:02d}", pid=f"X9-{day}")
    s.refund("X9-1", "10.00", "2026-03-20")
    s.refund("X9-2", "10.00", "2026-03-21")
    for h in (9, 10, 11, 12):                        # X12: 4 sales on 2025-06-30 (outside) and on 2025-07-01 (inside)
        s.sale("X12", "10.00", f"2025-06-30T{h:02d}:00")
        s.sale("X12", "10.00", f"2025-07-01T{h:02d}:00")
    # sales in the window: X1 4 + X2 3 + X3 3 + X4 3 + X5 3 + X6 4 + X7 4 + X9 8 + X12 4 = 36; refunds 5
    # shop ratio 5/36; limit 2 × 5/36 = 0.278: X6 (0.5) flagged, X9 (0.25) and X7 (0.25) not.
    s.ok("points", "award", "X8", "100", "--reason", "prize", "--at", "2026-06-10", "--by", "sam")
    s.ok("points", "redeem", "X8", "50", "--at", "2026-06-13")          # 3 days later → flagged
    s.ok("points", "award", "X10", "100", "--reason", "prize", "--at", "2026-06-10")
    s.ok("points", "redeem", "X10", "50", "--at", "2026-06-14")         # 4 days later → not flagged
    s.ok("points", "award", "X11", "99", "--reason", "prize", "--at", "2026-06-10")
    s.ok("points", "redeem", "X11", "50", "--at", "2026-06-11")         # under 100 points → not flagged
    return s


def test_anomalies_each_rule(anomaly_shop):
    doc = anomaly_shop.json("report", "anomalies", "--as-of", "2026-06-30")
    found = [(f["date"], f["member_id"], f["rule"]) for f in doc["findings"]]
    assert found == [
        ("2025-07-01", "X12", "sales_per_day"),
        ("2026-05-21", "X6", "refund_ratio"),
        ("2026-06-01", "X1", "sales_per_day"),
        ("2026-06-03", "X3", "small_burst"),
        ("2026-06-10", "X8", "award_redeem"),
    ]
    reasons = {f["rule"]: f["reason"] for f in doc["findings"] if f["member_id"] != "X12"}
    assert reasons["sales_per_day"] == "4 sales in one day (more than 3 a day)"
    assert reasons["small_burst"].startswith("3 sales under 2.00 within 30 minutes (10:00–10:30")
    assert reasons["refund_ratio"].startswith("2 refunds for 4 sales (50.0%)")
    assert "award of 100 points by sam" in reasons["award_redeem"] and "3 days later" in reasons["award_redeem"]
    assert set(doc["findings"][0]) == {"member_id", "date", "rule", "reason"}


def test_anomalies_use_the_rules_in_force_on_the_date(anomaly_shop):
    anomaly_shop.ok("program", "set", "anomalies.max_sales_per_day", "10", "--from", "2026-07-01")
    before = anomaly_shop.json("report", "anomalies", "--as-of", "2026-06-30")
    after = anomaly_shop.json("report", "anomalies", "--as-of", "2026-07-01")
    assert ("X1", "sales_per_day") in {(f["member_id"], f["rule"]) for f in before["findings"]}
    assert "sales_per_day" not in {f["rule"] for f in after["findings"]}
    # a year later everything has left the 365-day window
    assert anomaly_shop.json("report", "anomalies", "--as-of", "2027-07-01")["findings"] == []


# -- dashboard --------------------------------------------------------------------------------------
@pytest.fixture
def dash_shop(tmp_path):
    """As of 2026-03-31 with a 30-day period (2026-03-02..31; previous 2026-01-31..2026-03-01), signup bonus 10.

    P1 joined 2025-01-01: sales 20.00 (02-10), 30.00 (03-05), 10.00 (03-06), 200.00 (04-20, after);
       redeems 25 on 03-25, which first writes off its lapsed signup lot (10, expired 2026-01-31).
    P2 joined 2026-03-10: a zero sale on 03-12.
    P3 joined 2026-02-01: sales 5.00 (02-15), 150.00 (03-15: Silver from then), refund 50.00 (03-20).
    P4 joined 2026-04-15, after the as-of date.
    """
    s = Shop(tmp_path, PROGRAMME.replace("signup_bonus = 0", "signup_bonus = 10"))
    s.member("P1", joined="2025-01-01", email="pat.one@shop.example", phone="+44 7700 900111")
    s.member("P2", joined="2026-03-10")
    s.member("P3", joined="2026-02-01", email="pia.three@shop.example")
    s.member("P4", joined="2026-04-15")
    s.sale("P1", "20.00", "2026-02-10")
    s.sale("P1", "30.00", "2026-03-05")
    s.sale("P1", "10.00", "2026-03-06")
    s.sale("P2", "0.00", "2026-03-12")
    s.sale("P3", "5.00", "2026-02-15")
    s.sale("P3", "150.00", "2026-03-15", pid="P3-BIG")
    s.refund("P3-BIG", "50.00", "2026-03-20")
    s.ok("points", "redeem", "P1", "25", "--at", "2026-03-25")
    s.sale("P1", "200.00", "2026-04-20")
    s.ok("feedback", "add", "P1", "3", "--at", "2025-06-01")
    s.ok("feedback", "add", "P1", "9", "--at", "2026-03-01")    # P1's latest: promoter
    s.ok("feedback", "add", "P2", "10", "--at", "2026-03-20")   # promoter
    s.ok("feedback", "add", "P3", "10", "--at", "2025-03-01")   # outside the 365 days anyway
    s.ok("feedback", "add", "P3", "6", "--at", "2026-03-21")    # detractor
    s.ok("feedback", "add", "P3", "10", "--at", "2026-04-01")   # after the as-of date
    return s


def test_dashboard_json(dash_shop):
    doc = dash_shop.json("dashboard", "--as-of", "2026-03-31")
    assert doc["as_of"] == "2026-03-31" and doc["period_days"] == 30
    assert doc["members"] == {"total": 3, "new": 1, "active": 3}
    # 4 sales (P1 ×2, P2's zero sale, P3), net 30 + 10 + 0 + 150 − 50 = 140.00, average 35.00
    assert doc["sales"] == {"count": 4, "net": "140.00", "average_order_value": "35.00"}
    assert doc["repeat_rate"] == 1 / 3          # P1 only, of 3 active
    assert doc["retention"] == 1.0               # P1 and P3 active before, both back
    # issued in the period: P2 signup 10 + earn 30 + 10 + 150 − reversal 50 = 150; redeemed 25; expired 10
    # outstanding: P1 10 + 20 + 30 + 10 − 10 − 25 = 35, P2 10, P3 10 + 5 + 150 − 50 = 115
    assert doc["points"] == {"issued": 150, "redeemed": 25, "expired": 10, "outstanding": 160}
    assert doc["liability"] == "1.60"
    assert doc["redemption_rate"] == 25 / 195    # all time: signups 30 + earn 215 − 50 = 195
    assert doc["tiers"] == {"Bronze": 2, "Silver": 1}  # P1 reaches Silver only on 2026-04-20
    assert doc["segments"] == {"champions": 0, "loyal": 0, "potential": 1, "at_risk": 1, "lost": 1, "regular": 0}
    assert doc["nps"] == pytest.approx(100 * (2 - 1) / 3)
    assert len(doc["monthly"]) == 12 and doc["monthly"][0]["month"] == "2025-04"
    monthly = {m["month"]: (m["net_sales"], m["points_issued"]) for m in doc["monthly"]}
    assert monthly["2026-02"] == ("25.00", 35) and monthly["2026-03"] == ("140.00", 150)
    assert all(v == ("0.00", 0) for k, v in monthly.items() if k not in ("2026-02", "2026-03"))
    assert [(t["member_id"], t["net_spend"]) for t in doc["top_members"]] == [
        ("P3", "105.00"), ("P1", "60.00"), ("P2", "0.00")]
    assert doc["top_members"][0]["email"] == "p***@shop.example"
    assert set(doc) == {"as_of", "period_days", "members", "sales", "repeat_rate", "retention", "points", "liability",
                        "redemption_rate", "tiers", "segments", "nps", "monthly", "top_members", "masked",
                        "stores"}


def test_dashboard_text_shows_the_json_numbers(dash_shop):
    doc = dash_shop.json("dashboard", "--as-of", "2026-03-31")
    text = dash_shop.ok("dashboard", "--as-of", "2026-03-31", "--full").stdout  # every figure
    assert "\x1b[" not in text  # not a terminal: no escape codes

    def shows(label, value):
        assert re.search(re.escape(label) + r"\s+" + re.escape(value) + r"(\s|$)", text), (label, value, text)

    shows("net sales", doc["sales"]["net"])
    shows("sales", str(doc["sales"]["count"]))
    shows("average order", doc["sales"]["average_order_value"])
    shows("active members", str(doc["members"]["active"]))
    shows("new members", str(doc["members"]["new"]))
    shows("repeat rate", f"{doc['repeat_rate'] * 100:.1f}%")
    shows("retention", f"{doc['retention'] * 100:.1f}%")
    shows("points issued", str(doc["points"]["issued"]))
    shows("points redeemed", str(doc["points"]["redeemed"]))
    shows("points expired", str(doc["points"]["expired"]))
    shows("members", str(doc["members"]["total"]))
    shows("points outstanding", str(doc["points"]["outstanding"]))
    shows("liability", doc["liability"])
    shows("redemption rate", f"{doc['redemption_rate'] * 100:.1f}%")
    shows("NPS (365 days)", f"+{doc['nps']:.1f}")
    for name, count in list(doc["tiers"].items()) + list(doc["segments"].items()):
        shows(name, str(count))
    for m in doc["monthly"]:
        assert re.search(rf"{m['month']}\s+{re.escape(m['net_sales'])}\s.*\s{m['points_issued']}(\s|$)", text), m
    for t in doc["top_members"]:
        assert re.search(rf"{t['member_id']}\s.*\s{re.escape(t['net_spend'])}$", text, re.M), t
    assert "pat.one@" not in text and "p***@shop.example" in text


def test_dashboard_rich_matches_plain(dash_shop, monkeypatch):
    from rich.console import Console

    from loyalty_cli import reports
    from loyalty_cli.cli.reports import dashboard_json
    from loyalty_cli.render.dashboard import DashboardView
    from loyalty_cli.store import Store

    store = Store.open(dash_shop.db)
    try:
        doc = dashboard_json(reports.dashboard(store, "2026-03-31", 30))
    finally:
        store.close()
    assert doc == dash_shop.json("dashboard", "--as-of", "2026-03-31")
    console = Console(record=True, width=110, file=open("/dev/null", "w"), color_system=None)
    console.print(DashboardView(doc).rich(console.width))
    text = console.export_text()
    for value in ("140.00", "35.00", "33.3%", "100.0%", "1.60", "12.8%", "+33.3", "105.00"):
        assert value in text


def test_dashboard_empty_shop(shop):
    doc = shop.json("dashboard", "--as-of", "2026-01-31")
    assert doc["sales"] == {"count": 0, "net": "0.00", "average_order_value": None}
    assert doc["repeat_rate"] is None and doc["retention"] is None and doc["redemption_rate"] is None
    assert doc["nps"] is None and doc["top_members"] == []
    assert "Loyalty dashboard" in shop.ok("dashboard", "--as-of", "2026-01-31").stdout


def test_dashboard_period_option(dash_shop):
    doc = dash_shop.json("dashboard", "--as-of", "2026-03-31", "--period", "7")   # 2026-03-25..31
    assert doc["period_days"] == 7
    assert doc["sales"]["count"] == 0 and doc["points"] == {"issued": 0, "redeemed": 25, "expired": 10, "outstanding": 160}
    assert dash_shop.run("dashboard", "--period", "0").exit_code == 2



def test_dashboard_counts_a_member_from_their_first_purchase_when_it_predates_joining(shop):
    # The till's history imported after the members, who joined "today": at a date in that history
    # the member bought, so they count among the members (never active > total), but are not new.
    shop.member("H1", joined="2026-06-01")
    shop.member("H2", joined="2026-06-01")
    shop.sale("H1", "10.00", "2026-01-10T10:00")
    doc = shop.json("dashboard", "--as-of", "2026-01-31")
    assert doc["members"] == {"total": 1, "new": 0, "active": 1}
    assert sum(doc["tiers"].values()) == 1
    assert shop.json("dashboard", "--as-of", "2026-01-09")["members"] == {"total": 0, "new": 0, "active": 0}
    assert shop.json("dashboard", "--as-of", "2026-06-15")["members"] == {"total": 2, "new": 2, "active": 0}

# -- feedback ------------------------------------------------------------------------------------
def test_feedback_add_and_errors(shop):
    shop.member("F1")
    doc = shop.json("feedback", "add", "F1", "10", "--comment", "lovely bread", "--at", "2026-01-02")
    assert doc["member_id"] == "F1" and doc["score"] == 10 and doc["at"] == "2026-01-02T00:00:00"
    assert doc["comment"] == "lovely bread"
    for bad in ("11", "-1", "nine"):
        result = shop.run("feedback", "add", "F1", bad)
        assert result.exit_code == 2 and result.stderr.startswith(("Error:", "Usage:")) and result.stdout == ""
    missing = shop.run("feedback", "add", "NOPE", "5")
    assert missing.exit_code == 1 and "NOPE" in missing.stderr
    shop.ok("members", "erase", "F1", "--yes")
    erased = shop.run("feedback", "add", "F1", "5")
    assert erased.exit_code == 1 and "erased" in erased.stderr


def test_every_report_has_help_with_an_example(shop):
    for args in (["report", "rfm"], ["report", "segments"], ["report", "pareto"], ["report", "churn"],
                 ["report", "liability"], ["report", "birthdays"], ["report", "expiring"], ["report", "anomalies"],
                 ["dashboard"], ["feedback", "add"]):
        result = shop.run(*args, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout, args


def test_json_records_writes_what_json_dumps_would(capsys):
    """The fast writer for long lists gives the same document as json.dumps, escapes included."""
    from loyalty_cli.render import Output
    from loyalty_cli.values import format_money_column

    rows = [('M"1\\', 3, -1250, "zoë"), ("M2\t", 0, 5, "\u2028x"), ("M3", -7, 0, "")]
    Output(json=True).json_records({"as_of": "2025-01-01"}, "members",
                                   (("member_id", str), ("n", int), ("money", str), ("text", str)), tuple(zip(*rows)),
                                   {2: lambda column: format_money_column(column, 2)})
    out = capsys.readouterr().out
    assert out.endswith("\n") and "\n" not in out[:-1]
    assert json.loads(out) == {"as_of": "2025-01-01", "members": [
        {"member_id": 'M"1\\', "n": 3, "money": "-12.50", "text": "zoë"},
        {"member_id": "M2\t", "n": 0, "money": "0.05", "text": "\u2028x"},
        {"member_id": "M3", "n": -7, "money": "0.00", "text": ""}]}
    Output(json=True).json_records({"as_of": "2025-01-01"}, "members", (("member_id", str),), ([],))
    assert json.loads(capsys.readouterr().out) == {"as_of": "2025-01-01", "members": []}


@pytest.mark.parametrize("decimals", [0, 1, 2, 3])
def test_format_money_column_matches_format_money(decimals):
    from loyalty_cli.values import format_money, format_money_column

    amounts = [0, 1, -1, 9, -9, 10, 99, -99, 100, -100, 12345, -12345, 10**12 + 7, -(10**12) - 7]
    assert format_money_column(amounts, decimals) == [format_money(a, decimals) for a in amounts]


def test_csv_keeps_negative_money_a_number_without_decimals_too(tmp_path):
    shop = Shop(tmp_path, "currency_decimals = 0\n")
    shop.member("Y1")
    shop.sale("Y1", "1000", "2025-01-10", "y1")
    shop.refund("y1", "1000", "2026-01-02")
    row = shop.ok("report", "rfm", "--as-of", "2026-01-15", "--csv").stdout.splitlines()[1]
    assert ",-1000," in row and "'" not in row
