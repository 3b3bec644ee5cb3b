"""A/B experiments (issue 19): `program experiment start/stop/list`, earning under a variant on every
path (counter, import, signup, referral), the markers in `points history` and the chain, and
`report experiment` finding a known effect and reporting none where there is none.

"Today" is pinned to 2027-01-01 (the experiments start after it, as the tool requires); sales are
dated after it, written with --allow-future.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import pytest

from tests.db import connect
from tests.helpers import as_json, guards_dropped, ok, one_error_line, run

TODAY = "2027-01-01"
PROGRAMME = '[earn]\npoints_per_unit = "1"\n[tiers]\nlevels = [{ name = "Member", min = "0", multiplier = "1" }]\n'
DOUBLE = '[earn]\npoints_per_unit = "2"\n'


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    """The CLI's today (cli.common.today, read at call time) is 2027-01-01. Every CLI module is
    imported first: one first imported under the patch would keep the pinned day for later tests."""
    import importlib
    import pkgutil

    from loyalty_cli import cli
    from loyalty_cli.cli import common

    for module in pkgutil.iter_modules(cli.__path__):
        importlib.import_module(f"loyalty_cli.cli.{module.name}")
    monkeypatch.setattr(common, "today", lambda: TODAY)


def in_variant(name: str, member_id: str, share: float) -> bool:
    """The documented assignment, computed here independently."""
    x = int.from_bytes(hashlib.sha256(f"{name}\0{member_id}".encode()).digest()[:8], "big")
    return x / 2**64 < share


def shop(db, tmp_path, members: int = 0, programme: str = PROGRAMME):
    ok(db, "-q", "program", "load", write(tmp_path / "program.toml", programme))
    if members:
        lines = ["member_id,name,joined_on"] + [f"M{i:04d},Member {i},2026-06-01" for i in range(1, members + 1)]
        ok(db, "-q", "members", "import", write(tmp_path / "members.csv", "\n".join(lines) + "\n"))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def start(db, tmp_path, name="dbl", variant=DOUBLE, share="0.5", from_="2027-01-04"):
    return run(db, "program", "experiment", "start", name, write(tmp_path / f"{name}.toml", variant),
               "--share", share, "--from", from_)


def group_of(members: int, name="dbl", share=0.5) -> tuple[list[str], list[str]]:
    ids = [f"M{i:04d}" for i in range(1, members + 1)]
    return [m for m in ids if not in_variant(name, m, share)], [m for m in ids if in_variant(name, m, share)]


# -- start, stop, list: what is refused ---------------------------------------------------------
def test_start_list_stop(db, tmp_path):
    shop(db, tmp_path)
    result = start(db, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "experiment dbl starts on 2027-01-04: 50% of members earn under dbl.toml\n"
    listed = as_json(db, "program", "experiment", "list")
    assert listed == [{"name": "dbl", "share": "0.5", "from": "2027-01-04", "stopped_from": None,
                       "variant": {"earn": {"points_per_unit": "2"}}, "started_at": listed[0]["started_at"],
                       "source": "dbl.toml"}]
    stopped = ok(db, "program", "experiment", "stop", "dbl", "--at", "2027-02-01")
    assert stopped.stdout == "experiment dbl stops on 2027-02-01: sales from then on earn under the programme\n"
    assert as_json(db, "program", "experiment", "list")[0]["stopped_from"] == "2027-02-01"
    text = ok(db, "program", "experiment", "list").stdout
    assert "dbl" in text and "2027-02-01" in text and '{"earn":{"points_per_unit":"2"}}' in text
    ok(db, "db", "check")


def test_what_a_start_refuses(db, tmp_path):
    shop(db, tmp_path, members=2)
    past = start(db, tmp_path, from_="2026-12-31")
    assert past.exit_code == 1
    assert one_error_line(past) == ("Error: experiment dbl cannot start on 2026-12-31, before today (2027-01-01): "
                                    "points already awarded never change (start it today or later)")
    assert start(db, tmp_path, share="1").exit_code == 2
    assert "--share must be a decimal between 0 and 1" in one_error_line(start(db, tmp_path, share="0"))
    bad = start(db, tmp_path, variant='[tiers]\nhold_months = 1\n')
    assert bad.exit_code == 3
    assert one_error_line(bad) == ("Error: dbl.toml: tiers cannot be changed by an experiment: a variant changes "
                                   "what members earn ([earn] and [[campaigns]] only), tiers, expiry and the rest "
                                   "stay the same for both groups")
    bad_value = start(db, tmp_path, variant='[earn]\npoints_per_unit = "-1"\n')
    assert bad_value.exit_code == 3 and "earn.points_per_unit" in one_error_line(bad_value)
    assert start(db, tmp_path, variant='[earn\n').exit_code == 3  # not TOML
    assert start(db, tmp_path, variant='[earn]\nnot_a_key = 1\n').exit_code == 3
    assert as_json(db, "program", "experiment", "list") == []  # nothing written by any of them
    # a day that already has sales (written ahead with --allow-future) cannot change its rules
    ok(db, "purchases", "add", "M0001", "10.00", "--at", "2027-01-05", "--allow-future")
    taken = start(db, tmp_path, from_="2027-01-05")
    assert taken.exit_code == 1 and "1 sale, refunds or bonuses dated 2027-01-05 or later" in one_error_line(taken)
    assert start(db, tmp_path, from_="2027-01-06").exit_code == 0
    second = start(db, tmp_path, name="other", from_="2027-03-01")
    assert second.exit_code == 1
    assert one_error_line(second) == ("Error: experiment dbl is running (from 2027-01-06, not stopped): one "
                                      "experiment at a time; stop it first: loyalty program experiment stop dbl "
                                      "--at 2027-03-01")
    again = start(db, tmp_path, from_="2027-09-01")
    assert again.exit_code == 1 and "experiment dbl already exists" in one_error_line(again)
    assert run(db, "program", "experiment", "stop", "dbl", "--at", "2027-01-02").exit_code == 1  # before its start
    assert run(db, "program", "experiment", "stop", "nope").exit_code == 1
    ok(db, "program", "experiment", "stop", "dbl", "--at", "2027-03-01")
    assert run(db, "program", "experiment", "stop", "dbl", "--at", "2027-04-01").exit_code == 1  # stopped once
    assert start(db, tmp_path, name="other", from_="2027-03-01").exit_code == 0  # after the first one: fine
    ok(db, "db", "check")


# -- earning under the variant ------------------------------------------------------------------
def test_assignment_is_the_documented_hash_and_about_the_share():
    from loyalty_cli.experiments import Experiment
    from loyalty_cli.store.experiments import Row

    e = Experiment(Row(1, "trial", "{}", "0.3", "2027-01-01", None, "x", "x"))
    ids = [f"C{i}" for i in range(20_000)]
    chosen = [m for m in ids if e.in_variant(m)]
    assert chosen == [m for m in ids if in_variant("trial", m, 0.3)]  # the formula, bit for bit
    assert 0.29 < len(chosen) / len(ids) < 0.31
    again = Experiment(Row(1, "trial", "{}", "0.3", "2027-01-01", None, "x", "x"))
    assert [m for m in ids if again.in_variant(m)] == chosen  # deterministic
    other = Experiment(Row(2, "trial2", "{}", "0.3", "2027-01-01", None, "x", "x"))
    assert [m for m in ids if other.in_variant(m)] != chosen  # the name decides


def statement(db, member_id: str) -> list[tuple]:
    return [(e["kind"], e["points"], e["experiment"]) for e in as_json(db, "points", "history", member_id)]


def test_variant_members_earn_under_it_from_start_to_stop_and_history_says_so(db, tmp_path):
    shop(db, tmp_path, members=20)
    control, variant = group_of(20)
    assert control and variant
    ok(db, "-q", "purchases", "add", variant[0], "10.00", "--at", "2027-01-03", "--allow-future")  # before it
    assert start(db, tmp_path, from_="2027-01-04").exit_code == 0
    ok(db, "-q", "program", "experiment", "stop", "dbl", "--at", "2027-01-10")
    for member_id in (control[0], variant[0]):
        for day in ("2027-01-04", "2027-01-09", "2027-01-10"):
            ok(db, "-q", "purchases", "add", member_id, "10.00", "--at", day, "--allow-future")
    assert statement(db, control[0]) == [("earn", 10, None)] * 3
    assert statement(db, variant[0]) == [("earn", 10, None), ("earn", 20, "dbl"), ("earn", 20, "dbl"),
                                         ("earn", 10, None)]
    lines = ok(db, "points", "history", variant[0]).stdout.splitlines()
    assert lines[1].split() == ["#", "at", "kind", "points", "balance", "ref", "note", "experiment"]
    assert [line.rstrip().endswith(" dbl") for line in lines[3:]] == [False, True, True, False]
    assert "experiment" not in ok(db, "points", "history", control[0]).stdout
    ok(db, "db", "check")


def test_a_refund_of_a_variant_sale_reverses_what_it_earned(db, tmp_path):
    shop(db, tmp_path, members=20)
    _, variant = group_of(20)
    start(db, tmp_path)
    ok(db, "purchases", "add", variant[0], "30.00", "--id", "S1", "--at", "2027-01-05", "--allow-future")
    r = as_json(db, "purchases", "refund", "S1", "10.00", "--at", "2027-01-06", "--allow-future")
    assert r["points_reversed"] == 20  # a third of the 60 the variant gave
    r = as_json(db, "purchases", "refund", "S1", "--at", "2027-01-07", "--allow-future")
    assert r["points_reversed"] == 40 and r["balance"] == 0
    ok(db, "db", "check")


def test_members_joining_later_are_included_with_their_signup_and_referral(db, tmp_path):
    shop(db, tmp_path, members=0)
    variant_doc = '[earn]\nsignup_bonus = 100\nreferral_bonus = 50\npoints_per_unit = "2"\n'
    assert start(db, tmp_path, variant=variant_doc).exit_code == 0
    ids = [f"N{i}" for i in range(1, 40)]
    late_variant = next(m for m in ids if in_variant("dbl", m, 0.5))
    late_control = next(m for m in ids if not in_variant("dbl", m, 0.5))
    for m in (late_variant, late_control):
        ok(db, "-q", "members", "add", "--id", m, "--name", m, "--joined", "2027-01-05", "--allow-future")
    friend = next(m for m in ids if m not in (late_variant, late_control) and not in_variant("dbl", m, 0.5))
    ok(db, "-q", "members", "add", "--id", friend, "--name", "F", "--joined", "2027-01-06", "--referred-by",
       late_variant, "--allow-future")
    ok(db, "-q", "purchases", "add", friend, "10.00", "--at", "2027-01-07", "--allow-future")
    assert statement(db, late_control) == []
    assert statement(db, friend) == [("earn", 10, None)]
    assert statement(db, late_variant) == [("signup", 100, "dbl"), ("referral", 50, "dbl")]
    report = as_json(db, "report", "experiment", "dbl", "--as-of", "2027-01-31")
    assert report["groups"]["variant"]["members"] == 1 and report["groups"]["control"]["members"] == 2
    assert report["groups"]["variant"]["points_total"] == 150
    ok(db, "db", "check")


def sales_file(path, members: int, seed: int, effect_cents: int, days: int = 56, sales: int = 4):
    """`sales` sales per member over `days` days from 2027-01-04, amounts 5.00-60.00 at random (seeded);
    variant members' sales `effect_cents` larger each."""
    rng = random.Random(seed)
    lines = ["purchase_id,member_id,purchased_at,amount"]
    n = 0
    for i in range(1, members + 1):
        member_id = f"M{i:04d}"
        for _ in range(sales):
            n += 1
            cents = rng.randint(500, 6000) + (effect_cents if in_variant("dbl", member_id, 0.5) else 0)
            at = (dt.date(2027, 1, 4) + dt.timedelta(days=rng.randrange(days))).isoformat()
            lines.append(f"T{n:06d},{member_id},{at}T10:00,{cents // 100}.{cents % 100:02d}")
    return write(path, "\n".join(lines) + "\n")


def test_a_variant_that_raises_spend_is_found_with_the_known_effect_inside_its_interval(db, tmp_path):
    shop(db, tmp_path, members=400)
    start(db, tmp_path)
    ok(db, "-q", "purchases", "import", sales_file(tmp_path / "sales.csv", 400, seed=19, effect_cents=500),
       "--allow-future")
    r = as_json(db, "report", "experiment", "dbl", "--as-of", "2027-03-01")
    spend = r["differences"]["spend"]
    assert spend["excludes_zero"] and float(spend["ci_low"]) > 0
    assert float(spend["ci_low"]) < 20.00 < float(spend["ci_high"])  # 4 sales × 5.00 more, the truth
    assert r["verdict"].startswith(f"variant members spent {spend['difference']} more each (95% CI "
                                   f"{spend['ci_low']} to {spend['ci_high']}); their points cost ")
    assert r["more_weeks_needed"] is None
    c, v = r["groups"]["control"], r["groups"]["variant"]
    assert c["members"] + v["members"] == 400 and 160 < v["members"] < 240
    assert c["sales_per_member"] == v["sales_per_member"] == "4.00"
    # the variant's double points cost more, and the figures add up to the ledger
    assert float(r["differences"]["points_cost"]["ci_low"]) > 0
    assert c["points_total"] + v["points_total"] == sum(e["points"] for m in range(1, 401)
                                                        for e in as_json(db, "points", "history", f"M{m:04d}"))
    text = ok(db, "report", "experiment", "dbl", "--as-of", "2027-03-01").stdout
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "spend per member" in text and r["verdict"][:40] in text.replace("\n", " ")
    assert all(line == line.rstrip() for line in text.splitlines())  # no trailing blanks where no difference
    sales = next(line for line in text.splitlines() if line.startswith("sales per member")).split()
    assert sales[3:6] == ["4.00", "4.00", "0.00"]  # equal figures: a difference of 0.00, with no sign
    ok(db, "db", "check")


def test_no_effect_reports_no_difference_and_the_weeks_needed(db, tmp_path):
    shop(db, tmp_path, members=400)
    start(db, tmp_path)
    ok(db, "-q", "purchases", "import", sales_file(tmp_path / "sales.csv", 400, seed=7, effect_cents=0),
       "--allow-future")
    r = as_json(db, "report", "experiment", "dbl", "--as-of", "2027-03-01")
    spend = r["differences"]["spend"]
    assert not spend["excludes_zero"] and float(spend["ci_low"]) < 0 < float(spend["ci_high"])
    assert r["verdict"].startswith("no difference distinguishable from chance yet: ")
    weeks = r["more_weeks_needed"]
    if weeks is not None:  # from the observed t: weeks so far × ((1.96 + 0.84) / |t|)² − weeks so far
        so_far = r["days"] / 7
        assert weeks == max(1, -(-(so_far * ((1.959963984540054 + 0.8416212335729143) / abs(spend["t"])) ** 2
                                   - so_far) // 1)) or abs(spend["t"]) < 0.01
        assert r["verdict"].endswith(f"{weeks} more weeks at this rate would be needed")


@pytest.mark.any_backend
def test_the_import_and_the_counter_earn_alike(tmp_path):
    from tests.helpers import fresh_db

    a, b = fresh_db(tmp_path / "a.db"), fresh_db(tmp_path / "b.db")
    rows = ["purchase_id,member_id,purchased_at,amount,category"]
    for db in (a, b):
        shop(db, tmp_path, members=30, programme=PROGRAMME + '[[earn.categories]]\nname = "wine"\nmultiplier = "0"\n')
        assert start(db, tmp_path, variant='[earn]\npoints_per_unit = "1.5"\nfirst_purchase_multiplier = "3"\n'
                     ).exit_code == 0
    rng = random.Random(3)
    for n in range(1, 121):
        rows.append(f"P{n},M{rng.randint(1, 30):04d},2027-01-{4 + n % 20:02d}T1{n % 10}:00,"
                    f"{rng.randint(1, 9000) / 100:.2f},{rng.choice(['', 'wine', 'food'])}")
    ok(a, "-q", "purchases", "import", write(tmp_path / "p.csv", "\n".join(rows) + "\n"), "--allow-future")
    for line in rows[1:]:  # in the file's order, as the import records them (the first sale is the first recorded)
        pid, mid, at, amount, category = line.split(",")
        ok(b, "-q", "purchases", "add", mid, amount, "--id", pid, "--at", at, "--allow-future",
           *(("--category", category) if category else ()))
    for m in range(1, 31):
        assert statement(a, f"M{m:04d}") == statement(b, f"M{m:04d}")
    marked = sum(1 for m in range(1, 31) for e in statement(a, f"M{m:04d}") if e[2] == "dbl")
    assert marked > 10
    ok(a, "db", "check")
    ok(b, "db", "check")


# -- the chain ----------------------------------------------------------------------------------
def check_problems(db) -> tuple[int, list[str]]:
    result = run(db, "db", "check", "--json", "--full")
    return result.exit_code, [p["message"] for p in json.loads(result.stdout)["problems"]]


def tampered_shop(db, tmp_path):
    shop(db, tmp_path, members=20)
    start(db, tmp_path)
    control, variant = group_of(20)
    ok(db, "-q", "purchases", "add", variant[0], "10.00", "--id", "V1", "--at", "2027-01-05", "--allow-future")
    ok(db, "-q", "purchases", "add", control[0], "10.00", "--id", "C1", "--at", "2027-01-05", "--allow-future")
    assert check_problems(db) == (0, [])
    return control, variant


def test_a_share_changed_behind_the_tools_back_is_found(db, tmp_path):
    tampered_shop(db, tmp_path)
    with connect(db) as conn, guards_dropped(conn, "experiments"):
        conn.execute("UPDATE experiments SET share = '0.9' WHERE name = 'dbl'")
    code, problems = check_problems(db)
    assert code == 4
    assert any("experiment dbl: share is '0.9' but the chain recorded '0.5'" in p for p in problems), problems


def test_a_forged_or_removed_marker_is_found(db, tmp_path):
    control, variant = tampered_shop(db, tmp_path)
    with connect(db) as conn:
        control_entry = conn.execute("SELECT id FROM ledger WHERE ref = 'C1'").fetchone()[0]
        variant_entry = conn.execute("SELECT id FROM ledger WHERE ref = 'V1'").fetchone()[0]
        conn.execute("INSERT INTO variant_entries (id, experiment) VALUES (?, 'dbl')", (control_entry,))
    code, problems = check_problems(db)
    assert code == 4
    assert any(f"entry {control_entry} is marked as earned under experiment dbl, but {control[0]} is in its "
               "control group" in p for p in problems), problems
    assert any("variant_entries has 1 more rows than the chain recorded" in p for p in problems), problems
    with connect(db) as conn, guards_dropped(conn, "variant_entries"):
        conn.execute("DELETE FROM variant_entries")
    code, problems = check_problems(db)
    assert code == 4
    assert any(f"entry {variant_entry} (earn, 2027-01-05) of {variant[0]}, in experiment dbl's variant group, is not "
               "marked" in p for p in problems), problems
    assert any(f"variant marker of entry {variant_entry} (variant_entries) is missing" in p for p in problems), problems
