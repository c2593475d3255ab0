#!/usr/bin/env bash
# Rerunnable benchmark for BENCHMARKS.md (issue 28): what the steps of a pushed-down release cost
# PostgreSQL on its own, against the CSV path's whole release on the same rows. Each step is the
# least a statement of that shape must do: a scan, a grouping by the privacy unit (by hash and by
# sort; bare, with the per-unit state bounding keeps, and with the fingerprint too), a sort of
# every row by unit and content, one executor node over every row on one core, a keyed hash per
# row, a row's text, the fingerprint (two forms), and the domain check (alone, and with the
# fingerprint in one scan). The last two lines add up, per round, what no pushed-down release can
# skip, each in the cheapest form measured: the fingerprint, and one grouping by unit, bare or
# with the least state this policy's bounding keeps and the value check folded in (four forms:
# work_mem 4, 64 and 256 MB, and grouped by the unit's 64-bit hash). Each round's sums go to
# stderr.
# Usage: bench/sql_floor.sh [ROWS]  (default 10000000)
#   RUNS=3   repetitions per timing (medians are reported)
# Same cluster and data as bench/sql.sh (bench/pg_load.sh), and the pushed-down release itself in
# the same rounds. Needs /usr/bin/time.
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
sed "s|ROWS|$ROWS|g; s|out/victims_|victims_|" bench/policy.toml.in > "$out/policy-$ROWS.toml"
sed "s|ROWS|sql-$ROWS|g; s|^path = \"out/victims_.*\"|sql = { url_env = \"SAFESTAT_DB_URL\", table = \"victims\" }|" \
  bench/policy.toml.in > "$out/policy-sql-$ROWS.toml"
export SAFESTAT_DB_URL="host=$PWD/$pg user=postgres dbname=postgres"

# The declared categories of the benchmark policy, as SQL arrays.
t="'{distribution_fear,illegal_filming,distribution,distribution_threat,synthesis,grooming,sextortion,harassment,other}'::text[]"
r="'{seoul,busan,daegu,incheon,gwangju,daejeon,ulsan,sejong,gyeonggi,gangwon,chungbuk,chungnam,jeonbuk,jeonnam,gyeongbuk,gyeongnam,jeju}'::text[]"
g="'{female,male}'::text[]"
a="'{under_10,10s,20s,30s,40s,50_plus,unknown}'::text[]"
# Per unit: its rows, each dimension's least and greatest value (one value, so one cell, when they
# agree) and its clamped sum; every column is read by the outer query, so none is optimised away.
per_unit="count(*) AS n, sum(LEAST(GREATEST(services, 0), 200)) AS v"
for c in victim_type region gender age_group; do
  per_unit="$per_unit, min($c COLLATE \"C\") AS lo_$c, max($c COLLATE \"C\") AS hi_$c"
done
used="count(*), sum(n), sum(v), count(*) FILTER (WHERE lo_victim_type = hi_victim_type AND lo_region = hi_region AND lo_gender = hi_gender AND lo_age_group = hi_age_group), max(lo_victim_type || lo_region || lo_gender || lo_age_group)"
state="SELECT $used FROM (SELECT victim_id COLLATE \"C\" AS u, $per_unit FROM victims GROUP BY 1) x"
state_fp="SELECT $used, sum(h) FROM (SELECT victim_id COLLATE \"C\" AS u, $per_unit, sum(hashtextextended(ROW(s.*)::text COLLATE \"C\", 0)) AS h FROM victims s GROUP BY 1) x"
# The least per-unit state this policy's bounding can keep, every aggregate by value: rows, the
# unit's (gender, age, region) cell as one integer (least and greatest: one cell when they agree),
# its report types as bits, its clamped sum. Values become codes by joins, as in the statements.
codes="(mg.c * 8 + ma.c) * 32 + mr.c AS cell, mt.c AS type FROM victims s"
for m in "g $g gender" "a $a age_group" "r $r region" "t $t victim_type"; do
  set -- $m
  codes="$codes LEFT JOIN unnest($2, '{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}'::int4[]) AS m$1(v, c) ON m$1.v = s.$3 COLLATE \"C\""
done
# The value check rides along: a value with no code (NULL or undeclared) is counted.
least_of() {
  echo "SELECT count(*), sum(n), sum(v), count(*) FILTER (WHERE lo = hi), sum(types), max(lo), sum(bad) FROM (SELECT $1 AS u, count(*) AS n, sum(LEAST(GREATEST(services, 0), 200)) AS v, min(cell) AS lo, max(cell) AS hi, bit_or(1::int8 << type) AS types, count(*) FILTER (WHERE cell IS NULL OR type IS NULL) AS bad FROM (SELECT victim_id, services, $codes) r GROUP BY 1) x"
}
least=$(least_of "victim_id COLLATE \"C\"")
least_hash=$(least_of "hashtextextended(victim_id, 0)")
# A cheaper fingerprint than a row's text: each column's 64-bit hash (a seed per column), combined
# per row, summed.
fp_columns="SELECT sum(hashtextextended(victim_id, 1) # hashtextextended(victim_type, 2) # hashtextextended(region, 3) # hashtextextended(gender, 4) # hashtextextended(age_group, 5) # hashint8extended(services, 6)) FROM victims"
# The domain check and the fingerprint from one scan: per combination of values, its rows' hashes.
domain_fp="SELECT sum(h), sum(n) FILTER (WHERE v0 IS NULL OR v0 <> ALL($t) OR v1 IS NULL OR v1 <> ALL($r) OR v2 IS NULL OR v2 <> ALL($g) OR v3 IS NULL OR v3 <> ALL($a)) FROM (SELECT victim_type AS v0, region AS v1, gender AS v2, age_group AS v3, count(*) AS n, sum(hashtextextended(ROW(s.*)::text COLLATE \"C\", 0)) AS h FROM victims s GROUP BY 1, 2, 3, 4) c"
id="concat_ws(',', quote_nullable(victim_id), quote_nullable(victim_type), quote_nullable(region), quote_nullable(gender), quote_nullable(age_group), quote_nullable(services::text)) COLLATE \"C\""
steps=(
  "scan every row (count)|SELECT count(*) FROM victims"
  "group by unit, hash aggregate|SELECT count(*) FROM (SELECT victim_id COLLATE \"C\" FROM victims GROUP BY 1) x"
  "group by unit, sort (DISTINCT ON)|SELECT count(*) FROM (SELECT DISTINCT ON (u) u FROM (SELECT victim_id COLLATE \"C\" AS u FROM victims) r ORDER BY u) x"
  "group by unit with the state bounding keeps (rows, each dimension's least and greatest value, a clamped sum)|$state"
  "group by unit with that state and each unit's fingerprint (one scan for both)|$state_fp"
  "group by unit with the least state and the value check (rows, its cell as one integer, its types as bits, a clamped sum, values without a code)|$least"
  "the same, work_mem 64 MB|SET work_mem = '64MB'; $least"
  "the same, work_mem 256 MB|SET work_mem = '256MB'; $least"
  "the same, grouped by the unit's 64-bit hash|$least_hash"
  "sort every row by (unit, content), number repeats|SELECT count(*) FROM (SELECT row_number() OVER (PARTITION BY victim_id COLLATE \"C\", $id) AS occ FROM victims) x WHERE occ > 1"
  "one window node over every row, one core, no sort|SELECT count(*) FROM (SELECT row_number() OVER () AS n FROM victims) x WHERE n > 0"
  "SHA-256 of two columns per row (parallel scan)|SELECT count(*) FROM victims WHERE sha256(convert_to(victim_id || ',' || region, 'UTF8')) = '\\x00'"
  "a row's text per row (parallel scan)|SELECT count(*) FROM victims s WHERE s::text = ''"
  "the fingerprint: each row's text hashed, summed (parallel scan)|SELECT sum(hashtextextended(ROW(s.*)::text COLLATE \"C\", 0)) FROM victims s"
  "a cheaper fingerprint: each column hashed, combined per row, summed (parallel scan)|$fp_columns"
  "domain check and fingerprint in one scan|$domain_fp"
  "domain check, combinations first|SELECT d.dim, d.value, sum(c.n) FROM (SELECT victim_type AS v0, region AS v1, gender AS v2, age_group AS v3, count(*) AS n FROM victims GROUP BY 1, 2, 3, 4) c CROSS JOIN LATERAL (VALUES (0, v0, v0 IS NULL OR v0 <> ALL($t)), (1, v1, v1 IS NULL OR v1 <> ALL($r)), (2, v2, v2 IS NULL OR v2 <> ALL($g)), (3, v3, v3 IS NULL OR v3 <> ALL($a))) AS d(dim, value, undeclared) WHERE d.undeclared GROUP BY 1, 2"
)

raw="$out/floor-raw.tsv"
: > "$raw"
cat "$file" > /dev/null
for i in $(seq "$RUNS"); do
  rm -rf "$out/work" && mkdir -p "$out/work"
  /usr/bin/time -f "%e" -o "$out/time.txt" "$bin/safestat" release "$out/policy-$ROWS.toml" \
    --out "$out/work/release" --ledger "$out/work/ledger.jsonl" > /dev/null 2>&1
  printf 'safestat release from the CSV file (whole release)\t%s\n' "$(cat "$out/time.txt")" >> "$raw"
  rm -rf "$out/work" && mkdir -p "$out/work"
  /usr/bin/time -f "%e" -o "$out/time.txt" "$bin/safestat" release "$out/policy-sql-$ROWS.toml" \
    --out "$out/work/release" --ledger "$out/work/ledger.jsonl" > /dev/null 2>&1
  printf 'safestat release from PostgreSQL (whole release, as it stands)\t%s\n' "$(cat "$out/time.txt")" >> "$raw"
  for step in "${steps[@]}"; do
    /usr/bin/time -f "%e" -o "$out/time.txt" \
      psql -X -q -h "$PWD/$pg" -U postgres -d postgres -c "${step#*|}" > /dev/null
    printf '%s\t%s\n' "${step%%|*}" "$(cat "$out/time.txt")" >> "$raw"
  done
done

python3 - "$raw" "$ROWS" <<'PY' | tee "$out/floor-results.md"
import statistics, sys
raw, rows = sys.argv[1:]
times = {}
for line in open(raw):
    name, secs = line.rstrip("\n").split("\t")
    times.setdefault(name, []).append(float(secs))
csv = statistics.median(times["safestat release from the CSV file (whole release)"])
print(f"{int(rows):,} rows, runs interleaved\n")
print("| step | median wall (s) | runs | times the CSV release |")
print("| --- | ---: | ---: | ---: |")
for name, v in times.items():
    m = statistics.median(v)
    print(f"| {name} | {m:.2f} | {len(v)} | {m / csv:.2f} |")
# Per round, what no pushed-down release can skip, added up from the cheapest forms measured:
# the fingerprint, and one grouping by unit (bare, or with the least state and the value check).
def cheapest(steps):
    return [min(t) for t in zip(*(times[s] for s in steps))]
fingerprint = cheapest(["the fingerprint: each row's text hashed, summed (parallel scan)",
                        "a cheaper fingerprint: each column hashed, combined per row, summed (parallel scan)"])
least = cheapest([k for k in times if k.startswith("group by unit with the least state")
                  or k.startswith("the same, ")])
csvs = times["safestat release from the CSV file (whole release)"]
def line(label, parts):
    floor = [sum(t) for t in zip(*parts)]
    m = statistics.median(floor)
    rounds = ", ".join(f"{f:.2f} s = {f / c:.1f}x" for f, c in zip(floor, csvs))
    print(f"| {label} | {m:.2f} | {len(floor)} | {m / csv:.2f} |")
    print(f"<!-- per round: {rounds} -->", file=sys.stderr)
line("**less than any pushdown does**: the cheapest fingerprint and one bare grouping by unit",
     [fingerprint, times["group by unit, hash aggregate"]])
line("**the least a pushdown does**: the cheapest fingerprint and the cheapest grouping with the least state and the value check",
     [fingerprint, least])
PY
