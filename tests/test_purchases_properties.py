"""Property tests of sales and refunds (SPEC §6, §7), with hypothesis.

Random sales for 2-3 members (some referred by another, with a signup and a
referral bonus), every sale then refunded in random parts and in random order,
some refunds dated long after the points lapsed. Whatever happens:

- per purchase, what its refunds reversed never exceeds what it earned;
- once everything is refunded, each sale's points are fully accounted for
  (reversed + expired = earned), and a member's balance is what is left of their
  signup and referral credits (all of them when nothing expired);
- `db check` finds nothing;
- importing the same CSV twice is the same as importing it once, and the same as
  recording it at the counter.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty_cli import checks, importer, members, program, purchases
from loyalty_cli.store import Store
from tests.db import raw
from tests.helpers import fresh_db

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PROGRAM = """
[earn]
signup_bonus = 50
referral_bonus = 100
first_purchase_multiplier = "2"
birthday_multiplier = "1.5"

[expiry]
months = 12
round_to = "month_end"
"""

START = dt.date(2025, 1, 1)


def day(offset: int, minute: int = 0) -> str:
    return (dt.datetime.combine(START, dt.time(9, 0)) + dt.timedelta(days=offset, minutes=minute)).isoformat()


# -- scenario ------------------------------------------------------------------------------------


@st.composite
def scenarios(draw):
    """Members, sales, and refunds that split every non-zero sale into parts."""
    n = draw(st.integers(2, 3))
    ids = [f"M{i}" for i in range(n)]
    referrers = [None] + [draw(st.sampled_from([None, *ids[:i]])) for i in range(1, n)]
    birth_months = [draw(st.integers(1, 12)) for _ in ids]
    late = draw(st.booleans())  # may refunds come after the points lapsed?
    # without late refunds everything happens in 2025: nothing lapses before 2026-02-01
    horizon = 900 if late else 364
    sales = []
    for k in range(draw(st.integers(1, 8))):
        who = draw(st.integers(0, n - 1))
        amount = draw(st.one_of(st.just(0), st.integers(1, 2000), st.integers(1, 60000)))
        offset = draw(st.integers(0, 300))
        sales.append((f"S{k}", ids[who], amount, offset))
    refunds = []
    for sid, mid, amount, offset in sales:
        if amount == 0:
            continue
        cuts = sorted(set(draw(st.lists(st.integers(1, amount - 1), max_size=3)))) if amount > 1 else []
        bounds = [0, *cuts, amount]
        for j in range(len(bounds) - 1):
            when = draw(st.integers(offset, max(offset, horizon)))
            refunds.append((f"{sid}R{j}", sid, mid, bounds[j + 1] - bounds[j], when))
    order = draw(st.permutations(range(len(refunds))))
    refunds = [refunds[i] for i in order]
    return {"ids": ids, "referrers": referrers, "birth_months": birth_months, "late": late,
            "sales": sales, "refunds": refunds}


def open_shop(path: Path, sc: dict) -> Store:
    store = Store.open(fresh_db(path))  # (a new PostgreSQL database on that run)
    program.load(store, PROGRAM, "program.toml", None, "2025-01-01")
    for mid, ref, month in zip(sc["ids"], sc["referrers"], sc["birth_months"]):
        members.add(store, member_id=mid, name=f"Member {mid}", birthday=f"1990-{month:02d}-10",
                    joined_on="2025-01-01", referred_by=ref)
    return store


def ledger_by_member(store) -> dict:
    return {(mid, kind): total for mid, kind, total in
            raw(store.conn, "SELECT member_id, kind, sum(points) FROM ledger GROUP BY member_id, kind")}


def balances(store) -> dict:
    return dict(raw(store.conn, "SELECT member_id, balance FROM members"))


# -- sales and refunds at the counter --------------------------------------------------------------


@SETTINGS
@pytest.mark.any_backend
@given(sc=scenarios())
def test_refunding_everything(sc):
    with tempfile.TemporaryDirectory() as tmp:
        store = open_shop(Path(tmp) / "shop.db", sc)
        try:
            for sid, mid, amount, offset in sc["sales"]:
                purchases.add_sale(store, mid, amount, day(offset), sid, None)
            for rid, sid, mid, amount, when in sc["refunds"]:
                purchases.refund(store, sid, amount, day(when, 30), rid)

            # per purchase: reversed never exceeds earned, in the purchases table and in the ledger
            for sid, earned, reversed_ in raw(store.conn, """
                    SELECT s.purchase_id, s.points, coalesce(sum(r.points), 0) FROM purchases s
                    LEFT JOIN purchases r ON r.refund_of = s.purchase_id WHERE s.kind = 'sale'
                    GROUP BY s.purchase_id"""):
                assert 0 <= reversed_ <= earned, (sid, earned, reversed_)
                ledger_earned = raw(store.conn, "SELECT coalesce(sum(points), 0) FROM ledger WHERE ref = ? "
                                         "AND kind IN ('earn', 'bonus')", sid)[0][0]
                ledger_reversed = -raw(store.conn, "SELECT coalesce(sum(e.points), 0) FROM ledger e JOIN purchases r "
                                            "ON r.purchase_id = e.ref WHERE e.kind = 'reversal' AND r.refund_of = ?",
                                     sid)[0][0]
                assert ledger_earned == earned
                assert 0 <= ledger_reversed <= ledger_earned
                # everything was refunded: what was not reversed has expired (nothing when nothing lapsed)
                expired = raw(store.conn, """SELECT coalesce(sum(u.points), 0) FROM lot_uses u
                                      JOIN ledger e ON e.id = u.entry_id AND e.kind = 'expire'
                                      JOIN lots l ON l.id = u.lot_id
                                      JOIN ledger c ON c.id = l.entry_id AND c.ref = ? AND c.kind IN ('earn', 'bonus')""",
                            sid)[0][0]
                assert ledger_reversed + expired == ledger_earned, (sid, ledger_earned, ledger_reversed, expired)
                if not sc["late"]:
                    assert ledger_reversed == ledger_earned

            sums = ledger_by_member(store)
            for mid, bal in balances(store).items():
                bonuses = sums.get((mid, "signup"), 0) + sums.get((mid, "referral"), 0)
                if not sc["late"]:
                    assert bal == bonuses, (mid, bal, sums)
                    assert sums.get((mid, "expire"), 0) == 0
                else:
                    # what is left is what did not lapse of the signup and referral credits
                    lapsed = raw(store.conn, """SELECT coalesce(sum(u.points), 0) FROM lot_uses u
                                         JOIN ledger e ON e.id = u.entry_id AND e.kind = 'expire'
                                         JOIN lots l ON l.id = u.lot_id
                                         JOIN ledger c ON c.id = l.entry_id AND c.kind IN ('signup', 'referral')
                                         WHERE c.member_id = ?""", mid)[0][0]
                    assert bal == bonuses - lapsed, (mid, bal, bonuses, lapsed, sums)
                assert bal >= 0
            # a referral bonus is paid at most once per referee, and never reversed
            assert raw(store.conn, "SELECT count(*) FROM ledger WHERE kind = 'referral' AND points <= 0") == [(0,)]
            for mid, ref in zip(sc["ids"], sc["referrers"]):
                paid = raw(store.conn, "SELECT count(*) FROM ledger WHERE kind = 'referral' AND note LIKE ?", f"%{mid}")[0][0]
                has_sale = any(m == mid and a > 0 for _, m, a, _ in sc["sales"])
                assert paid == (1 if ref is not None and has_sale else 0)

            assert checks.run_checks(store) == []
        finally:
            store.close()


# -- imports: twice == once == the counter ----------------------------------------------------------


def csv_text(sc) -> str:
    """Sales in date order, each refund after its sale (refunds dated by their own date)."""
    rows = []
    for sid, mid, amount, offset in sc["sales"]:
        rows.append((day(offset), 0, sid, mid, amount, "sale", ""))
    for rid, sid, mid, amount, when in sc["refunds"]:
        rows.append((day(when, 30), 1, rid, mid, amount, "refund", sid))
    # sort by date; a refund never sorts before its sale (its date is later, or equal with a later minute)
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    lines = ["purchase_id,member_id,purchased_at,amount,kind,refund_of"]
    for at, _, pid, mid, amount, kind, ref in rows:
        lines.append(f"{pid},{mid},{at},{amount // 100}.{amount % 100:02d},{kind},{ref}")
    return "\n".join(lines) + "\n", rows


def state(store):
    return (ledger_by_member(store), balances(store),
            raw(store.conn, "SELECT purchase_id, member_id, kind, amount, refund_of, points FROM purchases ORDER BY purchase_id"))


@SETTINGS
@pytest.mark.any_backend
@given(sc=scenarios())
def test_import_twice_is_import_once_is_the_counter(sc):
    text, rows = csv_text(sc)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "purchases.csv"
        path.write_text(text)
        once, twice, counter = (open_shop(tmp / f"{name}.db", sc) for name in ("once", "twice", "counter"))
        try:
            options = importer.ImportOptions(today="2025-01-01")
            first = importer.import_purchases(once, path, options)
            assert first["imported"] == first["rows"] == len(rows)
            importer.import_purchases(twice, path, options)
            again = importer.import_purchases(twice, path, options)
            assert again["duplicates"] == again["rows"] == len(rows)
            assert (again["imported"], again["points_awarded"], again["points_reversed"]) == (0, 0, 0)
            assert state(twice) == state(once)

            for at, _, pid, mid, amount, kind, ref in rows:
                if kind == "sale":
                    purchases.add_sale(counter, mid, amount, at, pid, None)
                else:
                    purchases.refund(counter, ref, amount, at, pid)
            assert state(counter) == state(once)
            for s in (once, twice, counter):
                assert checks.run_checks(s) == []
        finally:
            for s in (once, twice, counter):
                s.close()
