#!/usr/bin/env bash
# Rerunnable benchmark of Spark inputs (issue 28) for BENCHMARKS.md: the benchmark policy's
# microdata tables released from Apache Spark through Spark Connect (bounding and counting in
# Spark SQL, --master local[2] on this machine) against the same release from the CSV file,
# interleaved, RUNS times each, medians.
# Usage: bench/spark.sh [ROWS]  (default 10000000)
#   RUNS=3            repetitions per timing
#   DRIVER_MEMORY=4g  the Spark driver's heap (local mode: the executors run in it)
# Needs pyspark (bash .ci/spark installs it into target/pyspark) and Java 17. Converts the CSV to
# Parquet once (bench/out/victims_ROWS.parquet, with pyspark itself), starts its own Spark Connect
# server on 127.0.0.1 and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
RUNS=${RUNS:-3}
DRIVER_MEMORY=${DRIVER_MEMORY:-4g}
out=bench/out
mkdir -p "$out"
bin=target/release
cargo build --release --features postgres,spark --bins --quiet
file="$out/victims_$ROWS.csv"
[ -f "$file" ] || "$bin/safestat-synth" large "$ROWS" "$file"
bash .ci/spark
export SPARK_HOME=$(ls -d "$PWD"/target/pyspark/lib/python3*/site-packages/pyspark | head -1)
py=$PWD/target/pyspark/bin/python
parquet="$PWD/$out/victims_$ROWS.parquet"
if [ ! -d "$parquet" ]; then
  echo "== converting $file to Parquet"
  "$py" - "$PWD/$file" "$parquet" <<'PY'
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
schema = "victim_id STRING, gender STRING, age_group STRING, region STRING, victim_type STRING, services BIGINT"
spark.read.csv(sys.argv[1], header=True, schema=schema).write.parquet(sys.argv[2])
spark.stop()
PY
fi

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$out/spark-server.log"
SPARK_LOCAL_IP=127.0.0.1 setsid "$SPARK_HOME/bin/spark-submit" \
  --class org.apache.spark.sql.connect.service.SparkConnectServer --master 'local[2]' \
  --driver-memory "$DRIVER_MEMORY" \
  --conf spark.connect.grpc.binding.address=127.0.0.1 --conf "spark.connect.grpc.binding.port=$port" \
  --conf spark.ui.enabled=false > /dev/null 2> "$log" &
server=$!
trap 'kill -TERM -- -$server 2>/dev/null || true' EXIT
until grep -q "Spark Connect server started" "$log"; do sleep 1; done
export SAFESTAT_SPARK_URL="sc://127.0.0.1:$port"

sed "s|ROWS|$ROWS|g; s|out/victims_|victims_|" bench/policy.toml.in > "$out/policy-$ROWS.toml"
sed "s|ROWS|spark-$ROWS|g; s|^path = \"out/victims_.*\"|spark = { url_env = \"SAFESTAT_SPARK_URL\", query = \"SELECT * FROM parquet.\`$parquet\`\" }|" \
  bench/policy.toml.in > "$out/policy-spark-$ROWS.toml"

raw="$out/spark-raw.tsv"
: > "$raw"
run() {
  local name=$1; shift
  rm -rf "$out/work" && mkdir -p "$out/work"
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" > /dev/null 2> "$out/stderr.txt" \
    || { echo "bench: $name failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
  read -r secs rss < "$out/time.txt"
  printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >> "$raw"
}
cat "$file" > /dev/null
for i in $(seq "$RUNS"); do
  run "safestat release from the CSV file" "$bin/safestat" release "$out/policy-$ROWS.toml" \
    --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
  run "safestat release from Spark (local[2], Parquet)" "$bin/safestat" release "$out/policy-spark-$ROWS.toml" \
    --out "$out/work/release" --ledger "$out/work/ledger.jsonl"
done

python3 - "$raw" "$ROWS" "$(du -sm "$parquet" | cut -f1)" "$DRIVER_MEMORY" <<'PY' | tee "$out/spark-results.md"
import statistics, sys
raw, rows, parquet_mib, memory = sys.argv[1:]
times = {}
for line in open(raw):
    name, secs, rss = line.rstrip("\n").split("\t")
    times.setdefault(name, []).append((float(secs), int(rss)))
print(f"{int(rows):,} rows; Parquet {int(parquet_mib):,} MiB; Spark driver heap {memory}\n")
print("| measurement | median wall (s) | runs (s) | peak RSS of safestat (MiB) |")
print("| --- | ---: | --- | ---: |")
for name, ts in times.items():
    secs = [t for t, _ in ts]
    print(f"| {name} | {statistics.median(secs):.2f} | {', '.join(f'{t:.1f}' for t in secs)} | {max(r for _, r in ts) / 1024:.0f} |")
PY
