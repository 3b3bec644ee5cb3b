"""Plain helpers the test files share: run the CLI in-process against a database (tests/db.py
reads it back).

(conftest.py has the same as fixtures; these are for tests that take `db` as a
path and call helpers directly, which reads better in long worked examples.)
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from loyalty_cli.cli import app

RUNNER = CliRunner()


def run(db, *args, env=None):
    """The CLI in-process with `--db db`; result.exit_code, result.stdout, result.stderr apart."""
    return RUNNER.invoke(app, ["--db", str(db), *map(str, args)], env=env)


def ok(db, *args, env=None):
    """Run and insist on success."""
    result = run(db, *args, env=env)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result


def as_json(db, *args, env=None):
    """Run with --json and parse the one document on stdout."""
    return json.loads(ok(db, *args, "--json", env=env).stdout)


def one_error_line(result) -> str:
    """A failure prints nothing on stdout and exactly one `Error:` line on stderr."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    assert "Traceback" not in result.output
    return lines[0]


def fresh_db(path):
    """A new, empty database at `path`, made as `loyalty init` makes it (no other command creates
    one); returns the path."""
    from loyalty_cli.store import Store

    Store.open(path, create=True).close()
    return path


def undo_history_guards(conn) -> None:
    """Make a database (an open tests.db connection) look as it was before m007_history_guards:
    its triggers dropped and the migration no longer recorded (user_version is the caller's)."""
    from loyalty_cli.store.migrations import m007_history_guards

    for statement in m007_history_guards(conn):
        conn.execute(f"DROP TRIGGER {statement.split()[2]}")
    conn.execute("DELETE FROM migrations WHERE name = 'm007_history_guards'")


def undo_chain(conn) -> None:
    """Make a database (an open tests.db connection) look as it was before m009_chain: the chain
    and its triggers dropped and the migration no longer recorded (user_version is the caller's).
    Opening it with the tool then extends a new chain over every row it holds, as the migration
    does for a database of an earlier loyalty."""
    for trigger in ("chain_no_update", "chain_no_delete", "chain_no_replace"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DROP TABLE IF EXISTS chain")
    conn.execute("DELETE FROM migrations WHERE name = 'm009_chain'")
