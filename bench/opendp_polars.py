"""The sample policy's microdata tables done with OpenDP's Polars API, for bench/run.sh.

Same tables, same contribution bounds (per victim_id: count_units tables keep 1 cell, reports keep
at most 4 rows and 1 per type, sums keep 4 rows clamped to [0, 200]), public category keys, and the
same total cost (rho = 0.335: the six zCDP tables plus the Laplace table's epsilon 0.5 as
rho = 0.125). One difference: OpenDP's context uses one measure, so the sum table gets Gaussian
noise under zCDP where safestat uses discrete Laplace. Usage: opendp_polars.py FILE
"""
import sys

import opendp.prelude as dp
import polars as pl

dp.enable_features("contrib")

CATEGORIES = {
    "gender": ["female", "male"],
    "age_group": ["under_10", "10s", "20s", "30s", "40s", "50_plus", "unknown"],
    "victim_type": ["distribution_fear", "illegal_filming", "distribution", "distribution_threat",
                    "synthesis", "grooming", "sextortion", "harassment", "other"],
    "region": ["seoul", "busan", "daegu", "incheon", "gwangju", "daejeon", "ulsan", "sejong",
               "gyeonggi", "gangwon", "chungbuk", "chungnam", "jeonbuk", "jeonnam", "gyeongbuk",
               "gyeongnam", "jeju"],
}


# OpenDP 0.16's default keep="sample" builds pl.struct(struct.hash(), struct) with two fields of
# one name, which Polars 1.36 (the version it installs) rejects; "first" ranks the same way
# without the hash, so the work measured is comparable, though the kept groups are not random.
KEEP = "first"


def key_column(by):
    """One grouping column per table. OpenDP 0.16's truncate_num_groups fails on several `by`
    columns (a Polars "multiple fields with name" error), so multi-column tables group by their
    categories joined with `|`, which is the same partition."""
    return by[0] if len(by) == 1 else "|".join(by)


def keys(by):
    frame = pl.DataFrame({by[0]: CATEGORIES[by[0]]})
    for c in by[1:]:
        frame = frame.join(pl.DataFrame({c: CATEGORIES[c]}), how="cross")
    name = key_column(by)
    return frame.select(pl.concat_str(by, separator="|").alias(name)) if len(by) > 1 else frame


def main(path):
    lf = pl.scan_csv(path, schema_overrides={"services": pl.Int64}).with_columns(
        pl.concat_str(["gender", "age_group"], separator="|").alias("gender|age_group"),
        pl.concat_str(["region", "age_group"], separator="|").alias("region|age_group"),
    )
    count_tables = [(["gender", "age_group"], 0.05), (["gender"], 0.02), (["age_group"], 0.02),
                    (["region"], 0.02), (["region", "age_group"], 0.05)]
    weights = [rho for _, rho in count_tables] + [0.05, 0.125]
    context = dp.Context.compositor(
        data=lf,
        privacy_unit=dp.unit_of(contributions=1, identifier="victim_id"),
        privacy_loss=dp.loss_of(rho=sum(weights)),
        split_by_weights=weights,
        # A public upper bound on a region's row count, which OpenDP's sum needs.
        margins=[dp.polars.Margin(by=["region"], max_length=1_000_000_000)],
    )
    results = []
    for by, _ in count_tables:
        col = key_column(by)
        q = (context.query()
             .truncate_num_groups(1, by=[col], keep=KEEP)
             .truncate_per_group(1, by=[col])
             .group_by(col).agg(dp.len())
             .with_keys(keys(by)))
        results.append(q.release().collect())
    q = (context.query()
         .truncate_num_groups(4, by=["victim_type"], keep=KEEP)
         .truncate_per_group(1, by=["victim_type"])
         .group_by("victim_type").agg(dp.len())
         .with_keys(keys(["victim_type"])))
    results.append(q.release().collect())
    q = (context.query()
         .truncate_per_group(4, by=["region"])
         .group_by("region").agg(pl.col("services").fill_null(0).dp.sum((0, 200)))
         .with_keys(keys(["region"])))
    results.append(q.release().collect())
    print(sum(r.height for r in results), "cells released")


if __name__ == "__main__":
    main(sys.argv[1])
