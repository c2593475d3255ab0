# The peers of `safestat-bench sdc` (BENCHMARKS.md, issue 13): GaussSuppression on the same four
# tables, written by `safestat-bench sdc DIR`. Usage: Rscript bench/sdc_peers.R DIR
# Primary: 0 < n <= 4 (maxN = 4), zeros never suppressed (protectZeros = FALSE), every margin
# published, no singleton handling (safestat has none; GaussSuppression's default adds some).
# GaussSuppression guarantees that no suppressed cell is exactly disclosed; it has no interval
# requirement, so its patterns answer a weaker demand than safestat's (interval_percent = 20).
suppressPackageStartupMessages(library(GaussSuppression))
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "bench/out/sdc"
cat("| table | method | primary | secondary | value hidden by secondaries | seconds |\n")
cat("| --- | --- | ---: | ---: | ---: | ---: |\n")
for (name in c("17x7", "17x7x2", "250x20", "40x12x4")) {
  d <- read.csv(file.path(dir, paste0("sdc_", name, ".csv")), header = FALSE, colClasses = "character")
  k <- ncol(d) - 1
  names(d) <- c(paste0("d", seq_len(k)), "freq")
  d$freq <- as.integer(d$freq)
  elapsed <- system.time(
    out <- GaussSuppressionFromData(d, dimVar = paste0("d", seq_len(k)), freqVar = "freq",
                                    maxN = 4, protectZeros = FALSE, singletonMethod = "none",
                                    printInc = FALSE)
  )[["elapsed"]]
  sec <- out$suppressed & !out$primary
  # The pattern, for `safestat-bench sdc-audit DIR`: every cell, totals labelled `Total`.
  write.csv(out[, c(paste0("d", seq_len(k)), "freq", "suppressed")],
            file.path(dir, paste0("gauss_", name, ".csv")), row.names = FALSE, quote = FALSE)
  cat(sprintf("| %s | GaussSuppression %s | %d | %d | %d | %.2f |\n", name,
              as.character(packageVersion("GaussSuppression")), sum(out$primary), sum(sec),
              sum(out$freq[sec]), elapsed))
}
