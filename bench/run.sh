#!/usr/bin/env bash
# Rerunnable benchmark for BENCHMARKS.md. Usage: bench/run.sh [ROWS...]  (default: 1000000 10000000)
#   RUNS=5         repetitions per measurement (medians are reported)
#   OPENDP=0       skip the OpenDP Polars comparison and the Polars read_csv floor (both installed
#                  from PyPI into bench/.venv)
#   OPENDP_RUNS=3  repetitions of the OpenDP Polars job (minutes per run at 10M rows)
#   SPILL_MIB=64   the --memory-limit of the spilling run (below what the units need, so it spills)
# Generated data, policies and raw timings go to bench/out/ (never committed); the summary table is
# printed and written to bench/out/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
OPENDP=${OPENDP:-1}
OPENDP_RUNS=${OPENDP_RUNS:-3}
SPILL_MIB=${SPILL_MIB:-64}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000)
command -v /usr/bin/time >/dev/null || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

cargo build --release --bins --quiet
bin=target/release
out=bench/out
mkdir -p "$out"
raw="$out/raw.tsv"
: > "$raw"
: > "$out/polars_read.txt"

if [ "$OPENDP" = 1 ] && [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q "opendp[polars]==0.16.0"
fi

# measure NAME ROWS CMD...: RUNS timings of CMD (wall seconds, peak RSS in KiB) appended to $raw.
measure() {
  local name=$1 rows=$2; shift 2
  for i in $(seq "$RUNS"); do
    rm -rf "$out/work" && mkdir -p "$out/work"
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > /dev/null 2> "$out/stderr.txt" \
      || { echo "bench: $name failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
    read -r secs rss < "$out/time.txt"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rows" "$secs" "$rss" >> "$raw"
  done
}

for rows in "${SIZES[@]}"; do
  file="$out/victims_$rows.csv"
  [ -f "$file" ] || "$bin/safestat-synth" large "$rows" "$file"
  sed "s|ROWS|$rows|g; s|out/victims_|victims_|" bench/policy.toml.in > "$out/policy-$rows.toml"
  echo "== $rows rows: $(du -h "$file" | cut -f1)" >&2
  cat "$file" > /dev/null # warm the page cache: every measurement reads from memory
  measure "file read (cat)" "$rows" sh -c "cat '$file' > /dev/null"
  measure "parse floor (csv crate)" "$rows" "$bin/safestat-bench" parse-floor "$file"
  measure "safestat check" "$rows" "$bin/safestat" check "$out/policy-$rows.toml"
  measure "safestat release" "$rows" "$bin/safestat" release "$out/policy-$rows.toml" \
    --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
  SAFESTAT_THREADS=1 measure "safestat release, 1 thread" "$rows" "$bin/safestat" release \
    "$out/policy-$rows.toml" --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
  measure "safestat release, --memory-limit $SPILL_MIB (spills)" "$rows" "$bin/safestat" release \
    "$out/policy-$rows.toml" --out "$out/work/release" --ledger "$out/work/ledger.jsonl" \
    --memory-limit "$SPILL_MIB"
  if [ "$OPENDP" = 1 ]; then
    bench/.venv/bin/python bench/polars_read.py "$file" "$RUNS" >> "$out/polars_read.txt"
    RUNS=$OPENDP_RUNS measure "OpenDP Polars" "$rows" \
      bench/.venv/bin/python bench/opendp_polars.py "$file"
  fi
done

for i in $(seq "$RUNS"); do "$bin/safestat-bench" noise 1000000; done > "$out/noise.txt"

python3 bench/summarise.py "$raw" "$out/noise.txt" "$out/polars_read.txt" | tee "$out/results.md"
