"""An empty id typed where a command looks something up is a usage error (exit 2, one line, nothing
changed), as it is where a command makes something: never "purchase  not found" (exit 1)."""

from __future__ import annotations

import pytest

from tests.db import raw
from tests.helpers import ok, one_error_line, run


@pytest.mark.parametrize("args, what", [
    (["purchases", "explain", ""], "purchase id"),
    (["purchases", "refund", " "], "purchase id"),
    (["households", "show", ""], "household name"),
    (["households", "add", "", "M1"], "household name"),
    (["households", "remove", " ", "M1"], "household name"),
    (["program", "experiment", "stop", ""], "experiment name"),
    (["report", "experiment", ""], "experiment name"),
    (["points", "history", ""], "member id"),
])
def test_an_empty_id_is_a_usage_error(db, args, what):
    ok(db, "members", "add", "--id", "M1", "--name", "Ann", "--joined", "2025-01-01")
    ok(db, "purchases", "add", "M1", "5.00", "--id", "S1", "--at", "2025-02-01")
    before = raw(db, "SELECT count(*) FROM ledger")
    result = run(db, *args)
    assert result.exit_code == 2, result.output
    assert one_error_line(result) == f"Error: {what} must be 1-64 printable characters, got ''"
    assert raw(db, "SELECT count(*) FROM ledger") == before
