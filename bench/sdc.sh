#!/usr/bin/env bash
# Rerunnable benchmark of exact tables (issue 13) for BENCHMARKS.md: cell suppression of four
# skewed synthetic tables with every margin (17 x 7, 17 x 7 x 2, 250 x 20, 40 x 12 x 4), by safestat (the
# attacker's audit of every hidden cell included in the time), then by GaussSuppression on the
# same tables when R has it, and sdcTable when R has it. Usage: bench/sdc.sh   (HIGHS=1 also times the `--features highs` build)
# The peer, never installed by CI: Debian's r-base-core r-cran-matrix r-cran-mass r-cran-rlang
# r-cran-ellipsis, then `R CMD INSTALL` of SSBtools (statisticsnorway/ssb-ssbtools), RegSDC
# (olangsrud/RegSDC) and GaussSuppression (statisticsnorway/ssb-gausssuppression) from their
# sources (CRAN was not reachable from the machine measured).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/sdc
mkdir -p "$out"
cargo build --release --bins --quiet
echo "== safestat (microlp)"
target/release/safestat-bench sdc "$out"
if [ "${HIGHS:-0}" = 1 ]; then
  echo "== safestat --features highs"
  CARGO_TARGET_DIR=bench/out/highs-target cargo build --release --features highs --bin safestat-bench --quiet
  bench/out/highs-target/release/safestat-bench sdc "$out"
fi
if command -v Rscript >/dev/null && Rscript -e 'library(GaussSuppression)' >/dev/null 2>&1; then
  echo "== GaussSuppression"
  Rscript bench/sdc_peers.R "$out"
  echo "== safestat's attacker's audit of GaussSuppression's patterns"
  target/release/safestat-bench sdc-audit "$out"
else
  echo "(GaussSuppression is not installed: see the comment at the top of this script)"
fi
if command -v Rscript >/dev/null && Rscript -e 'library(sdcTable)' >/dev/null 2>&1; then
  echo "== sdcTable (minutes per table: see bench/sdc_peers_sdctable.R)"
  Rscript bench/sdc_peers_sdctable.R "$out"
  for peer in sdctable-opt sdctable-hitas sdctable-simpleheuristic; do
    echo "== safestat's attacker's audit of $peer's patterns"
    target/release/safestat-bench sdc-audit "$out" "$peer"
  done
else
  echo "(sdcTable is not installed: see the comment at the top of bench/sdc_peers_sdctable.R)"
fi
