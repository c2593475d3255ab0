#!/usr/bin/env bash
# Rerunnable benchmark of exact tables read from a large file (BENCHMARKS.md, "exact sums").
# Usage: bench/exact.sh [ROWS]  (default 10000000)
#   RUNS=3        repetitions per measurement (medians of wall time, the largest peak RSS)
#   BASE=PATH     another safestat binary (e.g. an earlier commit's) timed on the DP-only policy
#                 and on the exact tables alone, alongside this tree's, to compare the reader
#                 with and without a change
# Runs, on the synthetic `large` file: the DP tables of bench/policy.toml.in alone; the same with
# three exact tables added (a count of rows by region x gender, and sums of services by region x
# gender and by gender with the dominance and p% rules; a count of units may not stand beside a
# count of rows of the same people); and the exact tables alone.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
ROWS=${1:-10000000}
command -v /usr/bin/time >/dev/null || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build --release --bins --quiet
bin=target/release
out=bench/out/exact
mkdir -p "$out"
file="bench/out/victims_$ROWS.csv"
[ -f "$file" ] || "$bin/safestat-synth" large "$ROWS" "$file"
cat "$file" > /dev/null # warm the page cache

sed "s|ROWS|$ROWS|g; s|out/victims_|../victims_|" bench/policy.toml.in > "$out/dp.toml"
exact='
[[table]]
name = "exact_rows"
input = "victims"
statistic = "count_rows"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 5, dominance = { n = 1, k = 80 } }
interval_percent = 20

[[table]]
name = "exact_services"
input = "victims"
statistic = "sum"
column = "services"
by = ["region", "gender"]
protection = "suppression"
primary = { min_frequency = 5, dominance = { n = 2, k = 85 }, p_percent = 10 }
interval_percent = 20

[[table]]
name = "exact_services_by_gender"
input = "victims"
statistic = "sum"
column = "services"
by = ["gender"]
protection = "suppression"
primary = { min_frequency = 5, dominance = { n = 2, k = 85 }, p_percent = 10 }
interval_percent = 20
'
{ cat "$out/dp.toml"; echo "$exact"; } > "$out/mixed.toml"
# The exact tables alone: the policy's header (everything before its first table) and them.
{ sed '/^\[\[table\]\]/,$d' "$out/dp.toml"; echo "$exact"; } > "$out/exact.toml"

raw="$out/raw.tsv"
: > "$raw"
# measure NAME CMD...: one timing of CMD (wall seconds, peak RSS in KiB) appended to $raw.
measure() {
  local name=$1; shift
  rm -rf "$out/work" && mkdir -p "$out/work"
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" --out "$out/work/release" \
    --ledger "$out/work/ledger.jsonl" > /dev/null 2> "$out/stderr.txt" \
    || { echo "bench: $name failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
  read -r secs rss < "$out/time.txt"
  printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >> "$raw"
}
# Rounds interleave the runs, so that every configuration sees the same machine state.
for round in $(seq "$RUNS"); do
  measure "DP tables only" "$bin/safestat" release "$out/dp.toml"
  if [ -n "${BASE:-}" ]; then
    measure "DP tables only, BASE" "$BASE" release "$out/dp.toml"
  fi
  measure "DP and 3 exact tables" "$bin/safestat" release "$out/mixed.toml"
  measure "3 exact tables only" "$bin/safestat" release "$out/exact.toml"
  if [ -n "${BASE:-}" ]; then
    measure "3 exact tables only, BASE" "$BASE" release "$out/exact.toml"
  fi
done
echo "| run ($ROWS rows, $RUNS runs) | median wall s | peak RSS MiB |"
echo "| --- | ---: | ---: |"
python3 - "$raw" <<'PY'
import sys, statistics, collections
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, secs, rss = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append((float(secs), int(rss)))
for name, r in runs.items():
    print(f"| {name} | {statistics.median(s for s, _ in r):.2f} | {max(m for _, m in r) / 1024:.0f} |")
PY
