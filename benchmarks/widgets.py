"""How responsive are the widgets? Measured side by side in one run.

* CompressionExplorer: the first chart measures every method (real dumps and
  loads). Re-plotting never measures again: a new selection is only drawn
  (target: at least 3× faster than the first chart), and a selection shown
  before reuses its cached chart.
* GatePanel: one slider move (a Gate check and a redraw of the verdict).
* PipelineExplorer: each stage, run in order on the default model.

    python benchmarks/widgets.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import persistlib as pl
from persistlib.widgets.pipeline import STAGES


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    X, y = pl.make_churn(3000, random_state=42)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    model = RandomForestClassifier(100, max_depth=10, random_state=42).fit(X_train, y_train)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ex = pl.CompressionExplorer(model, tmp / "compression")
        first = time.perf_counter() - t0
        # A selection never shown: drawn from cached measurements (no dump or load).
        ex.show.value = tuple(ex.methods[:3])
        t0 = time.perf_counter()
        ex.show.value = tuple(ex.methods[:4])
        new_selection = time.perf_counter() - t0
        # Selections shown before: the chart itself is cached too.
        selections = [tuple(ex.methods[:3]), tuple(ex.methods)]
        plots_before = ex.plots
        revisit = median_time(
            lambda: setattr(ex.show, "value", selections[ex.show.value == selections[0]]), args.repeat
        )
        assert ex.plots == plots_before + args.repeat, "every selection change should re-plot"
        ratio = first / new_selection
        print(
            f"CompressionExplorer: first chart            {first * 1000:8.1f} ms ({len(ex.methods)} methods measured)"
        )
        print(
            f"                     new selection          {new_selection * 1000:8.1f} ms (draw only)"
            f"  → {ratio:.0f}× faster  [target ≥ 3×: {'✓' if ratio >= 3 else '✗'}]"
        )
        print(
            f"                     selection shown before {revisit * 1000:8.2f} ms (cached chart)"
            f"  → {first / revisit:,.0f}× faster"
        )

        panel = pl.GatePanel(model, X_test, y_test)
        slider, verdicts = panel.sliders["accuracy"], set()

        def move() -> None:
            slider.value = 0.95 if slider.value < 0.9 else 0.88
            verdicts.add(panel.report.verdict)

        seconds = median_time(move, args.repeat)
        assert verdicts == {"PASS", "FAIL"}, "the slider moves should flip the verdict"
        print(f"GatePanel:           slider move {seconds * 1000:8.2f} ms (verdict flips PASS ↔ FAIL)")

        explorer = pl.PipelineExplorer(tmp / "pipeline", random_state=42)
        for stage in STAGES:
            t0 = time.perf_counter()
            explorer.run(stage)
            print(f"PipelineExplorer:    {stage:<8}    {(time.perf_counter() - t0) * 1000:8.1f} ms")
    return 0 if ratio >= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
