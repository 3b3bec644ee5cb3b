"""A property of households (issue 20): for random households, memberships, sales, awards, pooled
redemptions and merges of duplicate members (with tiers.pooling on or off), run through the command
line against a simple model,

- a pooled redemption goes through exactly when the household's current members hold enough
  points between them, and then takes exactly that many from them;
- no lot is ever consumed below zero or beyond its size;
- each household's pool equals the sum of its current members' balances, and a member who left
  keeps their own;
- the shop's points are conserved: balances add up to what was credited less what was redeemed,
  and a merge moves every point the duplicate held to the member kept (households follow it: the
  member kept takes the duplicate's place, or the duplicate leaves and the earliest member to have
  joined becomes head);
- `db check` passes.

Everything is dated within a year of the credits, so nothing expires (the model needs no dates).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db import rows
from tests.helpers import as_json, fresh_db, ok, run

MEMBERS = ("M0", "M1", "M2", "M3", "M4")
NAMES = ("LEE", "KIM")

step = st.one_of(
    st.tuples(st.just("award"), st.sampled_from(MEMBERS), st.integers(1, 300)),
    st.tuples(st.just("sale"), st.sampled_from(MEMBERS), st.integers(1, 40000)),
    st.tuples(st.just("create"), st.sampled_from(NAMES), st.sampled_from(MEMBERS)),
    st.tuples(st.just("add"), st.sampled_from(NAMES), st.sampled_from(MEMBERS)),
    st.tuples(st.just("remove"), st.sampled_from(NAMES), st.sampled_from(MEMBERS)),
    st.tuples(st.just("pooled"), st.sampled_from(MEMBERS), st.integers(1, 500)),
    st.tuples(st.just("own"), st.sampled_from(MEMBERS), st.integers(1, 200)),
    st.tuples(st.just("merge"), st.sampled_from(MEMBERS), st.sampled_from(MEMBERS)),
)


@pytest.mark.any_backend
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=4, max_size=18), pooling=st.booleans())
def test_pools_balances_and_lots_stay_consistent(tmp_path_factory, steps, pooling):
    db = fresh_db(tmp_path_factory.mktemp("households") / "shop.db")
    if pooling:
        ok(db, "-q", "program", "set", "tiers.pooling", "household", "--from", "2024-01-01")
    for mid in MEMBERS:
        ok(db, "-q", "members", "add", "--id", mid, "--name", mid, "--joined", "2025-01-01")
    balance = {mid: 0 for mid in MEMBERS}
    household: dict[str, str | None] = {mid: None for mid in MEMBERS}  # member -> the household they are in
    head: dict[str, str] = {}
    joined: dict[str, int] = {}  # member -> the step at which they joined their household
    merged: dict[str, str] = {}  # duplicate -> the member kept
    credited = redeemed = 0
    day = dt.date(2025, 2, 1)
    for n, (kind, a, b) in enumerate(steps):
        at = (day + dt.timedelta(days=n)).isoformat()
        if a in merged or b in merged:
            continue  # a merged id is an alias of the member kept: the model names members only
        if kind == "merge":
            result = run(db, "members", "merge", a, "--into", b, "--yes", "--at", at, "--json")
            assert (result.exit_code == 0) == (a != b), (result.stderr, a, b)
            if a == b:
                continue
            balance[b] += balance[a]  # every point moves, none is made or lost
            balance[a] = 0
            merged[a] = b
            name = household[a]
            if name is not None:
                household[a] = None
                if household[b] is None:  # the member kept takes the duplicate's place
                    household[b] = name
                    joined[b] = n
                    if head[name] == a:
                        head[name] = b
                elif head[name] == a:
                    left = sorted((joined[mid], mid) for mid, h in household.items() if h == name)
                    if left:
                        head[name] = left[0][1]
            continue
        if kind == "award":
            ok(db, "-q", "points", "award", a, b, "--reason", "x", "--at", at)
            balance[a] += b
            credited += b
        elif kind == "sale":
            r = as_json(db, "purchases", "add", a, f"{b // 100}.{b % 100:02d}", "--at", at)
            balance[a] += r["points"]
            credited += r["points"]
        elif kind == "create":
            result = run(db, "households", "create", a, "--head", b, "--at", at)
            expected = a not in head and household[b] is None
            assert (result.exit_code == 0) == expected, (result.stderr, a, b)
            if expected:
                head[a] = b
                household[b] = a
                joined[b] = n
        elif kind == "add":
            result = run(db, "households", "add", a, b, "--at", at)
            open_ = a in head and any(h == a for h in household.values())
            expected = open_ and household[b] is None
            assert (result.exit_code == 0) == expected, (result.stderr, a, b)
            if expected:
                household[b] = a
                joined[b] = n
        elif kind == "remove":
            others = sorted(mid for mid, h in household.items() if h == a and mid != b)
            args = ["--new-head", others[0]] if a in head and head[a] == b and others else []
            result = run(db, "households", "remove", a, b, *args, "--at", at)
            expected = household[b] == a
            assert (result.exit_code == 0) == expected, (result.stderr, a, b)
            if expected:
                household[b] = None
                if args:
                    head[a] = others[0]
        elif kind == "pooled":
            name = household[a]
            pool = sum(balance[mid] for mid, h in household.items() if h == name) if name else 0
            result = run(db, "points", "redeem", a, b, "--household", "--at", at, "--json")
            assert (result.exit_code == 0) == (name is not None and pool >= b), (result.stderr, a, b, pool)
            if result.exit_code == 0:
                import json

                doc = json.loads(result.stdout)
                assert sum(e["points"] for e in doc["entries"]) == b
                assert len({e["member_id"] for e in doc["entries"]}) == len(doc["entries"])
                for e in doc["entries"]:
                    assert household[e["member_id"]] == name  # only the household's own members' points
                    balance[e["member_id"]] -= e["points"]
                    assert e["balance"] == balance[e["member_id"]]
                redeemed += b
        else:  # a member's own redemption, as ever
            result = run(db, "points", "redeem", a, b, "--at", at)
            assert (result.exit_code == 0) == (balance[a] >= b), result.stderr
            if result.exit_code == 0:
                balance[a] -= b
                redeemed += b
    as_of = (day + dt.timedelta(days=len(steps))).isoformat()
    for lot in rows(db, "lots"):
        assert 0 <= lot.remaining <= lot.points
    shown = {mid: as_json(db, "points", "balance", mid, "--as-of", as_of)["balance"] for mid in MEMBERS}
    assert shown == balance
    assert sum(shown.values()) == credited - redeemed
    for name in head:
        doc = as_json(db, "households", "show", name, "--as-of", as_of)
        current = sorted(mid for mid, h in household.items() if h == name)
        assert sorted(m["member_id"] for m in doc["members"]) == current
        if current:
            assert doc["head"] == head[name]
        assert doc["pool"] == sum(balance[mid] for mid in current) == sum(m["balance"] for m in doc["members"])
    result = run(db, "db", "check", "--full")
    assert result.exit_code == 0, result.stderr
