#!/usr/bin/env python3
"""Summarises `scripts/bench.sh reads`: one row per (mode, mix, placement,
clients), with the medians over the pairs of the code before (A) and after
(B), and the median of the pairs' ratios B/A (each pair ran back to back, so
the machine's drift cancels in the ratio)."""
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
runs = {}
for f in os.listdir(out):
    m = re.fullmatch(r"(kv|engine)-r(\d+)-(leader|all)-c(\d+)-([AB])-p(\d+)\.json", f)
    if not m:
        continue
    with open(os.path.join(out, f)) as fh:
        j = json.loads(fh.read())
    key = (m[1], int(m[2]), m[3], int(m[4]))
    runs.setdefault(key, {}).setdefault(int(m[6]), {})[m[5]] = j


def med(xs):
    return statistics.median(xs) if xs else float("nan")


cols = [("reads_per_s", "reads/s", 0), ("writes_per_s", "writes/s", 0), ("read_p99_us", "read p99 us", 0),
        ("write_p99_us", "write p99 us", 0), ("cpu_us_per_op", "CPU us/op", 1)]
print(f"{'mode':<7}{'reads%':>6} {'from':<7}{'clients':>7}  " +
      "  ".join(f"{label + ' A':>15} {label + ' B':>15} {'B/A':>5}" for _, label, _ in cols) + "  pairs")
for key in sorted(runs, key=lambda k: (k[0], -k[1], k[2] != "leader", k[3])):
    pairs = [p for p in runs[key].values() if "A" in p and "B" in p]
    row = f"{key[0]:<7}{key[1]:>6} {key[2]:<7}{key[3]:>7}  "
    cells = []
    for field, _, digits in cols:
        a = [p["A"].get(field, 0) for p in pairs]
        b = [p["B"].get(field, 0) for p in pairs]
        ratios = [y / x for x, y in zip(a, b) if x > 0]
        ratio = f"{med(ratios):5.2f}" if ratios else "    -"
        cells.append(f"{med(a):>15.{digits}f} {med(b):>15.{digits}f} {ratio}")
    print(row + "  ".join(cells) + f"  {len(pairs)}")
