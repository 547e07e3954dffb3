"""Registry (a folder) against MlflowRegistry (MLflow on SQLite), save and load, side by side in one run.

Both registries save the same RandomForest and load it back by alias, interleaved
round by round so that a busy machine slows both alike; the script prints the
median of each and the ratios. Saving to MLflow writes a run (metrics, params,
the data set as input), a logged model (``MLmodel``, the skops file, the card)
and a model version with the card's tags; loading downloads the card and the
model and checks both hashes before rebuilding the model. The folder registry
writes and reads two files. ``--format skops`` gives the folder registry the same
secure format as MLflow's; the default joblib is the course's usual choice.

A first MLflow save in a process also pays one-off costs (importing MLflow,
creating its tables, scanning the installed packages once); they are measured
apart, as "first use". Setting up a new store is measured apart too: MLflow
running its migrations against persistlib writing the same tables from the dump
it ships (``persistlib/backends/_mlflow_schema.py``), interleaved.

    python benchmarks/mlflow_registry.py [--repeat 5] [--trees 100] [--rows 15000] [--format joblib]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
from persistlib.backends._mlflow_schema import prepare_sqlite_store


def main() -> int:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow logs each database set-up step
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--rows", type=int, default=15000)
    ap.add_argument("--format", choices=("joblib", "skops"), default="joblib", help="the folder registry's format")
    args = ap.parse_args()

    X, y = pl.make_churn(args.rows, random_state=0)
    model = RandomForestClassifier(args.trees, random_state=0, n_jobs=-1).fit(X, y)
    print(f"model: RandomForest({args.trees}) on {args.rows} rows; folder registry format: {args.format}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = pl.Registry(tmp / "folder", format=args.format)
        started = time.perf_counter()
        mlflow = pl.MlflowRegistry.in_folder(tmp / "mlflow", "bench")
        mlflow.save(model, dataset=X)
        mlflow.promote("1.0.0")
        mlflow.load("production")
        first_use = time.perf_counter() - started
        folder.save(model, dataset=X)
        folder.promote("1.0.0")

        times: dict[str, list[float]] = {k: [] for k in ("folder save", "MLflow save", "folder load", "MLflow load")}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            folder.save(model, dataset=X)
            t1 = time.perf_counter()
            mlflow.save(model, dataset=X)
            t2 = time.perf_counter()
            folder.load("production")
            t3 = time.perf_counter()
            mlflow.load("production")
            t4 = time.perf_counter()
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[key].append(dt)

        import mlflow as mlflow_module

        setup: dict[str, list[float]] = {"MLflow's migrations": [], "shipped tables": []}
        for i in range(args.repeat):
            for way, prepare in (("MLflow's migrations", False), ("shipped tables", True)):
                uri = f"sqlite:///{tmp / f'{i}-{prepare}.db'}"
                started = time.perf_counter()
                if prepare and not prepare_sqlite_store(uri, mlflow_module.__version__):
                    raise SystemExit(f"no tables shipped for MLflow {mlflow_module.__version__}")
                mlflow_module.MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
                setup[way].append(time.perf_counter() - started)

    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"\nmedian of {args.repeat} interleaved rounds (ms):")
    print(f"{'':8}{'folder Registry':>18}{'MlflowRegistry':>18}{'ratio':>9}")
    for op in ("save", "load"):
        folder_ms, mlflow_ms = med[f"folder {op}"], med[f"MLflow {op}"]
        print(f"{op:8}{folder_ms:>18,.0f}{mlflow_ms:>18,.0f}{mlflow_ms / folder_ms:>8.1f}×")
    slow, fast = (statistics.median(v) * 1000 for v in setup.values())
    print(f"\nsetting up a new SQLite store (median of {args.repeat}): MLflow's migrations {slow:,.0f} ms, ", end="")
    print(f"the shipped tables {fast:,.0f} ms ({slow / fast:.0f}× faster)")
    print(f"\nfirst use of MLflow in this process (import, tables, first save, promote, load): {first_use:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
