"""Property tests of the ledger (SPEC §6, §7): random counter activity against a small pure model.

Hypothesis draws the programme's expiry rule and a sequence of award, adjust (±),
redeem, transfer, expire, reward redeem, voucher use and voucher cancel across
three members, with dates that only move forward. The library is called
directly (no CLI) for speed. Refusals (`LoyaltyError`) are allowed, must be
exactly the ones the model predicts, and must leave the database unchanged.

The model keeps, per member, the unconsumed points per expiry date E (None =
never): credits add a lot; a debit first writes off every lot with E before its
date, then takes the earliest E first (never-expiring last); transfers and
voucher cancels keep the E of the points they move (a cancel then writes off
those of the returned points that have lapsed by its date, SPEC §6; the
member's other lapsed points wait for the next debit or expiry run). After every step the
model's balance must be the database's; after every sequence every ledger
invariant must hold and `db check` must find nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loyalty_cli import checks, members, points, program, rewards
from loyalty_cli.errors import LoyaltyError
from loyalty_cli.store import Store
from tests.db import balance, count, lots, raw, rows
from tests.helpers import fresh_db
from tests.db import members as db_members

MEMBERS = ("M1", "M2", "M3")
REWARDS = {"MUG": (40, 3), "TEA": (25, None)}  # code: (cost, stock)
TRANSFER_LIMIT = 150
START = dt.date(2025, 1, 1)
# Credits are drawn more often than debits, so that debits mostly succeed and lots get consumed.
OPS = ("award", "award", "award", "adjust_up", "adjust_down", "redeem", "redeem", "transfer", "transfer", "expire",
       "reward", "reward", "use", "cancel", "cancel")


# -- the model ---------------------------------------------------------------------------------
def add_months(date: dt.date, months: int) -> dt.date:
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(date.day, calendar.monthrange(year, month)[1]))


def order(e):
    return (e is None, e or "")


class Model:
    def __init__(self, months: int, round_to: str):
        self.months = months
        self.round_to = round_to
        self.lots = {m: {} for m in MEMBERS}  # member -> {E: unconsumed points}
        self.stock = {code: stock for code, (_cost, stock) in REWARDS.items()}
        self.vouchers: dict[str, dict] = {}  # code -> {member, reward, taken, status}
        self.sent: dict[tuple, int] = {}  # (member, YYYY-MM) -> points transferred out

    def expiry(self, date: str):
        if self.months == 0:
            return None
        e = add_months(dt.date.fromisoformat(date), self.months)
        if self.round_to == "month_end":
            e = e.replace(day=calendar.monthrange(e.year, e.month)[1])
        return e.isoformat()

    def balance(self, m) -> int:
        return sum(self.lots[m].values())

    def add(self, m, lots: dict) -> None:
        for e, p in lots.items():
            if p:
                self.lots[m][e] = self.lots[m].get(e, 0) + p

    def lapsed(self, m, date: str) -> dict:
        return {e: p for e, p in self.lots[m].items() if e is not None and e < date and p > 0}

    def write_off(self, m, date: str) -> int:
        gone = self.lapsed(m, date)
        for e in gone:
            del self.lots[m][e]
        return sum(gone.values())

    def write_off_returned(self, m, date: str, returned: dict) -> int:
        """A cancelled voucher's returned points whose E is before the date (not the member's other lapsed points)."""
        gone = 0
        for e, p in returned.items():
            if e is not None and e < date and p > 0:
                self.lots[m][e] -= p
                if not self.lots[m][e]:
                    del self.lots[m][e]
                gone += p
        return gone

    def can_debit(self, m, date: str, pts: int) -> bool:
        return self.balance(m) - sum(self.lapsed(m, date).values()) >= pts

    def debit(self, m, date: str, pts: int) -> dict:
        """Write off lapsed lots, then take `pts` earliest-E first; returns {E: taken}."""
        self.write_off(m, date)
        taken = {}
        for e in sorted(self.lots[m], key=order):
            if pts == 0:
                break
            take = min(pts, self.lots[m][e])
            if take:
                taken[e] = take
                self.lots[m][e] -= take
                pts -= take
        assert pts == 0
        self.lots[m] = {e: p for e, p in self.lots[m].items() if p > 0}
        return taken

    def expiring(self, m) -> list[dict]:
        return [{"date": e, "points": p} for e, p in sorted(self.lots[m].items(), key=lambda kv: order(kv[0])) if p > 0]


# -- the database side -------------------------------------------------------------------------
def snapshot(store):
    c = store.conn
    return (
        count(c, "ledger"),
        [(m.member_id, m.balance) for m in db_members(c)],
        [(lot.id, lot.remaining) for lot in lots(c)],
        count(c, "lot_uses"),
        [(v.code, v.status) for v in rows(c, "vouchers")],
        [(r.code, r.stock) for r in rows(c, "rewards")],
    )


def assert_invariants(store, model: Model, last_date: str) -> None:
    c = store.conn
    sums = dict(raw(c, "SELECT member_id, sum(points) FROM ledger GROUP BY member_id"))
    for m in MEMBERS:
        total = sums.get(m, 0)
        cached = balance(c, m)
        shown = points.balance(store, m)
        assert cached == total == shown["balance"] == model.balance(m), (m, cached, total, shown, model.lots[m])
        assert total >= 0
        assert shown["expiring"] == model.expiring(m)
        assert sum(e["points"] for e in shown["expiring"]) == total
        # history's running balance ends at the balance and never dips below zero
        hist = points.history(store, m)
        assert [h["balance_after"] for h in hist] == list(itertools.accumulate(h["points"] for h in hist))
        assert all(h["balance_after"] >= 0 for h in hist)
    for lot_id, size, remaining, used in raw(
            c, "SELECT l.id, l.points, l.remaining, coalesce((SELECT sum(points) FROM lot_uses u WHERE u.lot_id = l.id), 0) "
            "FROM lots l"):
        assert 0 <= remaining <= size, lot_id
        assert remaining == size - used, lot_id
    # expire is idempotent: a second run for the same date writes nothing
    expected = {m: sum(model.lapsed(m, last_date).values()) for m in MEMBERS}
    first = points.expire(store, last_date)
    for m in MEMBERS:
        model.write_off(m, last_date)
    assert (first["members"], first["points"]) == (sum(1 for v in expected.values() if v), sum(expected.values()))
    n = count(c, "ledger")
    again = points.expire(store, last_date)
    assert (again["members"], again["points"]) == (0, 0)
    assert count(c, "ledger") == n
    assert checks.run_checks(store) == []
    for m in MEMBERS:
        assert points.balance(store, m)["balance"] == model.balance(m)


step = st.tuples(
    st.sampled_from(OPS),
    st.integers(0, len(MEMBERS) - 1),  # member
    st.integers(0, 4),                 # other member (4: the member themself) / reward / voucher choice
    st.integers(1, 120),               # points
    # days after the previous step: mostly a few, sometimes months
    st.one_of(st.integers(0, 6), st.integers(0, 9), st.integers(0, 12), st.integers(20, 120)),
)


@pytest.mark.any_backend
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(months=st.sampled_from([12, 2, 0]), round_to=st.sampled_from(["month_end", "day"]),
       steps=st.lists(step, min_size=10, max_size=40))
def test_random_activity_keeps_every_ledger_invariant(tmp_path_factory, months, round_to, steps):
    path = fresh_db(tmp_path_factory.mktemp("prop") / "shop.db")  # (a new PostgreSQL database on that run)
    store = Store.open(path)
    try:
        _play(store, Model(months, round_to), months, round_to, steps)
    finally:
        store.close()


def _play(store, model: Model, months: int, round_to: str, steps) -> None:
    for key, value in (("expiry.months", str(months)), ("expiry.round_to", f'"{round_to}"'),
                       ("transfers.max_points_per_month", str(TRANSFER_LIMIT))):
        program.set_key(store, key, value, "2000-01-01", "2000-01-01")
    for m in MEMBERS:
        members.add(store, member_id=m, name=f"Member {m}", joined_on=START.isoformat())
    for code, (cost, stock) in REWARDS.items():
        rewards.add(store, code, code.title(), cost, stock)

    day = START
    codes: list[str] = []
    for op, i, j, pts, gap in steps:
        day += dt.timedelta(days=gap)
        date = day.isoformat()
        at = date + "T10:00:00"
        m = MEMBERS[i]
        other = m if j == 4 else MEMBERS[(i + 1 + j % 2) % len(MEMBERS)]
        if op in ("award", "adjust_up"):
            pts += 20  # credits are larger than debits on average, so that most debits succeed
        elif op in ("adjust_down", "redeem", "transfer"):
            pts = (pts + 1) // 2
        before = snapshot(store)
        expect_refusal = False
        apply = None  # what the model does when the database accepts

        if op in ("award", "adjust_up"):
            def apply(m=m, pts=pts, date=date):
                model.add(m, {model.expiry(date): pts})
            call = (lambda: points.award(store, m, pts, at, "prop", "tester")) if op == "award" else (
                lambda: points.adjust(store, m, pts, at, "prop", "tester"))
        elif op in ("adjust_down", "redeem"):
            expect_refusal = not model.can_debit(m, date, pts)

            def apply(m=m, pts=pts, date=date):
                model.debit(m, date, pts)
            call = (lambda: points.adjust(store, m, -pts, at, "prop", "tester")) if op == "adjust_down" else (
                lambda: points.redeem(store, m, pts, None, at, "tester"))
        elif op == "transfer":
            month = date[:7]
            expect_refusal = (m == other or model.sent.get((m, month), 0) + pts > TRANSFER_LIMIT
                              or not model.can_debit(m, date, pts))

            def apply(m=m, other=other, pts=pts, date=date, month=month):
                taken = model.debit(m, date, pts)
                model.add(other, taken)
                model.sent[(m, month)] = model.sent.get((m, month), 0) + pts
            call = lambda: points.transfer(store, m, other, pts, at, "tester")  # noqa: E731
        elif op == "expire":
            lapsed = {x: sum(model.lapsed(x, date).values()) for x in MEMBERS}

            def apply(date=date):
                for x in MEMBERS:
                    model.write_off(x, date)
            call = lambda: points.expire(store, date)  # noqa: E731
        elif op == "reward":
            code = sorted(REWARDS)[j % len(REWARDS)]
            cost = REWARDS[code][0]
            expect_refusal = model.stock[code] == 0 or not model.can_debit(m, date, cost)
            result_box = {}

            def apply(m=m, code=code, cost=cost, date=date):
                taken = model.debit(m, date, cost)
                if model.stock[code] is not None:
                    model.stock[code] -= 1
                model.vouchers[result_box["voucher"]] = {"member": m, "reward": code, "taken": taken, "status": "issued"}
                codes.append(result_box["voucher"])

            def call(m=m, code=code):
                r = points.redeem(store, m, None, code, at, "tester")
                result_box["voucher"] = r["voucher"]
                return r
        else:  # use / cancel a voucher
            if not codes:
                continue
            code = codes[(i * 3 + j + pts) % len(codes)]
            v = model.vouchers[code]
            expect_refusal = v["status"] != "issued"
            if op == "use":
                def apply(v=v):
                    v["status"] = "used"
                call = lambda: rewards.use(store, code, at)  # noqa: E731
            else:
                def apply(v=v, date=date):
                    v["status"] = "cancelled"
                    model.add(v["member"], v["taken"])
                    model.write_off_returned(v["member"], date, v["taken"])
                    if model.stock[v["reward"]] is not None:
                        model.stock[v["reward"]] += 1
                call = lambda: rewards.cancel(store, code, at, "tester")  # noqa: E731

        try:
            result = call()
        except LoyaltyError as exc:
            assert expect_refusal, f"{op} {m} {other} {pts} on {date} refused: {exc}; model lots {model.lots}"
            event(f"{op} refused")
            assert snapshot(store) == before, f"refused {op} changed the database"
            assert not store.conn.in_transaction
            continue
        assert not expect_refusal, f"{op} {m} {other} {pts} on {date} accepted; model lots {model.lots}"
        apply()
        event(f"{op} done")
        if op == "expire":
            assert (result["members"], result["points"]) == (sum(1 for v in lapsed.values() if v), sum(lapsed.values()))
            n = count(store.conn, "ledger")
            assert points.expire(store, date)["points"] == 0
            assert count(store.conn, "ledger") == n
        if op in ("redeem", "adjust_down", "award", "adjust_up"):
            assert result["balance"] == model.balance(m)
        if op == "reward":
            assert result["voucher"] and result["points"] == REWARDS[sorted(REWARDS)[j % len(REWARDS)]][0]
        for x in MEMBERS:
            shown = balance(store.conn, x)
            assert shown == model.balance(x), (op, x, shown, model.lots[x])
        assert {r.code: r.stock for r in rows(store.conn, "rewards")} == model.stock
        assert {v.code: v.status for v in rows(store.conn, "vouchers")} == {
            c: v["status"] for c, v in model.vouchers.items()}

    assert_invariants(store, model, (day + dt.timedelta(days=1)).isoformat())
