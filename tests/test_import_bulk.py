"""Big imports build the member-ordered indexes once at the end (ledger.Book.defer_indexes).

An import of more than `DEFER_FROM_ROWS` purchases drops `ledger_member` (and
`purchases_member` when no purchases exist yet) and builds them again before the
totals are computed, which it then does for every member in one pass. Here the threshold is lowered so the sample data takes that
path, and every row it writes is compared with the row-by-row path's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_cli import ledger
from loyalty_cli.store import imports as import_rows
from loyalty_cli.store import ledger as ledger_rows
from tests.db import connect, tier_history
from tests.helpers import ok, run

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
TABLES = ("members", "purchases", "ledger", "lots", "lot_uses", "tier_changes", "member_totals", "daily_sales",
          "daily_points")


@pytest.fixture
def deferred(monkeypatch):
    """Record which indexes each import dropped; `deferred.on()` / `.off()` set the thresholds."""
    dropped: list[list[str]] = []
    original = ledger.Book.defer_indexes

    def spy(book, expected_rows):
        names = original(book, expected_rows)
        dropped.append(names)
        return names

    monkeypatch.setattr(ledger.Book, "defer_indexes", spy)

    class Switch:
        calls = dropped

        def on(self):
            monkeypatch.setattr(import_rows, "DEFER_FROM_ROWS", 0)
            monkeypatch.setattr(ledger_rows, "ALL_TOTALS_FROM", 1)  # and every member's totals in one pass

        def off(self):
            monkeypatch.setattr(import_rows, "DEFER_FROM_ROWS", 10**12)
            monkeypatch.setattr(ledger_rows, "ALL_TOTALS_FROM", 10**12)

    return Switch()


def everything(db) -> dict:
    """Every row of every table an import writes, and the schema."""
    with connect(db) as conn:
        out = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in TABLES}
        out["schema"] = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        return out


def sample_shop(db, program=SAMPLE / "program.toml"):
    ok(db, "-q", "init")
    ok(db, "-q", "program", "load", program, "--from", "2024-01-01")
    ok(db, "members", "import", SAMPLE / "members.csv")


def head_of(path: Path, out: Path, start: int, stop: int) -> Path:
    lines = path.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + "".join(lines[1 + start:1 + stop]))
    return out


def test_a_big_first_import_writes_exactly_what_the_row_by_row_path_writes(tmp_path, deferred):
    rowwise, bulk = tmp_path / "rowwise.db", tmp_path / "bulk.db"
    for db in (rowwise, bulk):
        sample_shop(db)
    deferred.off()
    ok(rowwise, "purchases", "import", SAMPLE / "purchases.csv")
    deferred.on()
    ok(bulk, "purchases", "import", SAMPLE / "purchases.csv")
    assert deferred.calls == [[], ["ledger_member", "purchases_member"]]
    assert everything(bulk) == everything(rowwise)  # the indexes are back, every row and hash the same
    assert run(bulk, "db", "check").exit_code == 0


def test_a_big_import_into_a_shop_with_purchases_keeps_the_purchases_index(tmp_path, deferred):
    first = head_of(SAMPLE / "purchases.csv", tmp_path / "first.csv", 0, 2000)
    rest = head_of(SAMPLE / "purchases.csv", tmp_path / "rest.csv", 2000, 6006)
    rowwise, bulk = tmp_path / "rowwise.db", tmp_path / "bulk.db"
    for db in (rowwise, bulk):
        sample_shop(db)
        deferred.off()
        ok(db, "purchases", "import", first)
    ok(rowwise, "purchases", "import", rest)
    deferred.on()
    ok(bulk, "purchases", "import", rest)
    # The members' earlier purchases are read through purchases_member, so only the ledger's index goes.
    assert deferred.calls[-1] == ["ledger_member"]
    assert everything(bulk) == everything(rowwise)
    assert run(bulk, "db", "check").exit_code == 0


def test_a_tier_basis_that_changes_mid_file_reads_the_purchases_again(tmp_path, deferred):
    points = tmp_path / "points.toml"
    points.write_text((SAMPLE / "program.toml").read_text().replace('basis = "spend"', 'basis = "points"')
                      .replace('"500"', '"400"').replace('"1500"', '"1200"').replace('"5000"', '"4000"'))
    rowwise, bulk = tmp_path / "rowwise.db", tmp_path / "bulk.db"
    for db in (rowwise, bulk):
        sample_shop(db)
        ok(db, "-q", "program", "load", points, "--from", "2026-01-01")
    deferred.off()
    ok(rowwise, "purchases", "import", SAMPLE / "purchases.csv")
    deferred.on()
    ok(bulk, "purchases", "import", SAMPLE / "purchases.csv")
    assert deferred.calls[-1] == ["ledger_member", "purchases_member"]
    assert everything(bulk) == everything(rowwise)
    # Members did move up under the points basis, after it applied.
    assert any(t.at >= "2026-01-01" and t.reason == "purchase" for t in tier_history(bulk))
    assert run(bulk, "db", "check").exit_code == 0


def test_a_rejected_big_import_leaves_the_indexes_and_the_data(tmp_path, deferred):
    db = tmp_path / "shop.db"
    sample_shop(db)
    before = everything(db)
    bad = tmp_path / "bad.csv"
    bad.write_text((SAMPLE / "purchases.csv").read_text() + "T999999,M0002,2026-11-01,12.345,deli,sale,\n")
    deferred.on()
    result = run(db, "purchases", "import", bad)
    assert result.exit_code == 3
    assert "line 6008" in result.stderr
    assert deferred.calls == [["ledger_member", "purchases_member"]]
    assert everything(db) == before


def test_a_big_reimport_of_duplicates_keeps_the_indexes(tmp_path, deferred):
    db = tmp_path / "shop.db"
    sample_shop(db)
    deferred.on()
    ok(db, "purchases", "import", SAMPLE / "purchases.csv")
    before = everything(db)
    result = ok(db, "purchases", "import", SAMPLE / "purchases.csv", "--json")
    assert '"duplicates":6006' in result.stdout.replace(" ", "")
    # The first import dropped and rebuilt both; the re-import, with no new row, neither.
    assert deferred.calls == [["ledger_member", "purchases_member"], []]
    assert everything(db) == before
