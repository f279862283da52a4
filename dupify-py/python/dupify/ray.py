"""Batch extraction on a Ray cluster, and its rows into a catalog without extracting again.

``pip install 'dupify[ray]'``. Ray Data streams the work: read tasks load image bytes, a pool
of actors (each holding one :class:`dupify.Extractor`, so the model loads once per actor, not
per batch) extracts them, and the rows go to Parquet or straight into a catalog. One bad
image never fails a block: its row carries ``error`` / ``error_code`` instead of features.

>>> import ray, dupify.ray
>>> ds = ray.data.read_binary_files("photos/", include_paths=True)
>>> rows = dupify.ray.extract_dataset(ds, model_dir="efficientnet-lite2", num_actors=4)
>>> rows.write_parquet("features/")                        # content_hash for de-dup/resume
>>> dupify.ray.ingest(rows, "postgres://…/shop", dupify.Namespace("acme", "live"), writers=4)

Output columns: every input column but the bytes, then those of :mod:`dupify.rows`:
``content_hash`` (SHA-256 hex of the bytes, also for failed rows), ``embedding``
(``fixed_size_list<float32>[dim]`` here, null without an embedding), ``features`` (the core's
features JSON without the embedding: colours, silhouette, attributes, quality, model),
``model``, ``error`` and ``error_code`` (null on success).

On a small node, actors must leave CPU for the read tasks or the job waits forever for a CPU
that never frees: :func:`extract_dataset` sizes each actor's CPU share to what the cluster
has (fractional where needed) and refuses a request that leaves none.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("dupify.ray needs Ray Data: pip install 'dupify[ray]'") from e

import dupify
from dupify.rows import COLUMNS, content_hash, embeds, extract_columns, to_features

#: CPUs left free for the read tasks feeding the actors. Ray Data's read tasks ask for one CPU
#: each unless told otherwise; a dataset read with ``ray_remote_args={"num_cpus": r}`` (as
#: :func:`index_folder_rows` does, with :data:`LIGHT_TASK_CPUS`) needs only ``r``.
READ_RESERVE_CPUS = 1.0

#: The CPU share of the light tasks this module adds (reading files, the resume filter).
LIGHT_TASK_CPUS = 0.25

#: The CPU share of each catalog writer actor: writing is mostly waiting on the database.
#: Writers run beside the extraction actors, so pass ``reserve_cpus`` covering them to
#: :func:`extract_dataset` (``python -m dupify.ray`` does), or they wait for extraction to end.
WRITER_CPUS = 0.1

#: Product fields a row may carry (the catalog's product JSON), copied when present.
PRODUCT_FIELDS = (
    "external_id", "title", "sku", "description", "brand", "category", "price", "currency",
    "image_url", "product_url", "metadata",
)


class Extract:
    """A Ray Data callable class: one :class:`dupify.Extractor` per actor.

    ``threads`` (torch intra-op threads) defaults to the CPUs the actor was given, rounded up,
    so actors on one node do not oversubscribe its cores. Batches arrive as Arrow tables with
    the image bytes in ``image_column``.
    """

    def __init__(
        self,
        model_dir: Optional[str] = None,
        ops: str = "embed,colors,silhouette",
        *,
        device: str = "auto",
        precision: str = "f32",
        threads: Optional[int] = None,
        batch_size: int = 32,
        image_column: str = "bytes",
    ) -> None:
        if threads is None:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
            threads = max(1, math.ceil(cpus - 1e-9))
        self.extractor = dupify.Extractor(
            model_dir, device=device, precision=precision, threads=threads, batch_size=batch_size
        )
        self.extractor.warm_up()
        self.ops = ops
        self.image_column = image_column
        self.dim = self.extractor.embed_dim if embeds(ops) else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.image_column not in batch.column_names:
            raise ValueError(f"no column {self.image_column!r} in {batch.column_names}")
        images = [bytes(b) if b is not None else b"" for b in batch.column(self.image_column).to_pylist()]
        cols = extract_columns(self.extractor, images, self.ops)
        out = batch.drop_columns([self.image_column])
        emb_type = pa.list_(pa.float32(), self.dim) if self.dim else pa.list_(pa.float32())
        for name in COLUMNS:
            typ = emb_type if name == "embedding" else pa.string()
            out = out.append_column(name, pa.array(cols[name], type=typ))
        return out


def actor_cpus(num_actors: int, num_cpus: Optional[float], reserve_cpus: float = READ_RESERVE_CPUS) -> float:
    """The CPU share per actor: ``num_cpus`` when it leaves ``reserve_cpus`` for the read
    tasks, else an error (the job would wait forever for a CPU); by default the cluster's
    CPUs less ``reserve_cpus``, shared equally."""
    if num_actors < 1:
        raise ValueError(f"num_actors must be at least 1, got {num_actors}")
    total = float(ray.cluster_resources().get("CPU", 0.0))
    free = total - reserve_cpus
    if num_cpus is None:
        if free <= 0:
            raise ValueError(f"the cluster has {total:g} CPUs: no room for extraction actors")
        return free / num_actors
    if num_cpus <= 0:
        raise ValueError(f"num_cpus must be positive, got {num_cpus}")
    if num_actors * num_cpus > free:
        raise ValueError(
            f"{num_actors} actors x {num_cpus:g} CPUs leaves less than {reserve_cpus:g} of the "
            f"cluster's {total:g} CPUs for reading, and the job would wait forever: use fewer "
            f"actors or a fractional num_cpus (at most {free / num_actors:.2f})"
        )
    return float(num_cpus)


def default_actors(gpus_per_actor: float = 0, reserve_cpus: float = LIGHT_TASK_CPUS) -> int:
    """How many extraction actors suit the cluster: one per GPU share when actors take GPUs,
    else one per CPU left for them, each with one torch thread. On the 2-core machine two
    one-thread actors run 1.07x in-process extraction where one two-thread actor runs 0.63x
    (README, "Batch extraction on a cluster")."""
    res = ray.cluster_resources()
    if gpus_per_actor > 0:
        return max(1, int(res.get("GPU", 0) // gpus_per_actor))
    return max(1, round(float(res.get("CPU", 1.0)) - reserve_cpus))


def extract_dataset(
    ds: "ray.data.Dataset",
    *,
    model_dir: Optional[str] = None,
    ops: str = "embed,colors,silhouette",
    num_actors: int = 1,
    num_cpus: Optional[float] = None,
    num_gpus: float = 0,
    batch_size: int = 32,
    device: Optional[str] = None,
    precision: str = "f32",
    image_column: str = "bytes",
    resume_from: Optional[Union[str, os.PathLike]] = None,
    extract_class: type = None,
    reserve_cpus: float = READ_RESERVE_CPUS,
) -> "ray.data.Dataset":
    """Maps a dataset of image bytes to feature rows (lazily; nothing runs until consumed).

    ``num_gpus`` per actor (``device`` then defaults to ``cuda``); ``resume_from`` is a Parquet
    directory of an earlier run: inputs whose content hash it holds without an error are
    skipped. A dead actor is restarted and its batch run again (Ray Data's defaults for actor
    pools); a batch's rows are emitted only when the whole batch is done, so nothing appears
    twice.
    ``extract_class`` (default :class:`Extract`) may be a subclass that adds or changes
    columns. ``reserve_cpus``: what the input's read tasks need (see
    :data:`READ_RESERVE_CPUS`; :func:`index_folder_rows` datasets need
    :data:`LIGHT_TASK_CPUS`).
    """
    cpus = actor_cpus(num_actors, num_cpus, reserve_cpus)
    if device is None:
        device = "cuda" if num_gpus > 0 else "cpu"
    if resume_from is not None:
        done = _done_hashes(resume_from)
        if done:
            ds = ds.filter(
                lambda row: content_hash(row[image_column]) not in done,
                num_cpus=LIGHT_TASK_CPUS,
            )
    return ds.map_batches(
        extract_class or Extract,
        fn_constructor_kwargs=dict(
            model_dir=None if model_dir is None else str(model_dir),
            ops=ops,
            device=device,
            precision=precision,
            batch_size=batch_size,
            image_column=image_column,
        ),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=cpus,
        num_gpus=num_gpus,
    )


def _done_hashes(path: Union[str, os.PathLike]) -> set:
    p = pathlib.Path(path)
    if not p.exists():
        return set()
    import pyarrow.parquet as pq

    table = pq.read_table(p, columns=["content_hash", "error"])
    ok = table.filter(pc.is_null(table.column("error")))
    return set(ok.column("content_hash").to_pylist())


def _product(row: Mapping[str, Any], to_product: Optional[Callable[[Mapping[str, Any]], Mapping[str, Any]]]) -> Dict[str, Any]:
    if to_product is not None:
        return dict(to_product(row))
    product = {k: row[k] for k in PRODUCT_FIELDS if row.get(k) is not None}
    if "external_id" not in product:
        key = row.get("id") or row.get("path")
        if key is None:
            raise ValueError("a row needs external_id, id or path (or pass to_product)")
        product["external_id"] = str(key)
    return product


def rows_to_items(
    rows: Iterable[Mapping[str, Any]],
    to_product: Optional[Callable[[Mapping[str, Any]], Mapping[str, Any]]] = None,
    failures: Optional[List[Dict[str, Any]]] = None,
) -> List[tuple]:
    """``(product, features)`` pairs for :meth:`dupify.Catalog.upsert_batch` from extracted
    rows that succeeded; rows with an ``error`` are left out (and appended to ``failures``
    as ``{"product", "error_code", "error"}`` when given)."""
    items = []
    for row in rows:
        if row.get("error") is not None:
            if failures is not None:
                failures.append(
                    {"product": _product(row, to_product), "error_code": row.get("error_code"), "error": row["error"]}
                )
            continue
        # The core's Features again (what the actor extracted), so the catalog converts them
        # exactly as its own ingest does.
        product = _product(row, to_product)
        product.setdefault("image_hash", row["content_hash"])
        items.append((product, to_features(row)))
    return items


class _Writer:
    """A Ray Data callable class: one catalog connection per writer actor."""

    def __init__(self, catalog: str, namespace: Sequence[str], to_product=None) -> None:
        self.catalog = dupify.Catalog(catalog)
        self.namespace = dupify.Namespace(*namespace)
        self.to_product = to_product

    def __call__(self, batch: pa.Table) -> pa.Table:
        failures: List[Dict[str, Any]] = []
        items = rows_to_items(batch.to_pylist(), self.to_product, failures)
        stored = self.catalog.upsert_batch(self.namespace, items) if items else []
        return pa.table(
            {
                "stored": pa.array([len(stored)], pa.int64()),
                "failures": pa.array([json.dumps(failures)], pa.string()),
            }
        )


def ingest(
    rows: Union["ray.data.Dataset", str, os.PathLike],
    catalog: Union[str, os.PathLike, "dupify.Catalog"],
    namespace: "dupify.Namespace",
    *,
    writers: int = 1,
    batch_size: int = 256,
    to_product: Optional[Callable[[Mapping[str, Any]], Mapping[str, Any]]] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> Dict[str, Any]:
    """Stores extracted rows (a dataset, or a Parquet directory of them) in a catalog, with
    their precomputed features: nothing is extracted again, and the catalog refuses rows of
    another model than the one its namespace is bound to. The dataset runs once: rows
    stream from extraction into the catalog.

    ``catalog``: a :class:`dupify.Catalog` (searches through that handle then see the rows at
    once), or a SQLite path or ``postgres://`` URL to open. ``writers=1`` writes from this
    process (a SQLite file has one writer). With a ``postgres://`` URL, ``writers > 1`` runs that many writer actors, each with its own
    connection; batches of 64 or more go in by ``COPY``. Products are the rows'
    ``external_id``/``title``/``brand``/``category``/``price``/… columns (``external_id``
    defaults to ``id`` or ``path``), or what ``to_product(row)`` returns. Returns
    ``{"stored": n, "failed": m, "failures": [...]}``: the rows that carried an extraction
    error, each ``{"product", "error_code", "error"}``.
    """
    ds = ray.data.read_parquet(str(rows)) if isinstance(rows, (str, os.PathLike)) else rows
    failures: List[Dict[str, Any]] = []
    stored = 0
    if writers > 1:
        if isinstance(catalog, dupify.Catalog) or not str(catalog).startswith(("postgres://", "postgresql://")):
            raise ValueError("writers > 1 needs a postgres:// URL (a SQLite file has one writer)")
        ns = (namespace.account, namespace.environment)
        out = ds.map_batches(
            _Writer,
            fn_constructor_args=(str(catalog), ns, to_product),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=writers),
            num_cpus=WRITER_CPUS,
        )
        for batch in out.iter_batches(batch_size=None, batch_format="pyarrow"):
            for n, f in zip(batch.column("stored").to_pylist(), batch.column("failures").to_pylist()):
                stored += n
                failures.extend(json.loads(f))
                if progress is not None:
                    progress(stored)
    else:
        cat = catalog if isinstance(catalog, dupify.Catalog) else dupify.Catalog(catalog)
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="pyarrow"):
            items = rows_to_items(batch.to_pylist(), to_product, failures)
            if items:
                stored += len(cat.upsert_batch(namespace, items))
            if progress is not None:
                progress(stored)
    return {"stored": stored, "failed": len(failures), "failures": failures}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def index_folder_rows(folder: Union[str, os.PathLike]) -> "ray.data.Dataset":
    """Every image under ``folder`` as rows with the product fields ``dupify index`` gives:
    external id = path relative to the folder, category = the folder holding the file,
    title = file stem."""
    root = pathlib.Path(folder).resolve()
    files = sorted(
        str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    ds = ray.data.read_binary_files(files, include_paths=True, ray_remote_args={"num_cpus": LIGHT_TASK_CPUS})

    def fields(row: Dict[str, Any]) -> Dict[str, Any]:
        p = pathlib.Path(row["path"])
        rel = p.relative_to(root) if p.is_absolute() else pathlib.Path(row["path"])
        row["external_id"] = rel.as_posix()
        row["category"] = rel.parent.name if rel.parent.name else None
        row["title"] = p.stem
        return row

    return ds.map(fields, num_cpus=LIGHT_TASK_CPUS)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m dupify.ray index FOLDER --catalog DB|URL``: ``dupify index`` on Ray."""
    ap = argparse.ArgumentParser(prog="python -m dupify.ray", description=main.__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    ix = sub.add_parser("index", help="extract every image under FOLDER on Ray and store it in a catalog")
    ix.add_argument("folder")
    ix.add_argument("--catalog", required=True, help="SQLite file or postgres:// URL")
    ix.add_argument("--address", help="Ray cluster address (default: start a local one)")
    ix.add_argument("--model", help="model directory (default: dupify.default_model_dir())")
    ix.add_argument("--ops", default="embed,colors,silhouette")
    ix.add_argument("--account", default="local")
    ix.add_argument("--env", default="test", choices=["test", "live"])
    ix.add_argument(
        "--actors",
        type=int,
        help="extraction actors (default: one per GPU with --gpus-per-actor, else one per CPU "
        "left after reading: one torch thread each, faster on CPUs than fewer, wider actors)",
    )
    ix.add_argument("--cpus-per-actor", type=float)
    ix.add_argument("--gpus-per-actor", type=float, default=0)
    ix.add_argument("--batch-size", type=int, default=32)
    ix.add_argument("--writers", type=int, default=1)
    ix.add_argument("--parquet", help="also write the extracted rows here (and resume from them)")
    args = ap.parse_args(argv)

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(include_dashboard=False)
    model = args.model or dupify.default_model_dir()
    if model is None:
        ap.error("no model: pass --model (or put one where dupify.default_model_dir() looks)")
    # Writer actors (PostgreSQL) run beside the extraction actors: leave them their share.
    reserve = LIGHT_TASK_CPUS + (WRITER_CPUS * args.writers if args.writers > 1 else 0.0)
    actors = args.actors or default_actors(args.gpus_per_actor, reserve)
    print(f"dupify.ray: {actors} actor(s) on {ray.cluster_resources()}", file=sys.stderr)
    rows = extract_dataset(
        index_folder_rows(args.folder),
        reserve_cpus=reserve,
        model_dir=str(model),
        ops=args.ops,
        num_actors=actors,
        num_cpus=args.cpus_per_actor,
        num_gpus=args.gpus_per_actor,
        batch_size=args.batch_size,
        resume_from=args.parquet,
    )
    if args.parquet:
        # Extracted once into Parquet (appended beside an earlier run's files), then stored
        # from there: the rows stream from disk instead of staying in the object store.
        rows.write_parquet(args.parquet)
        rows = args.parquet
    ns = dupify.Namespace(args.account, args.env)
    report = ingest(
        rows,
        args.catalog,
        ns,
        writers=args.writers,
        progress=lambda n: print(f"\rstored {n}", end="", file=sys.stderr, flush=True),
    )
    print(file=sys.stderr)
    for f in report["failures"]:
        print(f"{f['product'].get('external_id')}: {f['error_code']}: {f['error']}", file=sys.stderr)
    print(json.dumps({"stored": report["stored"], "failed": report["failed"]}))
    return 1 if report["failed"] else 0

if __name__ == "__main__":
    sys.exit(main())
