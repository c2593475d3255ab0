#!/usr/bin/env bash
# Rerunnable benchmark of SQL inputs (issue 12) for BENCHMARKS.md: the sample policy's seven
# microdata tables released from PostgreSQL (bounding and counting pushed down) against the same
# release from the CSV file, plus what exporting the CSV from the database costs, the bytes that
# cross the connection, and the server's plans of every statement (auto_explain).
# Usage: bench/sql.sh [ROWS]  (default 10000000)
#   RUNS=3   repetitions per timing (medians are reported)
# Starts its own PostgreSQL cluster in bench/out/pg (as `nobody` when run as root), with the
# server's default settings but for fsync=off (the load is not what is measured); stops it at the
# end. Needs PostgreSQL's server programs and contrib (Debian: postgresql) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
RUNS=${RUNS:-3}
out=bench/out
pg="$out/pg"
mkdir -p "$out"
bin=target/release
cargo build --release --features postgres --bins --quiet
file="$out/victims_$ROWS.csv"
[ -f "$file" ] || "$bin/safestat-synth" large "$ROWS" "$file"
. bench/pg_load.sh

# The two policies: the benchmark policy as is (CSV), and with its input in the database.
sed "s|ROWS|$ROWS|g; s|out/victims_|victims_|" bench/policy.toml.in > "$out/policy-$ROWS.toml"
sed "s|ROWS|sql-$ROWS|g; s|^path = \"out/victims_.*\"|sql = { url_env = \"SAFESTAT_DB_URL\", table = \"victims\" }|" \
  bench/policy.toml.in > "$out/policy-sql-$ROWS.toml"
export SAFESTAT_DB_URL="host=$PWD/$pg user=postgres dbname=postgres"

raw="$out/sql-raw.tsv"
: > "$raw"
measure() {
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    rm -rf "$out/work" && mkdir -p "$out/work"
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > /dev/null 2> "$out/stderr.txt" \
      || { echo "bench: $name failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
    read -r secs rss < "$out/time.txt"
    printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >> "$raw"
  done
}
cat "$file" > /dev/null
measure "export the table to CSV (psql \\copy TO)" sh -c \
  "psql -X -q -h '$PWD/$pg' -U postgres -d postgres -c \"\\copy victims TO '$out/work/export.csv' (FORMAT csv, HEADER true)\""
measure "safestat release from the CSV file" "$bin/safestat" release "$out/policy-$ROWS.toml" \
  --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
measure "safestat release from PostgreSQL" "$bin/safestat" release "$out/policy-sql-$ROWS.toml" \
  --out "$out/work/release" --ledger "$out/work/ledger.jsonl"

# Bytes on the wire: one release through a counting proxy (TCP on loopback to the socket).
port=54329
python3 bench/wire_proxy.py "$port" "$PWD/$pg/.s.PGSQL.5432" "$out/wire.txt" &
proxy=$!
sleep 0.5
rm -rf "$out/work" && mkdir -p "$out/work"
SAFESTAT_DB_URL="host=127.0.0.1 port=$port user=postgres dbname=postgres" \
  "$bin/safestat" release "$out/policy-sql-$ROWS.toml" --out "$out/work/release" \
  --ledger "$out/work/ledger.jsonl" > /dev/null 2>&1
kill -TERM "$proxy"; wait "$proxy" || true
read -r to_server from_server < "$out/wire.txt"

# Plans: one more release with auto_explain logging every statement's plan (with timing).
psql_ -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0" \
  -c "ALTER SYSTEM SET auto_explain.log_analyze = on" -c "SELECT pg_reload_conf()" > /dev/null
: > "$pg/server.log"
rm -rf "$out/work" && mkdir -p "$out/work"
"$bin/safestat" release "$out/policy-sql-$ROWS.toml" --out "$out/work/release" \
  --ledger "$out/work/ledger.jsonl" > /dev/null 2>&1
cp "$pg/server.log" "$out/sql-plans.log"

python3 - "$raw" "$ROWS" "$(python3 -c "print($load_end - $load_start)")" "$table_mib" \
  "$(stat -c %s "$file")" "$to_server" "$from_server" <<'PY' | tee "$out/sql-results.md"
import statistics, sys
raw, rows, load, table_mib, csv_bytes, to_server, from_server = sys.argv[1:]
times = {}
for line in open(raw):
    name, secs, rss = line.rstrip("\n").split("\t")
    times.setdefault(name, []).append((float(secs), int(rss)))
print(f"{int(rows):,} rows; CSV file {int(csv_bytes) / 2**20:,.0f} MiB; table in PostgreSQL {int(table_mib):,} MiB; loaded by \\copy in {float(load):.1f} s\n")
print("| measurement | median wall (s) | runs | peak RSS of the client (MiB) |")
print("| --- | ---: | ---: | ---: |")
for name, v in times.items():
    print(f"| {name} | {statistics.median(s for s, _ in v):.2f} | {len(v)} | {max(r for _, r in v) / 1024:.0f} |")
print(f"\n| bytes over the connection, one release from PostgreSQL | to the server | from the server |")
print("| --- | ---: | ---: |")
print(f"| all statements (setup, checks, 7 tables) | {int(to_server):,} | {int(from_server):,} |")
print(f"| for comparison: the CSV export | | {int(csv_bytes):,} (the file) |")
PY
