"""The parse floor as issue 4 frames it: Polars reading the whole CSV into a DataFrame, on every
core. Timed inside Python, so the interpreter's start-up and imports are not counted.
Usage: polars_read.py FILE RUNS; prints one line per run."""
import sys
import time

import polars as pl

path, runs = sys.argv[1], int(sys.argv[2])
for _ in range(runs):
    start = time.perf_counter()
    frame = pl.read_csv(path)
    seconds = time.perf_counter() - start
    print(f"polars-read rows={frame.height} seconds={seconds:.3f}")
    del frame
