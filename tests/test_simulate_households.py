"""`program simulate` on a shop with households, pooled redemptions, merges and a finished
experiment (issues 19 and 20 together): an identical proposal changes nothing, the baseline is the
shop's own history (what it really issued, reversed, redeemed and holds), and doubling
points_per_unit conserves points in both replays.

The shop (1 point per 1.00, points never expire, Gold from 1,000.00 with no extra points):

    2025-06-01  M5 buys P0 200.00; 2025-07-01 M5 is merged into M6 (before the period)
    2026-01-15  household FAM: M1 (head) and M2
    2026-02-01..12  M1 P1 300.00, M2 P2 200.00, M3 P3 400.00, M4 P4 100.00
    2026-02-20  M2 takes the reward MUG (400 points) from the pool: 300 of M1's and 100 of M2's
    2026-02-22  the voucher is cancelled: 300 back to M1, 100 to M2
    2026-02-25  M2 redeems 350 from the pool: the oldest lots first, M2's 100 left of P2, then 250
                of the 300 the cancel gave back to M1
    2026-03-01..31  experiment dbl: half the members earn 2 points per 1.00 (sales P5..P9 in March)
    2026-04-10  P0 refunded 50.00: 50 points back from M6 (M5's merged points)
    2026-05-01  M4 is merged into M3
    2026-05-10  P4 (M4's sale) refunded 50.00: 50 points back from M3; a sale naming M4 is M3's
"""

from __future__ import annotations

import json

import pytest

from tests.db import raw
from tests.helpers import fresh_db, ok

pytestmark = pytest.mark.any_backend

PROGRAMME = """
[earn]
points_per_unit = "{ppu}"
signup_bonus = 0
first_purchase_multiplier = "1"
[expiry]
months = 0
[tiers]
levels = [
  {{ name = "Bronze", min = "0", multiplier = "1" }},
  {{ name = "Gold", min = "1000", multiplier = "1" }},
]
"""


@pytest.fixture
def clock(monkeypatch):
    """The CLI's today, settable (the experiment starts on its first day, as the tool requires)."""
    import importlib
    import pkgutil

    from loyalty_cli import cli
    from loyalty_cli.cli import common

    for module in pkgutil.iter_modules(cli.__path__):
        importlib.import_module(f"loyalty_cli.cli.{module.name}")
    day = {"today": "2026-12-05"}
    monkeypatch.setattr(common, "today", lambda: day["today"])
    return day


def write(path, text):
    path.write_text(text)
    return path


def shop(tmp_path, clock):
    db = fresh_db(tmp_path / "shop.db")
    ok(db, "-q", "program", "load", write(tmp_path / "now.toml", PROGRAMME.format(ppu="1")))
    for mid in ("M1", "M2", "M3", "M4", "M5", "M6"):
        ok(db, "-q", "members", "add", "--id", mid, "--name", f"Member {mid}", "--joined", "2025-01-01")
    ok(db, "-q", "rewards", "add", "MUG", "--name", "Mug", "--cost", "400")
    ok(db, "-q", "purchases", "add", "M5", "200.00", "--id", "P0", "--at", "2025-06-01T10:00")
    ok(db, "-q", "members", "merge", "M5", "--into", "M6", "--at", "2025-07-01T10:00", "--yes")
    ok(db, "-q", "households", "create", "FAM", "--head", "M1", "--at", "2026-01-15T09:00")
    ok(db, "-q", "households", "add", "FAM", "M2", "--at", "2026-01-15T09:00")
    for pid, mid, amount, day in (("P1", "M1", "300.00", "01"), ("P2", "M2", "200.00", "05"),
                                  ("P3", "M3", "400.00", "10"), ("P4", "M4", "100.00", "12")):
        ok(db, "-q", "purchases", "add", mid, amount, "--id", pid, "--at", f"2026-02-{day}T10:00")
    voucher = json.loads(ok(db, "points", "redeem", "M2", "--reward", "MUG", "--household", "--at",
                            "2026-02-20T10:00", "--json").stdout)
    assert [(e["member_id"], e["points"]) for e in voucher["entries"]] == [("M1", 300), ("M2", 100)]
    ok(db, "-q", "vouchers", "cancel", voucher["voucher"], "--at", "2026-02-22T10:00")
    pooled = json.loads(ok(db, "points", "redeem", "M2", "350", "--household", "--at", "2026-02-25T10:00",
                           "--json").stdout)
    assert [(e["member_id"], e["points"]) for e in pooled["entries"]] == [("M2", 100), ("M1", 250)]
    clock["today"] = "2026-03-01"
    ok(db, "-q", "program", "experiment", "start", "dbl", write(tmp_path / "dbl.toml", '[earn]\npoints_per_unit = "2"\n'),
       "--share", "0.5", "--from", "2026-03-01")
    ok(db, "-q", "program", "experiment", "stop", "dbl", "--at", "2026-04-01")
    clock["today"] = "2026-12-05"
    for n, mid in enumerate(("M1", "M2", "M3", "M4", "M6"), 5):
        ok(db, "-q", "purchases", "add", mid, "50.00", "--id", f"P{n}", "--at", f"2026-03-{n:02d}T10:00")
    assert raw(db, "SELECT count(*) FROM variant_entries")[0][0] > 0  # someone earned under the variant
    ok(db, "-q", "purchases", "refund", "P0", "50.00", "--id", "R0", "--at", "2026-04-10T10:00")
    ok(db, "-q", "members", "merge", "M4", "--into", "M3", "--at", "2026-05-01T10:00", "--yes")
    ok(db, "-q", "purchases", "refund", "P4", "50.00", "--id", "R4", "--at", "2026-05-10T10:00")
    ok(db, "-q", "purchases", "add", "M4", "10.00", "--id", "P10", "--at", "2026-05-20T10:00")
    assert raw(db, "SELECT member_id FROM purchases WHERE purchase_id IN ('R0', 'R4', 'P10') ORDER BY purchase_id") \
        == [("M3",), ("M6",), ("M3",)]
    return db


def simulate(db, proposal):
    return json.loads(ok(db, "program", "simulate", proposal, "--from", "2026-01-01", "--to", "2026-06-30",
                         "--json").stdout)


def all_zero(value) -> bool:
    if isinstance(value, dict):
        return all(all_zero(v) for v in value.values())
    if isinstance(value, list):
        return all(all_zero(v) for v in value)
    if isinstance(value, str):
        return value.lstrip("-") in ("0", "0.00")
    return value is None or value == 0


def test_an_identical_proposal_changes_nothing_and_the_baseline_is_the_shops_history(tmp_path, clock):
    db = shop(tmp_path, clock)
    doc = simulate(db, tmp_path / "now.toml")
    assert all_zero(doc["change"]), doc["change"]
    assert doc["sales_not_replayed"] == {"baseline": 0, "proposed": 0}
    base = doc["baseline"]
    real = dict(raw(db, "SELECT kind, sum(points) FROM ledger WHERE at >= '2026-01-01' AND points > 0 "
                        "AND kind IN ('earn', 'bonus', 'signup', 'referral', 'award', 'adjust') GROUP BY kind"))
    assert base["points_issued_by_rule"] == real  # the variant's points included, as the shop issued them
    assert base["points_issued"] == 300 + 200 + 400 + 100 + 10 + sum(
        raw(db, "SELECT points FROM ledger WHERE kind = 'earn' AND ref IN ('P5', 'P6', 'P7', 'P8', 'P9')")[i][0]
        for i in range(5))
    assert base["points_reversed"] == 50 + 50  # R0 from M6, R4 from M3: both replayed
    assert base["points_redeemed"] == 400 + 350
    assert base["redemptions_refused"] == 0
    balances = raw(db, "SELECT sum(balance) FROM members")[0][0]
    assert base["outstanding_points"] == balances  # the voucher's 400 came back to both members


def test_doubling_points_per_unit_conserves_points_in_both_replays(tmp_path, clock):
    db = shop(tmp_path, clock)
    doc = simulate(db, write(tmp_path / "double.toml", PROGRAMME.format(ppu="2")))
    assert doc["sales_not_replayed"] == {"baseline": 0, "proposed": 0}
    for side in ("baseline", "proposed"):
        f = doc[side]
        # every member started the period at 0 except M6 (M5's 200 merged): 200 + issued − reversed −
        # redeemed (the cancelled voucher's 400 came back) − expired (none)
        assert f["points_expired"] == 0
        assert f["outstanding_points"] == 200 + f["points_issued"] - f["points_reversed"] - f["points_redeemed"] + 400
    assert doc["proposed"]["points_reversed"] == 2 * doc["baseline"]["points_reversed"] - 50  # R0: P0's real points
