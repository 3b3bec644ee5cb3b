"""Every read of "outstanding" agrees with the sum of balances, at any as-of date (issue 15).

After an expiry run dated next year, the dashboard and `report liability` showed the
old outstanding points while `members list` showed every balance at 0, and `db check`
passed. A balance as of D is the sum of the member's entries dated up to the end of D
(SPEC §3); outstanding points are the sum of the positive balances (SPEC §8). Here the
dashboard, `report liability`, `members list`, `members show` and `points balance`
are compared with that sum read straight from the ledger, before, at and after
entries dated in the future; and `db check` must notice when the cached figures they
read disagree with the ledger.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db import raw, row
from tests.helpers import as_json, fresh_db, ok

TODAY = dt.date.today()


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


MEMBERS = ("M1", "M2", "M3", "M4")
SOON, LATER, NEXT_YEAR = 20, 45, 380  # days after today of the entries dated in the future
# As-of dates compared: before, at and after each future-dated entry.
AS_OF = [-1, 0, SOON - 1, SOON, LATER - 1, LATER, NEXT_YEAR - 1, NEXT_YEAR, NEXT_YEAR + 400]


def ledger_balances(db, as_of: str) -> dict[str, int]:
    """The definition: each member's entries dated up to the end of the day, summed."""
    rows = dict(raw(db, "SELECT member_id, sum(points) FROM ledger WHERE at <= ? GROUP BY member_id", as_of + "T23:59:59"))
    return {m: rows.get(m, 0) for m in MEMBERS}


@pytest.fixture
def shop(tmp_path):
    """Four members with past activity (one below zero after a refund), then entries dated after
    today written with --allow-future: an award, a redemption and next year's expiry run."""
    db = fresh_db(tmp_path / "shop.db")  # (on the PostgreSQL run: a URL)
    for m in MEMBERS:
        ok(db, "members", "add", "--id", m, "--name", f"Member {m}", "--joined", day(-300))
    ok(db, "points", "award", "M1", "400", "--reason", "r", "--at", day(-250))   # lapses before next year
    ok(db, "points", "award", "M2", "300", "--reason", "r", "--at", day(-10))
    ok(db, "points", "award", "M3", "200", "--reason", "r", "--at", day(-5))
    ok(db, "purchases", "add", "M4", "80.00", "--id", "S4", "--at", day(-40))
    earned = row(db, "purchases", purchase_id="S4").points
    ok(db, "points", "redeem", "M4", str(earned), "--at", day(-30))
    ok(db, "purchases", "refund", "S4", "--at", day(-20))  # the reversal takes M4 below zero
    ok(db, "points", "award", "M2", "50", "--reason", "future", "--at", day(SOON), "--allow-future")
    ok(db, "points", "redeem", "M3", "120", "--at", day(LATER), "--allow-future")
    ok(db, "points", "expire", "--as-of", day(NEXT_YEAR), "--allow-future")
    return db


def test_the_shop_has_entries_on_every_side_of_the_dates(shop):
    kinds = dict(raw(shop, "SELECT kind, count(*) FROM ledger WHERE at > ? GROUP BY kind", day(0) + "T23:59:59"))
    assert set(kinds) == {"award", "redeem", "expire"}
    assert ledger_balances(shop, day(0))["M4"] < 0


@pytest.mark.parametrize("offset", AS_OF)
def test_every_outstanding_figure_is_the_sum_of_the_balances(shop, offset):
    as_of = day(offset)
    truth = ledger_balances(shop, as_of)
    outstanding = sum(b for b in truth.values() if b > 0)

    dashboard = as_json(shop, "dashboard", "--as-of", as_of)
    liability = as_json(shop, "report", "liability", "--as-of", as_of)
    listed = {r["member_id"]: r["balance"] for r in as_json(shop, "members", "list", "--as-of", as_of)}
    balances = {m: as_json(shop, "points", "balance", m, "--as-of", as_of)["balance"] for m in MEMBERS}
    shown = {m: as_json(shop, "members", "show", m, "--as-of", as_of)["balance"] for m in MEMBERS}

    assert listed == balances == shown == truth
    assert dashboard["points"]["outstanding"] == liability["outstanding_points"] == outstanding
    assert liability["negative"] == [{"member_id": m, "balance": b} for m, b in truth.items() if b < 0]

    # The points a member has left to expire on each date from D on: the same in `report expiring`
    # as in the member's own balance.
    report = as_json(shop, "report", "expiring", "--as-of", as_of, "--days", "3000")["members"]
    for m in MEMBERS:
        own = as_json(shop, "points", "balance", m, "--as-of", as_of)["expiring"]
        assert [(e["date"], e["points"]) for e in report if e["member_id"] == m] == [
            (e["date"], e["points"]) for e in own if e["date"] is not None and e["date"] >= as_of]


def test_without_a_date_every_command_reads_as_of_today(shop):
    truth = ledger_balances(shop, day(0))
    listed = {r["member_id"]: r["balance"] for r in as_json(shop, "members", "list")}
    assert listed == truth
    assert {m: as_json(shop, "points", "balance", m)["balance"] for m in MEMBERS} == truth
    assert {m: as_json(shop, "members", "show", m)["balance"] for m in MEMBERS} == truth
    outstanding = sum(b for b in truth.values() if b > 0)
    assert as_json(shop, "dashboard")["points"]["outstanding"] == outstanding
    assert as_json(shop, "report", "liability")["outstanding_points"] == outstanding
    # Sorted by the same balances the list shows
    by_balance = [r["member_id"] for r in as_json(shop, "members", "list", "--sort", "balance")]
    assert by_balance == sorted(MEMBERS, key=lambda m: (-truth[m], m))


def test_after_the_expiry_run_dated_next_year_balances_and_reports_agree_at_zero_for_m1(shop):
    after = day(NEXT_YEAR)
    assert as_json(shop, "points", "balance", "M1", "--as-of", after)["balance"] == 0
    assert as_json(shop, "points", "balance", "M1")["balance"] == 400  # today: not written off yet


# -- db check ------------------------------------------------------------------------------
# -- property ------------------------------------------------------------------------------
step = st.tuples(st.sampled_from(["award", "award", "redeem", "expire"]), st.sampled_from(MEMBERS[:3]),
                 st.integers(1, 300), st.integers(-500, 500))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=15), offsets=st.lists(st.integers(-600, 900), min_size=1, max_size=4))
def test_outstanding_is_the_sum_of_balances_for_any_activity_and_date(tmp_path_factory, steps, offsets):
    """Random awards, redemptions and expiry runs dated before and after today (the library, as
    with --allow-future): at any as-of date, every figure equals the ledger's sum."""
    from loyalty_cli import checks, members, points, reports
    from loyalty_cli.errors import LoyaltyError
    from loyalty_cli.store import Store

    path = tmp_path_factory.mktemp("outstanding") / "shop.db"
    store = Store.open(path, create=True)
    try:
        for m in MEMBERS[:3]:
            members.add(store, member_id=m, name=f"Member {m}", joined_on=day(-700))
        for op, m, amount, offset in steps:
            at = day(offset) + "T12:00:00"
            try:
                if op == "award":
                    points.award(store, m, amount, at, "r", "test")
                elif op == "redeem":
                    points.redeem(store, m, amount, None, at, "test")
                else:
                    points.expire(store, day(offset))
            except LoyaltyError:
                pass  # not enough points: refused, nothing written
        for offset in offsets:
            as_of = day(offset)
            rows = dict(raw(path, "SELECT member_id, sum(points) FROM ledger WHERE at <= ? GROUP BY member_id",
                          as_of + "T23:59:59"))
            truth = {m: rows.get(m, 0) for m in MEMBERS[:3]}
            outstanding = sum(b for b in truth.values() if b > 0)
            assert reports.dashboard(store, as_of)["points"]["outstanding"] == outstanding
            assert reports.liability(store, as_of)["outstanding_points"] == outstanding
            assert {m: points.balance(store, m, as_of)["balance"] for m in truth} == truth
            assert {r["member_id"]: r["balance"] for r in members.listing(store, as_of=as_of)[0]} == truth
        assert checks.run_checks(store, day(0)) == []
    finally:
        store.close()
