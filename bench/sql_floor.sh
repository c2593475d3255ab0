#!/usr/bin/env bash
# Rerunnable benchmark for BENCHMARKS.md (issue 28): what the steps of a pushed-down release cost
# PostgreSQL on its own, against the CSV path's whole release on the same rows. Each step is the
# least a statement of that shape must do: a scan, a grouping by the privacy unit (by hash and by
# sort), a sort of every row by unit and content, one executor node over every row on one core,
# a keyed hash per row, a row's text and its MD5, and the domain check in two forms.
# Usage: bench/sql_floor.sh [ROWS]  (default 10000000)
#   RUNS=3   repetitions per timing (medians are reported)
# Same cluster and data as bench/sql.sh (bench/pg_load.sh). Needs /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
RUNS=${RUNS:-3}
out=bench/out
pg="$out/pg"
mkdir -p "$out"
bin=target/release
cargo build --release --bins --quiet
file="$out/victims_$ROWS.csv"
[ -f "$file" ] || "$bin/safestat-synth" large "$ROWS" "$file"
. bench/pg_load.sh
sed "s|ROWS|$ROWS|g; s|out/victims_|victims_|" bench/policy.toml.in > "$out/policy-$ROWS.toml"

# The declared categories of the benchmark policy, as SQL arrays.
t="'{distribution_fear,illegal_filming,distribution,distribution_threat,synthesis,grooming,sextortion,harassment,other}'::text[]"
r="'{seoul,busan,daegu,incheon,gwangju,daejeon,ulsan,sejong,gyeonggi,gangwon,chungbuk,chungnam,jeonbuk,jeonnam,gyeongbuk,gyeongnam,jeju}'::text[]"
g="'{female,male}'::text[]"
a="'{under_10,10s,20s,30s,40s,50_plus,unknown}'::text[]"
id="concat_ws(',', quote_nullable(victim_id), quote_nullable(victim_type), quote_nullable(region), quote_nullable(gender), quote_nullable(age_group), quote_nullable(services::text)) COLLATE \"C\""
steps=(
  "scan every row (count)|SELECT count(*) FROM victims"
  "group by unit, hash aggregate|SELECT count(*) FROM (SELECT victim_id COLLATE \"C\" FROM victims GROUP BY 1) x"
  "group by unit, sort (DISTINCT ON)|SELECT count(*) FROM (SELECT DISTINCT ON (u) u FROM (SELECT victim_id COLLATE \"C\" AS u FROM victims) r ORDER BY u) x"
  "sort every row by (unit, content), number repeats|SELECT count(*) FROM (SELECT row_number() OVER (PARTITION BY victim_id COLLATE \"C\", $id) AS occ FROM victims) x WHERE occ > 1"
  "one window node over every row, one core, no sort|SELECT count(*) FROM (SELECT row_number() OVER () AS n FROM victims) x WHERE n > 0"
  "SHA-256 per row (parallel scan)|SELECT count(*) FROM victims WHERE sha256(convert_to(victim_id || ',' || region, 'UTF8')) = '\\x00'"
  "a row's text per row (parallel scan)|SELECT count(*) FROM victims s WHERE s::text = ''"
  "MD5 of a row's text per row (parallel scan)|SELECT count(*) FROM victims s WHERE md5(s::text) = ''"
  "domain check, grouping sets (as released until now)|SELECT count(*) FROM victims s GROUP BY GROUPING SETS ((victim_type), (region), (gender), (age_group)) HAVING (GROUPING(victim_type) = 0 AND (victim_type IS NULL OR victim_type <> ALL($t))) OR (GROUPING(region) = 0 AND (region IS NULL OR region <> ALL($r))) OR (GROUPING(gender) = 0 AND (gender IS NULL OR gender <> ALL($g))) OR (GROUPING(age_group) = 0 AND (age_group IS NULL OR age_group <> ALL($a)))"
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
PY
