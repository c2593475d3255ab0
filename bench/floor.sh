#!/usr/bin/env bash
# The CSV release against the csv crate's parse floor, runs interleaved (issue 27).
# Usage: bench/floor.sh [ROUNDS] [SAFESTAT_BINARY...]
#   ROUNDS             rounds (default 10); each round runs the floor, then every binary's release
#                      with the default policy, its release without the sum's contributors, and its
#                      `check`, in that order, so that the machine's slower and faster spells fall
#                      on all of them alike
#   SAFESTAT_BINARY    release binaries to compare (default: target/release/safestat, built here
#                      with the default features); copy older builds aside to compare commits
#   ROWS=10000000      rows of bench/run.sh's file (generated if missing)
# Raw timings go to bench/out/floor-interleaved.tsv; the summary (medians, minimums, user and
# system time, peak RSS, each median over the floor's) is printed and written to
# bench/out/floor-interleaved.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
shift || true
ROWS=${ROWS:-10000000}
command -v /usr/bin/time >/dev/null || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cargo build --release --bins --quiet
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(target/release/safestat)
out=bench/out
mkdir -p "$out/work"
file="$out/victims_$ROWS.csv"
[ -f "$file" ] || target/release/safestat-synth large "$ROWS" "$file"
policy="$out/policy-$ROWS.toml"
sed "s|ROWS|$ROWS|g; s|out/victims_|victims_|" bench/policy.toml.in > "$policy"
# The same policy without a count of the sum's contributors (nothing then to suppress it on).
nocontrib="$out/policy-$ROWS-nocontrib.toml"
sed 's/^contributors_cost.*/suppress_below = 0/' "$policy" > "$nocontrib"
grep -q contributors_cost "$policy" || { echo "bench: the policy has no contributors_cost" >&2; exit 1; }
cat "$file" > /dev/null # warm the page cache
raw="$out/floor-interleaved.tsv"
: > "$raw"

# run NAME CMD...: one timing (wall, user, system seconds, peak RSS KiB) appended to $raw.
run() {
  local name=$1; shift
  rm -rf "$out/work/release" "$out/work/ledger.jsonl"
  /usr/bin/time -f "%e %U %S %M" -o "$out/time.txt" "$@" > /dev/null 2> "$out/stderr.txt" \
    || { echo "bench: $name failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
  printf '%s\t%s\n' "$name" "$(tr ' ' '\t' < "$out/time.txt")" >> "$raw"
}

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  run "parse floor" target/release/safestat-bench parse-floor "$file"
  for bin in "${BINS[@]}"; do
    name=$(basename "$bin")
    for p in "$policy" "$nocontrib"; do
      label="release"; [ "$p" = "$nocontrib" ] && label="release, no contributors"
      run "$name $label" "$bin" release "$p" --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
    done
    run "$name check" "$bin" check "$policy"
  done
done

python3 - "$raw" "$ROUNDS" "$ROWS" <<'PY' | tee "$out/floor-interleaved.md"
import collections, statistics, sys
raw, rounds, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = collections.defaultdict(list)
for line in open(raw):
    name, wall, user, sys_, rss = line.rstrip("\n").split("\t")
    runs[name].append((float(wall), float(user), float(sys_), int(rss)))
floor = statistics.median(r[0] for r in runs["parse floor"])
print(f"{rows:,} rows, {rounds} rounds interleaved\n")
print("| run | median wall (s) | min (s) | user, sys (s) | peak RSS | median / floor |")
print("| --- | ---: | ---: | --- | ---: | ---: |")
for name, rs in runs.items():
    med = statistics.median(r[0] for r in rs)
    print(f"| {name} | {med:.3f} | {min(r[0] for r in rs):.2f} | "
          f"{statistics.median(r[1] for r in rs):.2f}, {statistics.median(r[2] for r in rs):.2f} | "
          f"{max(r[3] for r in rs) // 1024} MiB | {med / floor:.2f}x |")
print("\nEach round's release over that round's floor:")
by_round = collections.defaultdict(list)
for name, rs in runs.items():
    by_round[name] = [r[0] for r in rs]
for name, walls in by_round.items():
    if name == "parse floor":
        continue
    ratios = [w / f for w, f in zip(walls, by_round["parse floor"])]
    print(f"- {name}: " + ", ".join(f"{x:.2f}" for x in ratios))
PY
