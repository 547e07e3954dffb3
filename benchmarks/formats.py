"""Persistence formats side by side: size, save, load, and prediction latency, in one run.

Two models trained on ``make_churn``: a StandardScaler + LogisticRegression
pipeline and a RandomForest(200). Eight formats: pickle, joblib compress 0 / 3 / 9,
joblib lz4-3, joblib lzma-3, skops and ONNX. For each: file size, save time,
load time, single-row ``predict`` latency (p50 / p99) and batch-1000 latency of
the model as loaded back from that format.

Writes ``benchmarks/results/formats.csv`` and ``formats.png`` (git-ignored) and
prints a short table. Notebook 07 plots a smaller live run of the same
functions (``persistlib.format_benchmark.compare_formats``).

    python benchmarks/formats.py            # full run, a minute or two
    python benchmarks/formats.py --quick    # smaller data, fewer trees and timings
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import persistlib as pl
from persistlib.format_benchmark import compare_formats, plot_comparison

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 rows, RF(50), 40 single-row timings")
    ap.add_argument("--rows", type=int, default=None, help="training rows (default 10000, quick 2000)")
    ap.add_argument("--trees", type=int, default=None, help="forest size (default 200, quick 50)")
    ap.add_argument("--single", type=int, default=None, help="single-row timings per format (default 200)")
    args = ap.parse_args()
    rows = args.rows or (2000 if args.quick else 10000)
    trees = args.trees or (50 if args.quick else 200)
    n_single = args.single or (40 if args.quick else 200)

    X, y = pl.make_churn(rows + 2000, random_state=0)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=2000, random_state=0, stratify=y)
    models = {
        "scaler+LR": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        f"RF({trees})": RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1),
    }
    print(
        f"make_churn: {rows} training rows, {len(X_test)} held-out rows for the latency runs; "
        f"{n_single} single-row calls, batch of 1000 (best of 5). Timings vary from run to run; sizes do not.\n"
    )
    results = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in models.items():
            model.fit(X_train, y_train)
            results += compare_formats(model, X_test, Path(tmp) / label, n_single=n_single, label=label)
    elapsed = time.perf_counter() - t_start

    RESULTS.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = RESULTS / "formats.csv", RESULTS / "formats.png"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    fig = plot_comparison(results)
    fig.savefig(png_path, dpi=110)

    print(
        f"{'model':<10} {'format':<14} {'size':>9} {'save':>8} {'load':>8} "
        f"{'1-row p50':>10} {'1-row p99':>10} {'batch 1000':>11}"
    )
    for r in results:
        print(
            f"{r['model']:<10} {r['format']:<14} {_size(r['bytes']):>9} {r['save_s'] * 1e3:>6.0f}ms "
            f"{r['load_s'] * 1e3:>6.1f}ms {r['single_p50_s'] * 1e6:>8.0f}µs {r['single_p99_s'] * 1e6:>8.0f}µs "
            f"{r['batch_s'] * 1e3:>9.1f}ms"
        )
    print()
    for label in models:
        mine = {r["format"]: r for r in results if r["model"] == label}
        if "onnx" in mine and "pickle" in mine:
            p, o = mine["pickle"], mine["onnx"]
            print(
                f"{label}: one row p50: scikit-learn {p['single_p50_s'] * 1e6:.0f} µs vs ONNX "
                f"{o['single_p50_s'] * 1e6:.0f} µs ({p['single_p50_s'] / o['single_p50_s']:.0f}× faster); "
                f"batch of 1000: {p['batch_s'] * 1e3:.1f} ms vs {o['batch_s'] * 1e3:.1f} ms; "
                f"ONNX file {o['bytes'] / p['bytes']:.2f}× the pickle's size."
            )
    print(f"\nwrote {csv_path} and {png_path} ({elapsed:.0f} s)")
    return 0


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


if __name__ == "__main__":
    raise SystemExit(main())
