"""Exercises that answer back: every official solution passes its checker, and wrong answers do not.

Each solution is executed for real, in a namespace built like its notebook's but with
small data, in a temporary folder. Then at least two wrong answers per exercise,
including the trivial ones (``True``, ``0``, ``{}``, a function that returns a
constant), must fail with feedback that names the problem.
"""

from __future__ import annotations

import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import persistlib as pl
from persistlib import demos
from persistlib.errors import ExerciseError

ROOT = Path(__file__).resolve().parents[1]


def lr():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def run_solution(exercise_id: str, namespace: dict) -> dict:
    code = pl.exercises.solution(exercise_id)
    exec(compile(code, f"<solution {exercise_id}>", "exec"), namespace)
    return namespace


def assert_fails(exercise_id: str, answer, *words: str) -> None:
    feedback = pl.exercises.check(exercise_id, answer)
    text = str(feedback).lower()
    assert not feedback.passed, f"{exercise_id} accepted a wrong answer: {answer!r}\n{feedback}"
    assert feedback.wrong and "not yet" in text
    for word in words:
        assert word.lower() in text, f"{exercise_id}: the feedback does not mention {word!r}:\n{feedback}"


# --------------------------------------------------------------------------- namespaces like the notebooks'


def ns_01(ws):
    X, y = pl.make_churn(800, random_state=42)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    return dict(pl=pl, time=time, joblib=joblib, RandomForestClassifier=RandomForestClassifier, WS=ws, N=200,
                X_train=X_train, y_train=y_train)  # fmt: skip


def ns_02(ws):
    explorer = pl.PipelineExplorer(ws / "forest", model=RandomForestClassifier(30, max_depth=8, random_state=0))
    for stage in ("Train", "Evaluate", "Load"):
        explorer.run(stage)
    return dict(pl=pl, WS=ws, explorer=explorer)


def ns_03(ws):
    return dict(pl=pl, thresholds=dict(pl.DEFAULT_THRESHOLDS), baseline=dict(pl.DEFAULT_BASELINE),
                metrics={"accuracy": 0.93, "precision": 0.85, "recall": 0.8})  # fmt: skip


def ns_04(ws):
    X, y = pl.make_churn(600, random_state=4)
    return dict(pl=pl, WS=ws, model=RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y))


def ns_05(ws):
    X, y = pl.make_churn(300, random_state=5)
    registry = pl.Registry(ws / "registry")
    for depth in (2, 3, 4):
        registry.promote(registry.save(DecisionTreeClassifier(max_depth=depth).fit(X, y)).version)
    registry.promote("1.1.0", alias="staging")
    registry.rollback()
    return dict(pl=pl, registry=registry)


def ns_06(ws):
    X, y = pl.make_churn(800, random_state=6)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=6, stratify=y)
    pipe = lr().fit(X_train, y_train)
    joblib.dump(pipe, ws / "old.pkl")
    custom = make_pipeline(FunctionTransformer(demos.log1p_charges), lr()).fit(X_train, y_train)
    return dict(pl=pl, WS=ws, pipe=pipe, model=joblib.load(ws / "old.pkl"), custom=custom, X_train=X_train,
                X_test=X_test, three=X_test.head(3))  # fmt: skip


def ns_07(ws):
    X, y = pl.make_churn(600, random_state=7)
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    reg_sk = pl.Registry(ws / "registry_skops", format="skops")
    card_sk = reg_sk.save(forest, trusted_types=["sklearn.tree._tree.Tree"])
    return dict(pl=pl, demos=demos, pipe=lr().fit(X, y), reg_sk=reg_sk, card_sk=card_sk)


def ns_08(ws):
    X_new, y_new = pl.make_churn(600, drift=1.0, random_state=2)
    Xn_train, Xn_test, yn_train, yn_test = train_test_split(X_new, y_new, test_size=0.25, random_state=0)
    registry = pl.Registry(ws / "registry")
    registry.promote(registry.save(lr().fit(Xn_train, yn_train), version="2.0.0").version)
    return dict(pl=pl, registry=registry, Xn_train=Xn_train, Xn_test=Xn_test, yn_train=yn_train, yn_test=yn_test)


def ns_09(ws):
    X, y = pl.make_churn(400, random_state=9)
    registry = pl.Registry(ws / "registry")
    registry.save(lr().fit(X, y), version="1.9.0")
    registry.save(lr().fit(X, 1 - y), version="2.0.0")  # the swapped-labels bug
    audit = pl.AuditLog(ws / "audit.sqlite")
    server = pl.ModelServer(registry, "1.9.0", audit=audit)
    for i in range(60):
        if i == 30:
            server.swap("2.0.0")
        p = server.predict(X.iloc[[i]])
        server.record_outcome(p.request_id, int(y.iloc[i]))
    audit.close()
    return dict(pl=pl, WS=ws)


DRIFT_10 = [0.0, 0.6, 1.2, 1.8]


def ns_10(ws):
    def train(X, y):
        return lr().fit(X, y)

    X, y = pl.make_churn(800, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    v1 = train(X_train, y_train)
    metrics_v1 = pl.evaluate(v1, X_test, y_test)
    report_v1 = pl.Gate(pl.DEFAULT_THRESHOLDS).check(metrics_v1)
    registry = pl.Registry(ws / "registry")
    registry.promote(registry.save(v1, metrics=metrics_v1, gate_report=report_v1, dataset=X_train).version)
    months = []
    for month, drift in enumerate(DRIFT_10, start=1):
        Xm, ym = pl.make_churn(500, drift=drift, random_state=40 + month)
        Xh, yh = pl.make_churn(300, drift=drift, random_state=140 + month)
        months.append((f"2025-{month:02d}", Xm, ym, Xh, yh))
    thresholds, tolerance = {"accuracy": 0.80, "precision": 0.70, "recall": 0.65}, 0.02
    loop = pl.RetrainLoop(registry, pl.ModelServer(registry), train, monitor=pl.DriftMonitor(X_train),
                          thresholds=thresholds, tolerance=tolerance, cooldown=1)  # fmt: skip
    made = [r.candidate_version for r in (loop.run_cycle(*m[1:], label=m[0]) for m in months) if r.candidate_version]
    return dict(pl=pl, WS=ws, registry=registry, v1=v1, metrics_v1=metrics_v1, report_v1=report_v1, X_train=X_train,
                train=train, months=months, THRESHOLDS=thresholds, TOLERANCE=tolerance, made=made)  # fmt: skip


NAMESPACES = {f"{f.__name__[3:]}": f for f in (ns_01, ns_02, ns_03, ns_04, ns_05, ns_06, ns_07, ns_08, ns_09, ns_10)}


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """Each exercise's namespace after its official solution ran (built once per module)."""
    cache = {}

    def get(exercise_id):
        if exercise_id not in cache:
            ws = tmp_path_factory.mktemp(exercise_id)
            cache[exercise_id] = run_solution(exercise_id, NAMESPACES[exercise_id[:2]](ws))
        return cache[exercise_id]

    return get


# --------------------------------------------------------------------------- the contract


def test_one_exercise_per_notebook_01_to_10_and_a_solution_file_each():
    ids = pl.exercises.ids()
    assert [i[:2] for i in ids] == [f"{n:02d}" for n in range(1, 11)]
    for i in ids:
        ex = pl.exercises.EXERCISES[i]
        assert (ROOT / "notebooks" / f"{ex.notebook}.ipynb").exists(), ex.notebook
        code = pl.exercises.solution(i)
        assert "answer = " in code and f'pl.exercises.check("{i}", answer)' in code
        compile(code, i, "exec")  # valid Python
    assert '"exercise_solutions/*.txt"' in (ROOT / "pyproject.toml").read_text()  # shipped in the wheel


@pytest.mark.parametrize("exercise_id", [f"{n:02d}" for n in range(1, 11)])
def test_the_official_solution_passes(exercise_id, solved):
    full = next(i for i in pl.exercises.ids() if i.startswith(exercise_id))
    namespace = solved(full)
    feedback = pl.exercises.check(full, namespace["answer"])
    assert feedback.passed, str(feedback)
    assert not feedback.wrong and len(feedback.right) >= 2
    assert "solved" in str(feedback) and "why it matters" in str(feedback)
    assert 'class="pl-exercise-feedback pl-exercise-passed"' in feedback._repr_html_()


@pytest.mark.parametrize("exercise_id", pl.exercises.ids())
def test_the_placeholder_says_not_yet_and_what_to_give(exercise_id):
    for placeholder in (..., None):
        feedback = pl.exercises.check(exercise_id, placeholder)
        assert not feedback.passed
        assert "not yet" in str(feedback) and pl.exercises.EXERCISES[exercise_id].expects in str(feedback)
        assert "pl-exercise-not-yet" in feedback._repr_html_()


@pytest.mark.parametrize("exercise_id", pl.exercises.ids())
@pytest.mark.parametrize("answer", [True, 0, "done", 3.5], ids=["True", "0", "str", "float"])
def test_a_trivial_answer_of_the_wrong_type_is_a_clear_error(exercise_id, answer):
    with pytest.raises(ExerciseError, match="expected"):
        pl.exercises.check(exercise_id, answer)


def test_an_unknown_exercise_is_a_clear_error():
    with pytest.raises(ExerciseError, match="04-compression"):
        pl.exercises.check("04-compresion", 1)
    with pytest.raises(ExerciseError, match="the exercises are"):
        pl.exercises.solution(4)


def test_an_empty_dict_names_the_missing_keys():
    for i in ("01-why-persist", "04-compression", "06-onnx-export", "07-skops-swap", "10-cooldown"):
        feedback = pl.exercises.check(i, {})
        assert not feedback.passed and "lacks" in str(feedback), i


def test_feedback_needs_a_right_finding_to_pass():
    assert not pl.exercises.Feedback("x").passed
    assert pl.exercises.Feedback("x", right=("a",)).passed
    assert not pl.exercises.Feedback("x", right=("a",), wrong=("b",)).passed


# --------------------------------------------------------------------------- wrong answers, per exercise


def test_01_wrong_answers(solved):
    ns = solved("01-why-persist")
    good = ns["answer"]
    big = RandomForestClassifier(n_estimators=30, random_state=0).fit(ns["X_train"], ns["y_train"])
    joblib.dump(big, ns["WS"] / "big.pkl")
    assert_fails("01-why-persist", {**good, "file": ns["WS"] / "big.pkl"}, "30 trees")
    assert_fails("01-why-persist", {**good, "train_s": good["train_s"] * 1000}, "milliseconds")
    assert_fails("01-why-persist", {**good, "train_s": good["load_s"], "load_s": good["train_s"]}, "swapped")
    assert_fails("01-why-persist", {**good, "file": ns["WS"] / "missing.pkl"}, "no file")
    assert_fails("01-why-persist", {**good, "train_s": 0}, "0 or less")


def test_02_wrong_answers(solved):
    ns = solved("02-pipeline-tour")
    assert_fails(
        "02-pipeline-tour", {"explorer": ns["explorer"], "ship": "logistic regression"}, "RandomForestClassifier"
    )
    assert_fails("02-pipeline-tour", {**ns["answer"], "ship": "forest"}, "you would ship")
    fresh = pl.PipelineExplorer(ns["WS"] / "fresh", model=lr(), n_samples=400)
    assert_fails("02-pipeline-tour", {"explorer": fresh, "ship": "logistic regression"}, "Load stage")
    with pytest.raises(ExerciseError, match="PipelineExplorer"):
        pl.exercises.check("02-pipeline-tour", {"explorer": "lr", "ship": "forest"})


def test_03_wrong_answers():
    def gate(tolerance, threshold=0.88, baseline=0.91):
        return pl.Gate({"accuracy": threshold}, baseline={"accuracy": baseline}, tolerance=tolerance)

    assert_fails("03-evaluation-gate", gate(0.0), "0.89 fails")
    assert_fails("03-evaluation-gate", gate(0.05), "0.885 passes", "not the smallest")
    assert_fails("03-evaluation-gate", gate(1.0, threshold=0.0), "threshold is 0.0")
    assert_fails("03-evaluation-gate", gate(0.02, baseline=0.89), "baseline is 0.89")
    wide = pl.Gate({"accuracy": 0.88, "recall": 0.6}, baseline={"accuracy": 0.91}, tolerance=0.02)
    assert_fails("03-evaluation-gate", wide, "missingmetricerror")


def test_04_wrong_answers(solved):
    good = solved("04-compression")["answer"]
    assert_fails("04-compression", {**good, "joblib-3": good["joblib-3"] / 2**20}, "give bytes")
    assert_fails("04-compression", {**good, "joblib-0": good["joblib-3"], "joblib-3": good["joblib-0"]}, "joblib-3")
    assert_fails("04-compression", {**good, "pickle": 0, "joblib-0": 0, "joblib-3": 0}, "pickle")
    with pytest.raises(ExerciseError, match="fitted model"):
        pl.exercises.check("04-compression", {**good, "model": "model"})


def test_05_wrong_answers(solved):
    solved("05-production-history")

    def last_move(history, n):
        return history[n - 1]["to"] if n else None  # forgets that staging moves too

    def off_by_one(history, n):
        moves = [e["to"] for e in history[: n + 1] if e["alias"] == "production"]
        return moves[-1] if moves else None

    assert_fails("05-production-history", last_move, "fresh cases wrong")
    assert_fails("05-production-history", off_by_one, "fresh cases wrong")
    assert_fails("05-production-history", lambda history, n: "1.0.0", "fresh cases wrong")
    assert_fails("05-production-history", lambda history: None, "typeerror")


def test_06_wrong_answers(solved):
    ns = solved("06-onnx-export")
    good = ns["answer"]
    other = lr().fit(ns["X_train"], 1 - np.asarray(ns["pipe"].predict(ns["X_train"])))  # the opposite answers
    assert_fails("06-onnx-export", {**good, "model": other}, "agree")
    assert_fails("06-onnx-export", {**good, "custom_error": None}, "custom")
    assert_fails("06-onnx-export", {**good, "onnx_file": ns["WS"] / "none.onnx"}, "no file")
    (ns["WS"] / "junk.onnx").write_bytes(b"not onnx")
    assert_fails("06-onnx-export", {**good, "onnx_file": ns["WS"] / "junk.onnx"}, "does not open")


def test_07_wrong_answers(solved, tmp_path):
    ns = solved("07-skops-swap")
    good = ns["answer"]
    reg_sk = ns["reg_sk"]
    untouched = reg_sk.save(ns["pipe"], trusted_types=[]).version
    assert_fails("07-skops-swap", {**good, "version": untouched}, "no tree", "works")
    unfixed = reg_sk.save(ns["pipe"], trusted_types=[]).version
    demos.replace_artifact(reg_sk.root, unfixed, reg_sk.root / ns["card_sk"].artifact)
    assert_fails("07-skops-swap", {**good, "version": unfixed}, "sha256 does not match")
    assert_fails("07-skops-swap", {**good, "version": ns["card_sk"].version}, "trusts")
    assert_fails("07-skops-swap", {**good, "error": None}, "'error' is none")
    assert_fails("07-skops-swap", {**good, "registry": tmp_path}, "not a registry")


def test_08_wrong_answers(solved):
    solved("08-fair-gate")

    def card_baseline(candidate, registry, X_test, y_test):
        return pl.Gate(pl.DEFAULT_THRESHOLDS, baseline=pl.baseline_from(registry)).check(
            pl.evaluate(candidate, X_test, y_test)
        )

    def default_baseline(candidate, registry, X_test, y_test):
        return pl.Gate(pl.DEFAULT_THRESHOLDS, baseline=pl.DEFAULT_BASELINE).check(
            pl.evaluate(candidate, X_test, y_test)
        )

    def metrics_only(candidate, registry, X_test, y_test):
        return pl.evaluate(candidate, X_test, y_test)

    assert_fails("08-fair-gate", card_baseline, "production's card")
    assert_fails("08-fair-gate", default_baseline, "not production on this test set")
    assert_fails("08-fair-gate", metrics_only, "not a gatereport")
    assert_fails("08-fair-gate", lambda *a: True, "not a gatereport")


def test_09_wrong_answers(solved):
    solved("09-latency-alarm")

    def always(audit, live, baseline, *, max_p99_ratio=3.0):
        return [*audit.compare(live, baseline).reasons, "p99 is slow"]

    def forgets_compare(audit, live, baseline, *, max_p99_ratio=3.0):
        s = audit.summary()
        return ["p99 slow"] if s[live]["p99_ms"] > max_p99_ratio * s[baseline]["p99_ms"] else []

    def fixed_ratio(audit, live, baseline, *, max_p99_ratio=3.0):
        s, reasons = audit.summary(), list(audit.compare(live, baseline).reasons)
        return reasons + (["p99 slow"] if s[live]["p99_ms"] > 3 * s[baseline]["p99_ms"] else [])

    assert_fails("09-latency-alarm", always, "2× slower stays quiet")
    assert_fails("09-latency-alarm", forgets_compare, "kept")
    assert_fails("09-latency-alarm", fixed_ratio, "max_p99_ratio=1.5")
    assert_fails("09-latency-alarm", lambda audit, live, baseline, **kw: [], "4× slower fires")
    assert_fails("09-latency-alarm", lambda audit, live, baseline, **kw: False, "not a list")


def test_10_wrong_answers(solved, tmp_path):
    ns = solved("10-cooldown")
    good = ns["answer"]
    assert_fails("10-cooldown", {**good, "prediction": "fewer"}, "you predicted 'fewer'")
    assert_fails("10-cooldown", {**good, "cooldown_0": good["cooldown_1"]}, "ran with a cooldown")
    assert_fails("10-cooldown", {**good, "cooldown_1": good["cooldown_0"]}, "no 'cooldown' decision")
    assert_fails("10-cooldown", {**good, "cooldown_0": tmp_path}, "no retrain_log")
