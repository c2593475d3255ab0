# sdcTable, the second peer of `safestat-bench sdc` (BENCHMARKS.md, issue 13), on the same tables,
# written by `safestat-bench sdc DIR`. Usage: Rscript bench/sdc_peers_sdctable.R DIR [TABLE...]
# Primary: 0 < n <= 4 (primarySuppression type "freq", maxN = 4, zeros not suppressed), every
# margin published (one flat hierarchy per dimension, its total `Total`). Methods: "OPT" (cut and
# branch on HiGHS; sdcTable's default approxPerc = 10 accepts a pattern within 10% of its bound),
# "HITAS" and "SIMPLEHEURISTIC" (which solves attacker problems). sdcTable's protection levels
# are its own (1 either way by default). OPT and HITAS get
# a time limit of TIME_LIMIT minutes (default 10), after which they return what they have;
# METHODS="OPT HITAS" runs only those. With the primary cells' values 1 to 4, safestat's 20%
# asks 1 either way, sdcTable's default levels: the same demand.
# Installed from sources (CRAN was not reachable from the machine measured): Debian's
# r-cran-rcpp r-cran-data.table r-cran-knitr r-cran-stringr r-cran-slam r-cran-progressr
# r-cran-shiny r-cran-shinythemes r-cran-shinyjs r-cran-jsonlite r-cran-checkmate libglpk-dev
# cmake, then `R CMD INSTALL` of shinyTree (shinyTree/shinyTree), sdcHierarchies
# (bernhard-da/sdcHierarchies), highs (cran/highs, which builds HiGHS) and sdcTable
# (sdcTools/sdcTable), with SSBtools from bench/sdc_peers.R's list.
suppressPackageStartupMessages({
  library(sdcTable)
  library(sdcHierarchies)
})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "bench/out/sdc"
only <- if (length(args) > 1) args[-1] else c("17x7", "17x7x2", "250x20", "40x12x4")
limit <- as.numeric(Sys.getenv("TIME_LIMIT", "10"))
cat(sprintf("| table | method (sdcTable %s) | primary | secondary | value hidden by secondaries | seconds |\n",
            as.character(packageVersion("sdcTable"))))
cat("| --- | --- | ---: | ---: | ---: | ---: |\n")
for (name in only) {
  d <- read.csv(file.path(dir, paste0("sdc_", name, ".csv")), header = FALSE, colClasses = "character")
  k <- ncol(d) - 1
  dims <- paste0("d", seq_len(k))
  names(d) <- c(dims, "freq")
  d$freq <- as.integer(d$freq)
  dimList <- lapply(dims, function(v) hier_create(root = "Total", nodes = sort(unique(d[[v]]))))
  names(dimList) <- dims
  methods <- strsplit(Sys.getenv("METHODS", "OPT HITAS SIMPLEHEURISTIC"), " ")[[1]]
  for (method in methods) {
    elapsed <- system.time({
      p <- makeProblem(data = d, dimList = dimList, freqVarInd = match("freq", names(d)))
      p <- primarySuppression(p, type = "freq", maxN = 4, allowZeros = FALSE)
      res <- if (method == "SIMPLEHEURISTIC") {
        protectTable(p, method = method)
      } else {
        protectTable(p, method = method, timeLimit = limit)
      }
    })[["elapsed"]]
    f <- getInfo(res, type = "finalData")
    sec <- f$sdcStatus == "x"
    # The pattern, for `safestat-bench sdc-audit DIR sdctable-opt` (or -hitas, -simpleheuristic):
    # every cell, totals labelled `Total`, in the columns bench/sdc_peers.R writes.
    pattern <- as.data.frame(f)[, dims, drop = FALSE]
    pattern$freq <- f$Freq
    pattern$suppressed <- f$sdcStatus %in% c("u", "x")
    write.csv(pattern, file.path(dir, paste0("sdctable-", tolower(method), "_", name, ".csv")),
              row.names = FALSE, quote = FALSE)
    cat(sprintf("| %s | %s | %d | %d | %d | %.2f |\n", name, method, sum(f$sdcStatus == "u"),
                sum(sec), sum(f$Freq[sec]), elapsed))
  }
}
