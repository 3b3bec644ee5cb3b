"""Option values are checked without loading pydantic for plain ones.

`loyalty_cli.cli.coercion` answers for the values that need no judgement and for
every integer (in the shop's words); Typer's own adapter takes everything else.
These run the real CLI in a child process, where what was imported can be seen.
"""

import json




def test_plain_values_do_not_load_pydantic(loyalty_proc, tmp_path):
    db = tmp_path / "shop.db"
    assert loyalty_proc("--db", db, "init").returncode == 0
    assert loyalty_proc("--db", db, "members", "add", "--id", "M1", "--name", "Ana").returncode == 0
    csv = tmp_path / "p.csv"
    csv.write_text("purchase_id,member_id,purchased_at,amount\nP1,M1,2026-03-01T10:00,12.50\n")
    code = (
        "import sys, runpy\n"
        "sys.argv = ['loyalty'] + sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_module('loyalty_cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "sys.stderr.write('PYDANTIC=%s\\n' % ('pydantic' in sys.modules))\n"
    )
    import subprocess
    import sys

    def loaded(*args):
        done = subprocess.run([sys.executable, "-c", code, "--db", str(db), *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path)
        return done.stdout, done.stderr.strip().splitlines()[-1]

    out, flag = loaded("purchases", "import", csv, "--map", "amount=amount", "--json")
    assert json.loads(out)["imported"] == 1 and flag == "PYDANTIC=False"
    out, flag = loaded("members", "list", "--limit", "1", "--json")
    assert [m["member_id"] for m in json.loads(out)] == ["M1"] and flag == "PYDANTIC=False"
    out, flag = loaded("dashboard", "--period", "7", "--as-of", "2026-03-02", "--json")
    assert json.loads(out)["period_days"] == 7 and flag == "PYDANTIC=False"


def test_bad_values_get_plain_messages(run):
    assert run("members", "add", "--id", "M1", "--name", "Ana").exit_code == 0
    below = run("members", "list", "--limit", "0")
    assert below.exit_code == 2 and below.stderr == "Error: --limit must be a positive whole number, got 0\n"
    word = run("members", "list", "--limit", "x")
    assert word.exit_code == 2 and word.stderr == "Error: --limit must be a positive whole number, got x\n"
    negative = run("members", "list", "--limit", "-3")
    assert negative.exit_code == 2 and "--limit" in negative.stderr
    fine = run("members", "list", "--limit", "1", "--json")
    assert fine.exit_code == 0 and len(json.loads(fine.stdout)) == 1


def test_numbers_too_large_for_the_database_are_usage_errors(run):
    assert run("members", "add", "--id", "M1", "--name", "Ana").exit_code == 0
    for args in (("points", "award", "M1", "5000000000000000000", "--reason", "typo"),
                 ("points", "award", "M1", "2000000000000", "--reason", "typo"),
                 ("points", "adjust", "M1", "-99999999999999999999", "--reason", "typo"),
                 ("rewards", "add", "X", "--name", "X", "--cost", "99999999999999999999"),
                 ("rewards", "add", "X", "--name", "X", "--cost", "10", "--stock", "99999999999999"),
                 ("report", "churn", "--days", "999999"),
                 ("report", "churn", "--days", "-1"),
                 ("points", "history", "M1", "--limit", "99999999999999999999"),
                 ("points", "award", "M1", "9" * 5000, "--reason", "a very long typo")):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert "Traceback" not in result.output and "unexpected" not in result.stderr
    assert run("points", "award", "M1", "1000000000000", "--reason", "the most one entry may move").exit_code == 0
    assert run("db", "check").exit_code == 0


def test_reports_at_the_end_of_the_calendar(run):
    assert run("members", "add", "--id", "M1", "--name", "Ana", "--birthday", "1990-12-25").exit_code == 0
    result = run("report", "birthdays", "--as-of", "9999-12-20", "--days", "30", "--json")
    assert result.exit_code == 0 and "9999-12-25" in result.stdout
