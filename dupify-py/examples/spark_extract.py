"""Extraction on Apache Spark: one dupify.Extractor per executor Python worker.

    PYSPARK_PYTHON=$(which python) python dupify-py/examples/spark_extract.py PHOTO_DIR OUT.parquet \
        [--model DIR] [--ops embed,colors,silhouette] [--threads 1] [--master local[2]]

Spark's `binaryFile` source reads the images; `mapInPandas` hands each Python worker
batches of them; the worker builds its Extractor once (a module global: Spark reuses Python
workers, so the model loads once per worker, not per batch) and returns the columns of
`dupify.rows`, the same layout `dupify.ray` writes. Then `dupify.ray.ingest` (or
`dupify.rows.to_features` + `Catalog.upsert_batch`) stores the Parquet in a catalog without
extracting again. Give each worker `threads` = the cores of one Spark task
(`spark.task.cpus`) so workers do not oversubscribe the executor's cores.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterator

import pandas as pd

_EXTRACTOR = None

SCHEMA = (
    "path string, content_hash string, embedding array<float>, features string, "
    "model string, error string, error_code string"
)


def extract_batches(model_dir: str, ops: str, threads: int):
    """The mapInPandas function: `(path, content)` batches to `dupify.rows` columns."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        global _EXTRACTOR
        import dupify
        from dupify.rows import extract_columns

        if _EXTRACTOR is None:
            _EXTRACTOR = dupify.Extractor(model_dir, device="cpu", threads=threads)
        for pdf in batches:
            cols = extract_columns(_EXTRACTOR, [bytes(b) for b in pdf["content"]], ops)
            yield pd.DataFrame({"path": pdf["path"].tolist(), **cols})

    return run


def main() -> int:
    from pyspark.sql import SparkSession

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--model", default=None)
    ap.add_argument("--ops", default="embed,colors,silhouette")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    import dupify

    model = str(args.model or dupify.default_model_dir())
    spark = (
        SparkSession.builder.master(args.master)
        .appName("dupify-extract")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "32")
        .getOrCreate()
    )
    try:
        images = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.{jpg,jpeg,png,webp,gif,bmp}")
            .load(args.photos)
            .select("path", "content")
        )
        rows = images.mapInPandas(extract_batches(model, args.ops, args.threads), schema=SCHEMA)
        rows.write.mode("overwrite").parquet(args.out)
        n = spark.read.parquet(args.out).count()
        print(f"{n} rows in {args.out}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
