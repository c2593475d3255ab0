"""Summarise bench/run.sh's raw timings: medians per (measurement, rows) and the ratios."""
import statistics
import sys
from collections import defaultdict

raw, noise, polars_read = sys.argv[1], sys.argv[2], sys.argv[3]
times = defaultdict(list)
rss = defaultdict(list)
order = []
for line in open(raw):
    name, rows, secs, kib = line.rstrip("\n").split("\t")
    key = (name, int(rows))
    if key not in times:
        order.append(key)
    times[key].append(float(secs))
    rss[key].append(int(kib))

# Polars' read_csv, timed inside Python (no start-up): the floor as the issue frames it.
polars = defaultdict(list)
for line in open(polars_read):
    fields = dict(f.split("=") for f in line.split()[1:])
    polars[int(fields["rows"])].append(float(fields["seconds"]))
for rows, secs in polars.items():
    key = ("parse floor (Polars read_csv, all cores, in-process)", rows)
    times[key] = secs
    rss[key] = [0]
    order.insert(order.index(("parse floor (csv crate)", rows)) + 1, key)

med = {k: statistics.median(v) for k, v in times.items()}
print("| rows | measurement | median wall (s) | runs | peak RSS (MiB) |")
print("| ---: | --- | ---: | ---: | ---: |")
for name, rows in order:
    k = (name, rows)
    memory = f"{max(rss[k]) / 1024:.0f}" if max(rss[k]) else "n/a"
    print(f"| {rows:,} | {name} | {med[k]:.2f} | {len(times[k])} | {memory} |")
print()
print("| rows | safestat release / parse floor (csv crate) | safestat release / Polars read_csv | safestat check / parse floor (csv crate) | OpenDP Polars / safestat release |")
print("| ---: | ---: | ---: | ---: | ---: |")
for rows in sorted({r for _, r in order}):
    floor = med.get(("parse floor (csv crate)", rows))
    rel = med.get(("safestat release", rows))
    chk = med.get(("safestat check", rows))
    odp = med.get(("OpenDP Polars", rows))
    pread = med.get(("parse floor (Polars read_csv, all cores, in-process)", rows))
    fmt = lambda a, b: f"{a / b:.1f}x" if a and b else "n/a"
    print(f"| {rows:,} | {fmt(rel, floor)} | {fmt(rel, pread)} | {fmt(chk, floor)} | {fmt(odp, rel)} |")
print()
rates = defaultdict(list)
for line in open(noise):
    fields = dict(f.split("=") for f in line.split()[1:])
    rates[fields["mechanism"]].append(float(fields["cells_per_second"]))
print("| noise, 1,000,000-cell table | median cells/s (all cores) | runs |")
print("| --- | ---: | ---: |")
for mech, r in rates.items():
    print(f"| {mech} | {statistics.median(r):,.0f} | {len(r)} |")
