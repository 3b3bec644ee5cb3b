#!/usr/bin/env python3
"""Write a synthetic purchases CSV in the format of SPEC.md section 5.

Deterministic for a given seed, and byte-for-byte the same output as the shared
reference generator (same RNG call order), only faster: timestamps come from a
per-day date cache and a seconds-of-day table instead of datetime arithmetic.

Member ids are M000001..M<members>, skewed so that low ids buy far more often
(a few heavy customers, a long tail). Rows are in ascending time, as a till
exports them. About 2% of rows are refunds of an earlier sale (half of them
partial). Every row is valid for a strict importer:

- ids are unique (P<row> for sales, R<row> for refunds, one shared row index);
- sales are >= 0.01, so no refund is ever against a zero sale;
- a refund names an earlier sale (never a refund), carries that sale's member,
  is dated no earlier than it, and its amount is 0.01..the sale's amount;
  each sale is refunded at most once;
- with the default --start 2025-01-01, every purchase is after every member's
  joined_on from gen_members.py (those fall in 2023-01-01..2024-12-31).

Usage: gen_purchases.py ROWS MEMBERS OUT.csv [--seed N] [--start YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import random

CATEGORIES = ["grocery", "bakery", "dairy", "produce", "household", "drinks", "snacks", "baby", "health",
              "tobacco"]
SPAN_SECONDS = 365 * 86400
MAX_REFUNDABLE = 100_000  # earlier sales kept as refund candidates
CHUNK = 10_000  # rows handed to the csv writer at a time


def write_purchases(rows: int, members: int, out: str, seed: int, start: dt.datetime) -> None:
    """Write rows purchases over members members to out, starting at start."""
    rng = random.Random(seed)
    random_ = rng.random
    randrange = rng.randrange
    choice = rng.choice
    lognormvariate = rng.lognormvariate
    # times in ascending order, as a till exports them
    secs = sorted([randrange(SPAN_SECONDS) for _ in range(rows)])
    # start + s seconds, formatted "%Y-%m-%dT%H:%M:%S" (start's microseconds never show)
    start_day = start.date()
    start_sod = start.hour * 3600 + start.minute * 60 + start.second
    clock = [f"T{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    day_cache: dict[int, str] = {}
    sales: list[tuple[str, str, int]] = []  # (purchase_id, member, cents) of earlier sales, for refunds
    buf: list[list[str]] = []
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["purchase_id", "member_id", "purchased_at", "amount", "category", "kind", "refund_of"])
        for i, s in enumerate(secs):
            day, sod = divmod(start_sod + s, 86400)
            date = day_cache.get(day)
            if date is None:
                date = day_cache[day] = (start_day + dt.timedelta(days=day)).isoformat()
            at = date + clock[sod]
            if sales and random_() < 0.02:
                pid, member, cents = sales.pop(randrange(len(sales)))
                # full, or partial in 1..cents: never below 0.01, never above the sale
                part = cents if random_() < 0.5 else randrange(1, cents + 1)
                buf.append([f"R{i:08d}", member, at, f"{part // 100}.{part % 100:02d}", "", "refund", pid])
            else:
                member = f"M{int(members * random_() ** 3) + 1:06d}"
                cents = max(1, int(lognormvariate(3.0, 0.8) * 100))
                pid = f"P{i:08d}"
                if len(sales) < MAX_REFUNDABLE:
                    sales.append((pid, member, cents))
                buf.append([pid, member, at, f"{cents // 100}.{cents % 100:02d}", choice(CATEGORIES), "sale", ""])
            if len(buf) >= CHUNK:
                w.writerows(buf)
                buf.clear()
        w.writerows(buf)


def main() -> None:
    """Parse the command line and write the file."""
    p = argparse.ArgumentParser(description="Write a synthetic purchases CSV.")
    p.add_argument("rows", type=int, help="number of rows (sales and refunds)")
    p.add_argument("members", type=int, help="member ids are M000001..M<members>")
    p.add_argument("out", help="output CSV path")
    p.add_argument("--seed", type=int, default=1623)
    p.add_argument("--start", default="2025-01-01", help="first possible purchase time (ISO date or datetime)")
    a = p.parse_args()
    if a.rows < 0:
        p.error("ROWS must be >= 0")
    if a.members < 1:
        p.error("MEMBERS must be >= 1")
    try:
        start = dt.datetime.fromisoformat(a.start)
    except ValueError:
        p.error(f"--start: not an ISO date or datetime: {a.start!r}")
    write_purchases(a.rows, a.members, a.out, a.seed, start)


if __name__ == "__main__":
    main()
