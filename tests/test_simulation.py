"""A deterministic simulation, in the spirit of TigerBeetle's VOPR (small).

A seeded random workload (enrol, sale, refund, award, adjust, redeem, transfer,
voucher, expire, recalc) runs through the library; after every step the
database is compared with a tiny pure-Python model of balances and lots. A
failing seed replays identically: `LOYALTY_SIM_SEEDS=1234 pytest -k simulation`.

The model knows only the rules the simulation loads: 1 point per 1.00, round
down, signup bonus 10, expiry 12 months to the month's end, one tier.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import random

import pytest

from loyalty_cli import members, points, program, purchases, rewards, tiers
from loyalty_cli.errors import LoyaltyError
from loyalty_cli.store import Store
from tests.db import connect
from tests.helpers import fresh_db

SEEDS = [int(s) for s in os.environ["LOYALTY_SIM_SEEDS"].split(",")] if os.environ.get("LOYALTY_SIM_SEEDS") else \
    range(2000 if os.environ.get("LOYALTY_STRESS") else 200)
STEPS = 60
RULES = """
[earn]
signup_bonus = 10
[tiers]
levels = [{ name = "Member", min = "0", multiplier = "1" }]
"""


def expiry(date: dt.date) -> str:
    index = date.year * 12 + date.month - 1 + 12
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, calendar.monthrange(year, month + 1)[1]).isoformat()


class Model:
    """Balances and lots the way SPEC §6 describes them, nothing else."""

    def __init__(self):
        self.lots = {}      # member -> list of [E, remaining, sale_id]  (in credit order)
        self.balance = {}
        self.sales = {}     # pid -> dict(member, amount, points, refunded, reversed, lot)
        self.vouchers = {}  # code -> (member, [(E, points)])

    def credit(self, m, points_, date, sale=None, lots=None):
        hole = max(0, -self.balance[m])
        made = None
        for e, size, *source in (lots or [(expiry(date), points_)]):
            fill = min(hole, size)
            hole -= fill
            made = [e, size - fill, source[0] if source else sale]
            self.lots[m].append(made)
        self.balance[m] += points_
        return made

    def write_off(self, m, date, lots=None):
        """Write off the member's lapsed lots (or only those of `lots` that lapsed)."""
        lapsed = [lot for lot in (self.lots[m] if lots is None else lots) if lot[1] > 0 and lot[0] < date.isoformat()]
        total = sum(lot[1] for lot in lapsed)
        for lot in lapsed:
            if lot[2]:
                self.sales[lot[2]]["expired"] += lot[1]
            lot[1] = 0
        self.balance[m] -= total
        return total

    def consume(self, m, points_, own=None):
        """FIFO by expiry; a refund first takes back its own sale's lots (returned voucher points included)."""
        taken = []
        mine = sorted((lot for lot in self.lots[m] if own is not None and lot[2] == own), key=lambda lot: lot[0])
        order = mine + sorted((lot for lot in self.lots[m] if all(lot is not x for x in mine)), key=lambda lot: lot[0])
        for lot in order:
            take = min(points_, lot[1])
            if take:
                lot[1] -= take
                points_ -= take
                taken.append((lot[0], take, lot[2]))
        return taken

    def try_debit(self, m, points_, date):
        """A debit the tool may refuse: on refusal the model is left exactly as it was; returns None then."""
        snapshot = (self.balance[m], [lot[:] for lot in self.lots[m]], {p: dict(s) for p, s in self.sales.items()})
        try:
            return self.debit(m, points_, date)
        except LoyaltyError:
            self.balance[m], self.lots[m], self.sales = snapshot[0], [list(x) for x in snapshot[1]], snapshot[2]
            _relink(self)
            return None

    def debit(self, m, points_, date, allow_negative=False, own=None):
        self.write_off(m, date)
        if not allow_negative and self.balance[m] < points_:
            raise LoyaltyError("short")
        taken = self.consume(m, points_, own)
        self.balance[m] -= points_
        return taken


def db_state(path):
    with connect(path) as conn:
        balances = dict(conn.execute("SELECT member_id, balance FROM members"))
        sums = dict(conn.execute("SELECT member_id, sum(points) FROM ledger GROUP BY member_id"))
        lots = {}
        for member_id, e, left in conn.execute(
                "SELECT member_id, expires_on, sum(remaining) FROM lots WHERE remaining > 0 GROUP BY member_id, expires_on"):
            lots.setdefault(member_id, {})[e] = left
        return balances, sums, lots


def model_lots(model):
    out = {}
    for m, lots in model.lots.items():
        for e, left, _ in lots:
            if left:
                out.setdefault(m, {})
                out[m][e] = out[m].get(e, 0) + left
    return out


def simulate(seed, path):
    rng = random.Random(seed)
    path = fresh_db(path)  # (a new PostgreSQL database's URL on that run)
    store = Store.open(path)
    program.load(store, RULES, "sim.toml", None, "2025-01-01")
    rewards.add(store, "GIFT", "A gift", 15, None)
    model = Model()
    day = dt.date(2025, 1, 1)
    ids = []
    log = []
    try:
        for step in range(STEPS):
            day += dt.timedelta(days=rng.choice([0, 0, 1, 3, 20, 60]))
            at = day.isoformat() + "T10:00:00"
            op = rng.choice(["enrol", "sale", "sale", "sale", "refund", "award", "adjust", "redeem", "transfer",
                             "voucher", "cancel", "expire", "recalc"] if ids else ["enrol"])
            m = rng.choice(ids) if ids else None
            log.append((step, op, at))
            if op == "enrol":
                mid = f"M{len(ids) + 1}"
                members.add(store, member_id=mid, name=mid, joined_on=day.isoformat())
                ids.append(mid)
                model.lots[mid], model.balance[mid] = [], 0
                model.credit(mid, 10, day)
            elif op == "sale":
                amount = rng.randint(0, 9000)
                pid = f"P{step}"
                purchases.add_sale(store, m, amount, at, pid, None)
                pts = amount // 100
                lot = model.credit(m, pts, day, sale=pid) if pts else None
                model.sales[pid] = dict(member=m, amount=amount, points=pts, refunded=0, reversed=0, lot=lot, expired=0)
            elif op == "refund":
                open_sales = [p for p, s in model.sales.items() if s["amount"] > s["refunded"]]
                if not open_sales:
                    continue
                pid = rng.choice(open_sales)
                s = model.sales[pid]
                amount = rng.choice([s["amount"] - s["refunded"], rng.randint(1, s["amount"] - s["refunded"])])
                purchases.refund(store, pid, amount, at, f"R{step}")
                model.write_off(s["member"], day)
                target = min(s["points"] * (s["refunded"] + amount) // s["amount"], s["points"] - s["expired"])
                rev = max(0, target - s["reversed"])
                s["refunded"] += amount
                s["reversed"] += rev
                if rev:
                    model.debit(s["member"], rev, day, allow_negative=True, own=pid)
            elif op == "award":
                n = rng.randint(1, 50)
                points.award(store, m, n, at, "sim", "sim")
                model.credit(m, n, day)
            elif op == "adjust":
                n = rng.choice([-1, 1]) * rng.randint(1, 40)
                expect_refusal = False
                if n < 0:
                    expect_refusal = model.try_debit(m, -n, day) is None
                else:
                    model.credit(m, n, day)
                try:
                    points.adjust(store, m, n, at, "sim", "sim")
                    assert not expect_refusal, "the tool allowed an overdraft"
                except LoyaltyError:
                    assert expect_refusal, "the tool refused a valid adjustment"
            elif op in ("redeem", "voucher"):
                n = rng.randint(1, 60) if op == "redeem" else 15
                taken = model.try_debit(m, n, day)
                if taken is None:
                    with pytest.raises(LoyaltyError):
                        points.redeem(store, m, n if op == "redeem" else None, None if op == "redeem" else "GIFT", at, "sim")
                    continue
                r = points.redeem(store, m, n if op == "redeem" else None, None if op == "redeem" else "GIFT", at, "sim")
                if r["voucher"]:
                    model.vouchers[r["voucher"]] = (m, taken)
            elif op == "cancel":
                if not model.vouchers:
                    continue
                code = rng.choice(sorted(model.vouchers))
                owner, taken = model.vouchers.pop(code)
                grouped = {}
                for e, n, sale in taken:
                    grouped[(e, sale)] = grouped.get((e, sale), 0) + n
                rewards.cancel(store, code, at, "sim")
                before = len(model.lots[owner])
                model.credit(owner, 15, day, lots=[(e, n, sale) for (e, sale), n in grouped.items()])
                model.write_off(owner, day, lots=model.lots[owner][before:])  # only the returned points (SPEC §6)
            elif op == "transfer":
                other = rng.choice(ids)
                n = rng.randint(1, 30)
                if other == m:
                    with pytest.raises(LoyaltyError):
                        points.transfer(store, m, other, n, at, "sim")
                    continue
                taken = model.try_debit(m, n, day)
                if taken is None:
                    with pytest.raises(LoyaltyError):
                        points.transfer(store, m, other, n, at, "sim")
                    continue
                points.transfer(store, m, other, n, at, "sim")
                grouped = {}
                for e, k, _sale in taken:
                    grouped[e] = grouped.get(e, 0) + k
                model.credit(other, n, day, lots=list(grouped.items()))
            elif op == "expire":
                points.expire(store, day.isoformat())
                for mid in ids:
                    model.write_off(mid, day)
            elif op == "recalc":
                tiers.recalc(store, day.isoformat())
            balances, sums, lots = db_state(path)
            assert balances == model.balance, (seed, log[-3:])
            assert sums == {k: v for k, v in model.balance.items() if k in sums}, (seed, log[-3:])
            assert lots == model_lots(model), (seed, log[-3:])
    finally:
        store.close()


def _relink(model):
    """After restoring lots from a snapshot, point each sale at its (copied) lot again."""
    for lots in model.lots.values():
        for lot in lots:
            if lot[2]:
                model.sales[lot[2]]["lot"] = lot


@pytest.mark.any_backend
@pytest.mark.parametrize("seed", SEEDS)
def test_simulation(seed, tmp_path):
    simulate(seed, tmp_path / "sim.db")
