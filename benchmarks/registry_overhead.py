"""How much does the registry cost over bare joblib? Measured side by side in one run.

The registry adds, on save: an fsync of the artefact, a sha256 of it, a lock and
an atomically written card; on load: reading the card, a sha256 check, and a
version check. This script saves and loads the same ~20 MB forest both ways,
interleaved, and prints the median times and their ratio.

Target (issue 2): registry / bare <= 1.15 in both directions.

The second table measures, in the same run, what the hardening of issue 10 adds to
each load: the card's field-by-field validation, the regular-file check with a read
bounded by the card's size, and the size comparison, each against its plain
equivalent (``json.loads`` into a card; ``Path.read_bytes``). Target: <= 2 % of a load.

    python benchmarks/registry_overhead.py [--repeat 7] [--trees 100] [--rows 20000]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import joblib
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--rows", type=int, default=15000)
    args = ap.parse_args()

    X, y = pl.make_churn(args.rows, random_state=0)
    model = RandomForestClassifier(args.trees, random_state=0, n_jobs=-1).fit(X, y)
    raw_mb = len(pickle.dumps(model, protocol=5)) / 2**20
    print(f"model: RandomForest({args.trees}) on {args.rows} rows, {raw_mb:.1f} MiB pickled")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reg = pl.Registry(tmp / "registry")
        times: dict[str, list[float]] = {"bare save": [], "registry save": [], "bare load": [], "registry load": []}
        for i in range(args.repeat):
            bare = tmp / f"bare_{i}.pkl"
            t0 = time.perf_counter()
            joblib.dump(model, bare, compress=3)
            t1 = time.perf_counter()
            card = reg.save(model, compress=3)
            t2 = time.perf_counter()
            joblib.load(bare)
            t3 = time.perf_counter()
            reg.load(card.version)
            t4 = time.perf_counter()
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[key].append(dt)
        size_mb = (tmp / "bare_0.pkl").stat().st_size / 2**20
        checks = _hardening_cost(reg, card.version, args.repeat * 20)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"artefact: {size_mb:.1f} MiB (joblib compress=3); median of {args.repeat} interleaved runs\n")
    print(f"{'':8}{'bare joblib':>14}{'registry':>12}{'ratio':>8}  target")
    for op in ("save", "load"):
        ratio = med[f"registry {op}"] / med[f"bare {op}"]
        flag = "✓" if ratio <= 1.15 else "✗"
        print(
            f"{op:8}{med[f'bare {op}'] * 1e3:>11.0f} ms{med[f'registry {op}'] * 1e3:>9.0f} ms"
            f"{ratio:>7.2f}×  ≤ 1.15× {flag}"
        )
    extra = sum(checks.values())
    share = extra / med["registry load"]
    print(f"\nthe load's hardening checks, each against its plain equivalent (median of {args.repeat * 20}):")
    for name, dt in checks.items():
        print(f"  {name:<44}{dt * 1e6:>8.1f} µs")
    print(
        f"  {'in all':<44}{extra * 1e6:>8.1f} µs = {share:.2%} of a registry load "
        f"(target ≤ 2 %) {'✓' if share <= 0.02 else '✗'}"
    )
    return 0


def _hardening_cost(reg: pl.Registry, version: str, n: int) -> dict[str, float]:
    """Median extra seconds per load of each check, timed against the plain operation it replaces."""
    import json

    from persistlib._files import read_regular
    from persistlib.card import ModelCard, card_file_name

    card_path = reg.root / card_file_name(version)
    text = card_path.read_bytes()
    card = ModelCard.from_json(text)
    artefact = reg.root / card.artifact

    def median_gap(checked, plain) -> float:
        gaps = []
        for _ in range(n):
            t0 = time.perf_counter()
            plain()
            t1 = time.perf_counter()
            checked()
            t2 = time.perf_counter()
            gaps.append((t2 - t1) - (t1 - t0))
        return max(0.0, statistics.median(gaps))

    return {
        "card: every field's type checked": median_gap(
            lambda: ModelCard.from_json(text), lambda: ModelCard(**json.loads(text))
        ),
        "card: regular file, bounded read": median_gap(
            lambda: read_regular(card_path, max_bytes=1 << 20, what="card"), card_path.read_bytes
        ),
        "artefact: regular file, bounded read, size": median_gap(
            lambda: len(read_regular(artefact, max_bytes=card.artifact_bytes, what="artefact")) == card.artifact_bytes,
            artefact.read_bytes,
        ),
    }


if __name__ == "__main__":
    raise SystemExit(main())
