#!/usr/bin/env python3
"""Write a synthetic members CSV in the format of SPEC.md section 5.

Deterministic for a given seed, and byte-for-byte the same output as the shared
reference generator (same RNG call order), so figures stay comparable.
Ids are M000001..M<N>, matching gen_purchases.py. Emails are unique (the row
index is part of each one). joined_on always falls in 2023-01-01..2024-12-31,
so every purchase from gen_purchases.py (default --start 2025-01-01) is on or
after its member's joined_on. referred_by, when set, names an earlier member.

Usage: gen_members.py N OUT.csv [--seed N]
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import random

FIRST = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
         "Mei", "Noor", "Omar", "Pia"]
LAST = ["Li", "Smith", "Wang", "Garcia", "Kim", "Novak", "Okafor", "Rossi", "Sato", "Zhang", "Müller", "Dubois"]
JOINED_FROM = dt.date(2023, 1, 1)
JOINED_DAYS = 730  # joined_on < JOINED_FROM + 730 days = 2025-01-01


def write_members(n: int, out: str, seed: int) -> None:
    """Write n members to out; the RNG is drawn in the same order as the shared generator."""
    rng = random.Random(seed)
    born_from = dt.date(1950, 1, 1)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["member_id", "name", "email", "phone", "birthday", "joined_on", "referred_by"])
        for i in range(1, n + 1):
            fn, ln = rng.choice(FIRST), rng.choice(LAST)
            born = born_from + dt.timedelta(days=rng.randrange(50 * 365))
            joined = JOINED_FROM + dt.timedelta(days=rng.randrange(JOINED_DAYS))
            ref = f"M{rng.randrange(1, i):06d}" if i > 1 and rng.random() < 0.1 else ""
            w.writerow([f"M{i:06d}", f"{fn} {ln}", f"{fn.lower()}.{i}@shop.example",
                        f"+4420{rng.randrange(10**7, 10**8)}", born.isoformat(), joined.isoformat(), ref])


def main() -> None:
    """Parse the command line and write the file."""
    p = argparse.ArgumentParser(description="Write a synthetic members CSV.")
    p.add_argument("n", type=int, help="number of members (ids M000001..)")
    p.add_argument("out", help="output CSV path")
    p.add_argument("--seed", type=int, default=1623)
    a = p.parse_args()
    if a.n < 0:
        p.error("N must be >= 0")
    write_members(a.n, a.out, a.seed)


if __name__ == "__main__":
    main()
