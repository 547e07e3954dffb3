"""The checkers of notebooks 06-10's exercises: formats, serving and the retrain loop.

They stay in the core: what a serving or monitoring exercise produces is checked
through what it leaves behind (an ONNX file, a registry folder, a decision log)
or by running the student's function against small stand-ins with the same
methods (``registry.load``, ``audit.summary``/``audit.compare``) and fresh
numbers. Same contract as :mod:`persistlib.exercise_checks`: ``(right, wrong, hint)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ._display import short
from ._files import json_lines, read_regular, sha256_file
from .errors import ExerciseError, PersistError, UntrustedTypeError
from .exercise_checks import Marks, call, need, need_keys

__all__ = ["check_06", "check_07", "check_08", "check_09", "check_10"]

# --------------------------------------------------------------------------- 06: re-export to ONNX


def check_06(answer: Any) -> tuple[list[str], list[str], str]:
    from .data import make_churn
    from .errors import OnnxError
    from .onnx_export import load_onnx

    shape = 'a dict {"onnx_file": path, "model": the pipeline, "custom_error": the error you caught}'
    m = Marks()
    missing = need_keys(answer, ("onnx_file", "model", "custom_error"), shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}")
    need(answer["onnx_file"], str | Path, "a file path for 'onnx_file'")
    model = answer["model"]
    if not hasattr(model, "predict"):
        raise ExerciseError(f"'model' must be the fitted pipeline you exported, got {type(model).__name__}.")
    path = Path(answer["onnx_file"])
    if not path.is_file():
        return m.fail(
            f"there is no file at {path.name!r}", "pl.export_onnx(model, X_train.head(), WS / 'old_model.onnx')"
        )
    try:
        onx = load_onnx(path)
    except PersistError as e:
        return m.fail(f"{path.name} does not open in onnxruntime: {short(str(e), 100)}", "export it again")
    m.ok(True, f"{path.name} opens in onnxruntime, no scikit-learn involved", "")
    X, _ = make_churn(400, random_state=2026)  # customers neither of you has seen
    ok, labels = call(onx.predict, X)
    if not ok:
        return m.fail(f"the ONNX file cannot predict fresh customers: {labels}", "export with X_train.head() as sample")
    ok, theirs = call(model.predict, X)
    if not ok:
        return m.fail(f"'model' cannot predict fresh customers: {theirs}", "give the pipeline you exported")
    agree = float((labels == theirs).mean())
    m.ok(
        agree >= 0.99,
        f"its labels agree with the pipeline's on {agree:.1%} of 400 fresh customers",
        f"its labels agree with the pipeline's on only {agree:.1%} of 400 fresh customers: another model's file?",
        "export `model` itself, then compare against the same `model`",
    )
    err = answer["custom_error"]
    m.ok(
        isinstance(err, OnnxError),
        f"exporting the custom pipeline fails with {type(err).__name__}: ONNX cannot hold a Python function",
        f"'custom_error' is {short(err)}, not the error export_onnx raised for `custom`",
        "try: pl.export_onnx(custom, ...) except pl.PersistError as e: custom_error = e",
    )
    return m.result()


# --------------------------------------------------------------------------- 07: a swapped skops file


def check_07(answer: Any) -> tuple[list[str], list[str], str]:
    import skops.io as sio

    from .registry import Registry

    shape = 'a dict {"registry": reg_sk.root, "version": the pipeline\'s version, "error": the error}'
    m = Marks()
    missing = need_keys(answer, ("registry", "version", "error"), shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}")
    need(answer["registry"], str | Path, "a folder for 'registry' (reg_sk.root)")
    need(answer["version"], str, "a version string for 'version', e.g. '1.1.0'")
    root = Path(answer["registry"])
    if not (root / "aliases.json").exists() and not list(root.glob("*_meta.json")):
        return m.fail(f"{root.name!r} is not a registry folder", "pass reg_sk.root")
    try:
        registry = Registry(root, format="skops")
        card = registry.card(answer["version"])
    except PersistError as e:
        return m.fail(short(str(e), 120), "pass the version that reg_sk.save(pipe, ...) returned")
    if not m.ok(card.format == "skops", "the version is a skops file", f"v{card.version} is {card.format}", "reg_sk"):
        return m.result()
    m.ok(
        card.trusted_types == [],
        "its card reviewed no type (trusted_types=[]), right for a pipeline",
        f"its card trusts {card.trusted_types}",
        "save the pipeline with trusted_types=[]",
    )
    artefact = root / card.artifact
    if not artefact.is_file():
        return m.fail(f"the artefact {card.artifact} is missing", "replace it, do not delete it")
    if not m.ok(
        sha256_file(artefact)[0] == card.artifact_sha256,
        "the card's sha256 matches the swapped bytes, as an attacker would make it",
        "the card's sha256 does not match the artefact: the integrity check stops it before skops even looks",
        "fix the hash like an attacker: demos.edit_card(reg_sk.root, version, match_artifact=True)",
    ):
        return m.result()
    ok, found = call(sio.get_untrusted_types, file=artefact)
    if not ok:
        return m.fail(f"the artefact is not a skops file: {found}", "use the forest's .skops file from reg_sk")
    m.ok(
        "sklearn.tree._tree.Tree" in found,
        "the artefact now holds the forest's trees (sklearn.tree._tree.Tree)",
        "the artefact holds no tree: it was not swapped for the forest's file",
        "demos.replace_artifact(reg_sk.root, version, reg_sk.root / card_sk.artifact)",
    )
    try:
        registry.load(card.version)
        refused = None
    except PersistError as e:
        refused = e
    m.ok(
        isinstance(refused, UntrustedTypeError),
        "loading it is refused with UntrustedTypeError: a type nobody reviewed for this version",
        f"loading it {'works' if refused is None else 'fails with ' + type(refused).__name__}",
        "swap the artefact and fix the hash, then reg_sk.load(version)",
    )
    m.ok(
        isinstance(answer["error"], UntrustedTypeError),
        "you caught the UntrustedTypeError",
        f"'error' is {short(answer['error'])}",
        "except pl.UntrustedTypeError as e: error = e",
    )
    return m.result()


# --------------------------------------------------------------------------- 08: the fair gate


class _RegistryStandIn:
    """A registry with one production model, in memory: what ``fair_gate`` may call on ``registry``."""

    def __init__(self, model: Any, card_metrics: dict[str, float]):
        self._model = model
        self._card = SimpleNamespace(version="2.0.0", metrics=card_metrics)

    def aliases(self) -> dict[str, str]:
        return {"production": "2.0.0"}

    def versions(self) -> list[str]:
        return ["2.0.0"]

    def card(self, ref: str = "production") -> Any:
        return self._card

    def load(self, ref: str = "production", **_: Any) -> tuple[Any, Any]:
        return self._model, self._card


@lru_cache(maxsize=1)
def _fair_gate_scenario() -> tuple[_RegistryStandIn, list[tuple[str, Any]], Any, Any]:
    """Production trained on last year's customers, its card scored on last year's; today's data has drifted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from .data import make_churn
    from .gate import evaluate

    X_old, y_old = make_churn(1600, random_state=81)
    X_new, y_new = make_churn(1600, drift=1.0, random_state=82)

    def lr() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    production = lr().fit(X_old[:1200], y_old[:1200])
    card_metrics = evaluate(production, X_old[1200:], y_old[1200:])
    candidates = [
        ("retrained on recent customers", lr().fit(X_new[:1200], y_new[:1200])),
        ("a one-split tree", DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_new[:1200], y_new[:1200])),
    ]
    return _RegistryStandIn(production, card_metrics), candidates, X_new[1200:], y_new[1200:]


def check_08(answer: Any) -> tuple[list[str], list[str], str]:
    from .gate import DEFAULT_THRESHOLDS, Gate, evaluate

    need(answer, Callable, "your function fair_gate(candidate, registry, X_test, y_test) itself")
    m = Marks()
    registry, candidates, X_test, y_test = _fair_gate_scenario()
    production, _ = registry.load("production")
    on_exam = evaluate(production, X_test, y_test)
    for label, candidate in candidates:
        ok, report = call(answer, candidate, registry, X_test, y_test)
        if not ok:
            return m.fail(f"fair_gate(<{label}>, ...) {report}", "use registry.load('production') and pl.evaluate")
        if not all(hasattr(report, a) for a in ("passed", "rows")):
            return m.fail(
                f"fair_gate returned {short(report)}, not a GateReport", "return gate.check(candidate_metrics)"
            )
        rows = {r.metric: r for r in report.rows}
        base = {k: rows[k].baseline for k in DEFAULT_THRESHOLDS if k in rows}
        fair = all(base.get(k) is not None and abs(base[k] - on_exam[k]) < 1e-9 for k in DEFAULT_THRESHOLDS)
        stale = all(abs((base.get(k) or 0) - registry.card().metrics[k]) < 1e-9 for k in DEFAULT_THRESHOLDS)
        m.ok(
            fair,
            f"{label}: the baseline is production scored on the same test set",
            f"{label}: the baseline is "
            + ("production's card, scored on other customers" if stale else f"{short(base, 80)}")
            + f", not production on this test set ({on_exam['accuracy']:.3f} accuracy)",
            "baseline = pl.evaluate(production, X_test, y_test), production from registry.load('production')",
        )
        thresholds = {k: rows[k].threshold for k in rows}
        m.ok(
            all(thresholds.get(k) == v for k, v in DEFAULT_THRESHOLDS.items()),
            f"{label}: the thresholds are pl.DEFAULT_THRESHOLDS",
            f"{label}: the thresholds are {short(thresholds, 80)}",
            "pl.Gate(pl.DEFAULT_THRESHOLDS, baseline=...)",
        )
        expected = Gate(DEFAULT_THRESHOLDS, baseline={k: on_exam[k] for k in DEFAULT_THRESHOLDS}).check(
            evaluate(candidate, X_test, y_test)
        )
        m.ok(
            bool(report.passed) == expected.passed,
            f"{label}: {expected.verdict}, as it should",
            f"{label}: {'PASS' if report.passed else 'FAIL'}, a fair gate says {expected.verdict}",
            "score the candidate on the same X_test, y_test",
        )
    return m.result()


# --------------------------------------------------------------------------- 09: a latency alarm


class _AuditStandIn:
    """An audit trail with two versions: ``summary()`` and ``compare()`` as AuditLog's, with chosen numbers."""

    def __init__(self, p99: dict[str, float], reasons: tuple[str, ...]):
        self._summary = {
            v: {"requests": 150, "p50_ms": p / 3, "p99_ms": p, "positive_rate": 0.3, "accuracy": 0.9}
            for v, p in p99.items()
        }
        self._reasons = reasons

    def summary(self, **_: Any) -> dict[str, dict[str, Any]]:
        return {v: dict(s) for v, s in self._summary.items()}

    def compare(self, version: str, baseline_version: str, **_: Any) -> Any:
        return SimpleNamespace(
            version=version, baseline_version=baseline_version, reasons=self._reasons, fired=bool(self._reasons)
        )


def check_09(answer: Any) -> tuple[list[str], list[str], str]:
    need(answer, Callable, "your function alarm_with_latency(audit, live, baseline, *, max_p99_ratio=3.0) itself")
    m = Marks()
    drop = ("accuracy 0.412 vs 0.903 (dropped 0.491, more than 0.05)",)
    cases = [  # (live p99, baseline p99, compare's reasons, ratio, how many reasons are right, what it shows)
        (40.0, 10.0, (), 3.0, 1, "4× slower fires"),
        (20.0, 10.0, (), 3.0, 0, "2× slower stays quiet"),
        (10.0, 10.0, drop, 3.0, 1, "compare()'s own reasons are kept"),
        (50.0, 10.0, drop, 3.0, 2, "a slow and wrong version gets both reasons"),
        (20.0, 10.0, (), 1.5, 1, "max_p99_ratio=1.5 makes 2× fire"),
    ]
    for live_p99, base_p99, reasons, ratio, n, shows in cases:
        audit = _AuditStandIn({"2.0.0": live_p99, "1.9.0": base_p99}, reasons)
        ok, got = call(answer, audit, live="2.0.0", baseline="1.9.0", max_p99_ratio=ratio)
        if not ok:
            return m.fail(
                f"alarm_with_latency(audit, live='2.0.0', baseline='1.9.0', max_p99_ratio={ratio}) {got}",
                "start from list(audit.compare(live, baseline).reasons) and audit.summary()[live]['p99_ms']",
            )
        if isinstance(got, str) or not isinstance(got, list | tuple):
            return m.fail(f"it returned {short(got)}, not a list of reasons", "return the list of reason strings")
        right_count = len(got) == n and all(isinstance(r, str) for r in got)
        kept = all(r in got for r in reasons)
        latency = [r for r in got if r not in reasons]
        names_it = all("p99" in r.lower() or "latenc" in r.lower() or "slow" in r.lower() for r in latency)
        m.ok(
            right_count and kept and names_it,
            f"p99 {live_p99:g} ms vs {base_p99:g} ms: {shows}",
            f"p99 {live_p99:g} ms vs {base_p99:g} ms (ratio limit {ratio:g}): you return {short(list(got), 90)}; "
            f"expected {n} reason(s) ({shows})",
            "add one reason naming p99 only when live p99 > max_p99_ratio × baseline p99; keep compare()'s reasons",
        )
    return m.result()


# --------------------------------------------------------------------------- 10: cooldown=0


def _decision_log(folder: Path) -> list[dict[str, Any]] | None:
    path = folder / "retrain_log.jsonl"
    if not path.is_file():
        return None
    entries, _ = json_lines(read_regular(path, max_bytes=16 * 2**20, what=path.name))
    return entries


def check_10(answer: Any) -> tuple[list[str], list[str], str]:
    shape = '{"prediction": "fewer"/"same"/"more", "cooldown_0": shelf.root, "cooldown_1": registry.root}'
    m = Marks()
    missing = need_keys(answer, ("prediction", "cooldown_0", "cooldown_1"), "a dict " + shape)
    if missing:
        return m.fail(f"the answer lacks {missing}", f"give {shape}")
    need(answer["prediction"], str, "'fewer', 'same' or 'more' for 'prediction'")
    logs = {}
    for key in ("cooldown_0", "cooldown_1"):
        need(answer[key], str | Path, f"a registry folder for {key!r}")
        logs[key] = _decision_log(Path(answer[key]))
        if logs[key] is None:
            return m.fail(
                f"{key}: {Path(answer[key]).name!r} holds no retrain_log.jsonl", "pass a RetrainLoop's registry"
            )
    eager, patient = logs["cooldown_0"], logs["cooldown_1"]
    m.ok(
        any(e.get("decision") == "cooldown" for e in patient),
        "cooldown_1's loop held back at least once (a 'cooldown' decision)",
        "cooldown_1's log has no 'cooldown' decision: is it the notebook's registry?",
        "cooldown_1 is registry.root, the notebook's own loop",
    )
    m.ok(
        not any(e.get("decision") == "cooldown" for e in eager),
        "cooldown_0's loop never held back",
        "cooldown_0's log has 'cooldown' decisions: the loop ran with a cooldown",
        "RetrainLoop(..., cooldown=0)",
    )
    windows = [e.get("window") for e in eager]
    common = [w for w in windows if w in {e.get("window") for e in patient}]
    if not m.ok(
        len(common) == len(windows) >= 3,
        f"both loops ran the same {len(windows)} months",
        f"of cooldown_0's {len(windows)} months, {len(common)} are in cooldown_1's log: run the same months",
        "run all twelve `months` through the new loop, once, in a fresh registry",
    ):
        return m.result()
    promoted = [e["candidate_version"] for e in eager if e.get("decision") == "promoted"]
    folder = Path(answer["cooldown_0"])
    on_disk = all((folder / f"model_v{v}_meta.json").is_file() for v in promoted)
    m.ok(
        bool(promoted) and on_disk,
        f"cooldown=0 saved {len(promoted)} new versions, each with its card in the folder",
        "the new versions in cooldown_0's log are not all in its folder" if promoted else "cooldown=0 promoted nothing",
        "save and promote v1.0.0 first, then run the loop on that registry",
    )
    before = sum(1 for e in patient if e.get("decision") == "promoted" and e.get("window") in common)
    truth = "more" if len(promoted) > before else "fewer" if len(promoted) < before else "same"
    said = answer["prediction"].strip().lower()
    m.ok(
        said == truth,
        f"you predicted {truth}: {len(promoted)} new versions with cooldown=0, {before} with cooldown=1",
        f"you predicted {said!r}, the folders say {truth} ({len(promoted)} with cooldown=0, {before} with cooldown=1)",
        "the month the cooldown held back now retrains, and its candidate can pass the gate",
    )
    return m.result()
