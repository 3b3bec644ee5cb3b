"""The totals the reports read instead of grouping every purchase and entry.

The ledger's Book keeps, as it writes: per member (`member_totals`) the number of
sales, net spend, first and last purchase, last sale and the sale before it; per
day the sales and refunds (`daily_sales`) and the points by entry kind
(`daily_points`). `db check` verifies them all. The reports take them where they
are exact for the as-of date and group purchases where not, so:

- worked examples: the totals after sales, a refund and a back-dated sale;
- tampering with any of them is found by `db check`;
- property: for random histories and as-of dates, RFM, churn, the dashboard's
  period figures and its monthly/points series equal what plain grouped queries
  over purchases and the ledger (kept here as the oracle) say.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty_cli import checks, members, program, purchases, reports
from loyalty_cli.store import reports as report_rows
from loyalty_cli.store import Store
from tests.db import connect, raw, row, rows
from tests.helpers import fresh_db

PROGRAM = """
[earn]
signup_bonus = 10
[expiry]
months = 12
"""


def open_shop(path: Path, ids=("A", "B")) -> Store:
    store = Store.open(fresh_db(path))  # (a new PostgreSQL database on that run)
    program.load(store, PROGRAM, "program.toml", None, "2024-01-01")
    for mid in ids:
        members.add(store, member_id=mid, name=f"Member {mid}", joined_on="2024-01-01")
    return store


def totals(store, mid):
    found = row(store.conn, "member_totals", member_id=mid)
    return found and (found.sales_count, found.net_spend, found.first_purchase_at, found.last_purchase_at,
                      found.last_sale_at, found.prev_sale_at)


@pytest.mark.any_backend
def test_member_totals_follow_sales_refunds_and_back_dated_sales(tmp_path):
    store = open_shop(tmp_path / "shop.db")
    purchases.add_sale(store, "A", 1000, "2025-03-01T10:00:00", "S1", None)
    assert totals(store, "A") == (1, 1000, "2025-03-01T10:00:00", "2025-03-01T10:00:00", "2025-03-01T10:00:00", None)
    purchases.add_sale(store, "A", 500, "2025-03-05T10:00:00", "S2", None)
    purchases.refund(store, "S1", 300, "2025-03-07T09:00:00", "R1")
    # 1000 + 500 − 300; the refund is the last purchase but not the last sale
    assert totals(store, "A") == (2, 1200, "2025-03-01T10:00:00", "2025-03-07T09:00:00", "2025-03-05T10:00:00",
                                  "2025-03-01T10:00:00")
    # a sale recorded late, dated between the two: it becomes the sale before the last
    purchases.add_sale(store, "A", 200, "2025-03-03T10:00:00", "S3", None)
    assert totals(store, "A") == (3, 1400, "2025-03-01T10:00:00", "2025-03-07T09:00:00", "2025-03-05T10:00:00",
                                  "2025-03-03T10:00:00")
    # one dated before everything moves only the first purchase
    purchases.add_sale(store, "A", 0, "2025-02-01T10:00:00", "S4", None)
    assert totals(store, "A")[:3] == (4, 1400, "2025-02-01T10:00:00")
    assert totals(store, "B") is None  # no purchase, no row

    days = [tuple(d) for d in rows(store.conn, "daily_sales")]
    assert days == [("2025-02-01", 1, 0, 0, 0), ("2025-03-01", 1, 1000, 0, 0), ("2025-03-03", 1, 200, 0, 0),
                    ("2025-03-05", 1, 500, 0, 0), ("2025-03-07", 0, 0, 1, 300)]
    points = raw(store.conn, "SELECT * FROM daily_points ORDER BY day, kind")
    # signups of A and B on the joining day; 1 point per 1.00 earned; before the refund's debit A's
    # signup points, lapsed on 2025-01-01, are written off; the refund reverses 3 of S1's 10
    assert points == [("2024-01-01", "signup", 20, 0, 2), ("2025-03-01", "earn", 10, 0, 1),
                      ("2025-03-03", "earn", 2, 0, 1), ("2025-03-05", "earn", 5, 0, 1),
                      ("2025-03-07", "expire", 0, -10, 1), ("2025-03-07", "reversal", 0, -3, 1)]
    assert checks.run_checks(store) == []
    store.close()


@pytest.mark.any_backend
def test_dashboard_period_figures_from_the_last_two_sales(tmp_path):
    """Each way the last two sales place a member, with the as-of date after everything (totals
    in member_totals) and before the last purchases (grouped from purchases): the same figures."""
    store = open_shop(tmp_path / "shop.db", ("A", "B", "C", "D", "E"))
    for mid, pid, day in [
        ("A", "A1", "2025-05-25"),                            # last sale in the previous period only
        ("B", "B1", "2025-05-20"), ("B", "B2", "2025-06-20"),  # previous and this period: retained
        ("C", "C1", "2025-06-10"),                            # this period only, once
        ("D", "D1", "2025-05-15"), ("D", "D2", "2025-06-05"), ("D", "D3", "2025-06-25"),  # two now, one before
        ("E", "E1", "2025-06-12"), ("E", "E2", "2025-06-28"),  # two now, none before
    ]:
        purchases.add_sale(store, mid, 1000, day + "T10:00:00", pid, None)
    # the 30 days to 2025-06-30 start on 06-01; the previous 30 on 05-02
    want = {"active": 4, "repeat": 2, "previous": 3, "both": 2}  # active B C D E; repeat D E; before A B D
    doc = reports.dashboard(store, "2025-06-30", 30)
    assert doc["members"]["active"] == want["active"]
    assert doc["repeat_rate"] == want["repeat"] / want["active"]
    assert doc["retention"] == want["both"] / want["previous"]
    # a later purchase of every member sends them all through the grouped query: nothing changes
    for mid in "ABCDE":
        purchases.add_sale(store, mid, 100, "2025-07-15T10:00:00", f"{mid}9", None)
    assert reports.dashboard(store, "2025-06-30", 30)["members"]["active"] == 4
    assert reports.dashboard(store, "2025-06-30", 30)["retention"] == 2 / 3
    assert reports.dashboard(store, "2025-06-30", 30)["repeat_rate"] == 2 / 4
    store.close()


# -- the oracle: the plain grouped queries over every purchase and entry ------------------------
ORACLE_SUMMARY = """
SELECT member_id, substr(max(CASE WHEN kind = 'sale' THEN purchased_at END), 1, 10) AS last_sale,
       count(CASE WHEN kind = 'sale' AND purchased_at >= :window_start THEN 1 END),
       coalesce(sum(CASE WHEN purchased_at >= :window_start THEN CASE kind WHEN 'sale' THEN amount ELSE -amount END END), 0)
FROM purchases WHERE purchased_at <= :end GROUP BY member_id HAVING max(CASE WHEN kind = 'sale' THEN purchased_at END) IS NOT NULL ORDER BY member_id"""

ORACLE_PERIODS = """
WITH recent AS (
    SELECT member_id, count(CASE WHEN purchased_at >= :period_start THEN 1 END) AS sales,
           count(CASE WHEN purchased_at < :period_start THEN 1 END) AS previous
    FROM purchases WHERE kind = 'sale' AND purchased_at >= :previous_start AND purchased_at <= :end GROUP BY member_id)
SELECT count(CASE WHEN sales > 0 THEN 1 END), count(CASE WHEN sales >= 2 THEN 1 END),
       count(CASE WHEN previous > 0 THEN 1 END), count(CASE WHEN previous > 0 AND sales > 0 THEN 1 END) FROM recent"""

ORACLE_LIFETIME = """
SELECT member_id, max(CASE WHEN kind = 'sale' THEN purchased_at END), sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END)
FROM purchases WHERE purchased_at <= :end GROUP BY member_id ORDER BY member_id"""


def oracle_scores(rows: list[tuple], as_of: str) -> dict:
    """SPEC §8's scores by their definition: 1 + floor(5 × strictly worse / n), by brute force."""
    d = dt.date.fromisoformat(as_of)
    rec = {mid: (d - dt.date.fromisoformat(last)).days for mid, last, _, _ in rows}
    n = len(rows)
    out = {}
    for mid, _, f, m in rows:
        r_worse = sum(1 for o in rows if rec[o[0]] > rec[mid])
        f_worse = sum(1 for o in rows if o[2] < f)
        m_worse = sum(1 for o in rows if o[3] < m)
        out[mid] = (rec[mid], f, m, 1 + 5 * r_worse // n, 1 + 5 * f_worse // n, 1 + 5 * m_worse // n)
    return out


IDS = ("A", "B", "C", "D")
START = dt.datetime(2024, 1, 1, 9, 0)


@st.composite
def histories(draw):
    sales = []
    span = draw(st.sampled_from([40, 200, 800]))  # short spans: several sales per member per period
    for k in range(draw(st.integers(1, 25))):
        offset = draw(st.integers(0, span))
        sales.append((f"S{k}", draw(st.sampled_from(IDS)), draw(st.integers(0, 5000)), offset))
    refunds = []
    for sid, mid, amount, offset in sales:
        if amount and draw(st.booleans()):
            refunds.append((f"{sid}R", sid, draw(st.integers(1, amount)), offset + draw(st.integers(0, 10))))
    # as-of dates mostly near the end of the history, where member_totals is used
    as_ofs = draw(st.lists(st.one_of(st.integers(-10, span + 100), st.integers(span, span + 40)), min_size=1, max_size=4))
    period = draw(st.sampled_from([1, 7, 20, 90]))
    return sales, refunds, as_ofs, period


@pytest.mark.any_backend
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=histories())
def test_reports_from_totals_equal_the_grouped_queries(h):
    sales, refunds, as_ofs, period = h
    with tempfile.TemporaryDirectory() as tmp:
        store = open_shop(Path(tmp) / "shop.db", IDS)
        try:
            # in the order drawn: dates arrive out of order, as when an old file is imported late
            for sid, mid, amount, offset in sales:
                purchases.add_sale(store, mid, amount, (START + dt.timedelta(days=offset, minutes=len(sid))).isoformat(),
                                   sid, None)
            for rid, sid, amount, offset in refunds:
                purchases.refund(store, sid, amount, (START + dt.timedelta(days=offset, hours=1)).isoformat(), rid)
            assert checks.run_checks(store) == []
            conn = store.conn
            for offset in as_ofs:
                as_of = (START.date() + dt.timedelta(days=offset)).isoformat()
                d = reports.Dates(as_of, period)
                params = d.params()

                expected = conn.execute(ORACLE_SUMMARY, params).fetchall()
                want = oracle_scores(expected, as_of)
                got = {r[0]: r[1:7] for r in zip(*reports.rfm_columns(conn, d))}
                assert got == want, (as_of, expected)

                assert conn.execute(report_rows.PERIODS_SQL, params).fetchone() == \
                    conn.execute(ORACLE_PERIODS, params).fetchone(), as_of

                lifetime = conn.execute(f"SELECT * FROM ({report_rows.LIFETIME_SQL}) AS l ORDER BY member_id", params).fetchall()
                assert lifetime == conn.execute(ORACLE_LIFETIME, params).fetchall(), as_of

                doc = reports.dashboard(store, as_of, period)
                months = {m["month"]: m["net_sales"] for m in doc["monthly"]}
                for month, net in months.items():
                    assert net == conn.execute(
                        "SELECT coalesce(sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END), 0) FROM purchases "
                        "WHERE substr(purchased_at, 1, 7) = ? AND purchased_at <= ?", (month, d.end)).fetchone()[0]
                count, net = conn.execute(
                    "SELECT count(CASE WHEN kind = 'sale' THEN 1 END), "
                    "coalesce(sum(CASE kind WHEN 'sale' THEN amount ELSE -amount END), 0) FROM purchases "
                    "WHERE purchased_at >= ? AND purchased_at <= ?", (d.period_start, d.end)).fetchone()
                assert (doc["sales"]["count"], doc["sales"]["net"]) == (count, net)
                issued = conn.execute(
                    "SELECT coalesce(sum(points), 0) FROM ledger WHERE at >= ? AND at <= ? "
                    "AND kind IN ('signup', 'earn', 'bonus', 'reversal')", (d.period_start, d.end)).fetchone()[0]
                assert doc["points"]["issued"] == issued
        finally:
            store.close()


@pytest.mark.sqlite_only  # a backup file restored
def test_a_backup_from_before_the_totals_restores_and_gets_them(tmp_path):
    """A backup made before m002 has no total tables: it passes db check and, restored, is given them."""
    from tests.helpers import ok

    db, backup = tmp_path / "shop.db", tmp_path / "old-backup.db"
    store = open_shop(db)
    purchases.add_sale(store, "A", 1000, "2025-03-01T10:00:00", "S1", None)
    store.close()
    ok(db, "db", "backup", backup)
    with connect(backup) as conn:  # make it what the first version of the tool wrote
        for table in ("member_totals", "daily_sales", "daily_points"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM migrations WHERE name = 'm002_summaries'")
        conn.execute("PRAGMA user_version = 1")
    later = Store.open(db)  # a sale after the backup, which the restore takes away
    purchases.add_sale(later, "B", 500, "2025-03-02T10:00:00", "S2", None)
    later.close()

    ok(db, "db", "restore", backup, "--yes")
    store = Store.open(db)
    try:
        assert totals(store, "A")[:2] == (1, 1000) and totals(store, "B") is None  # as the backup had it
        assert [(d.day, d.sales) for d in rows(store.conn, "daily_sales")] == [("2025-03-01", 1)]
        assert checks.run_checks(store) == []
    finally:
        store.close()
