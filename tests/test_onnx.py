"""ONNX export: predictions agree with scikit-learn; bad inputs give clear errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import persistlib as pl
from persistlib import demos
from persistlib.errors import OnnxAgreementError, OnnxConversionError, OnnxError, OnnxInputError
from persistlib.onnx_export import check_agreement, load_onnx


@pytest.fixture(scope="module")
def lr_model(churn_split):
    X_train, _, y_train, _ = churn_split
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)


@pytest.mark.parametrize("name", ["lr_model", "small_model"])
def test_onnx_agrees_with_sklearn(name, request, churn_split, tmp_path):
    model = request.getfixturevalue(name)
    X_train, X_test, _, _ = churn_split
    onx = pl.export_onnx(model, X_train.head(), tmp_path / "m.onnx")
    assert onx.path.is_file() and onx.n_features == X_train.shape[1]
    agreement = check_agreement(model, onx, X_test)
    assert agreement.rate >= 0.99 and agreement.n_rows == len(X_test)
    np.testing.assert_allclose(onx.predict_proba(X_test), model.predict_proba(X_test), atol=1e-4)
    assert agreement.max_proba_diff is not None and agreement.max_proba_diff < 1e-4


def test_reload_from_file_and_no_temporary_files(small_model, churn_split, tmp_path):
    X_train, X_test, _, _ = churn_split
    onx = pl.export_onnx(small_model, X_train.head(), tmp_path / "sub" / "m.onnx")
    again = load_onnx(onx.path)
    assert again.feature_names == list(X_train.columns)
    assert (again.predict(X_test) == onx.predict(X_test)).all()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["m.onnx"]


def test_columns_are_put_in_export_order(small_model, churn_split, tmp_path):
    X_train, X_test, _, _ = churn_split
    onx = pl.export_onnx(small_model, X_train.head(), tmp_path / "m.onnx")
    shuffled = X_test[list(reversed(X_test.columns))]
    assert (onx.predict(shuffled) == small_model.predict(X_test)).all()


def test_numpy_input_and_regressor(churn_split, tmp_path):
    X_train, X_test, _, _ = churn_split
    target = X_train["monthly_charges"].to_numpy() * 2.0
    Xa = X_train.drop(columns="monthly_charges").to_numpy()
    reg = RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0).fit(Xa, target)
    onx = pl.export_onnx(reg, Xa[:5], tmp_path / "r.onnx")
    assert onx.feature_names is None and not onx.has_proba
    Xt = X_test.drop(columns="monthly_charges").to_numpy()
    np.testing.assert_allclose(onx.predict(Xt), reg.predict(Xt), rtol=1e-4)
    assert check_agreement(reg, onx, Xt).rate == 1.0
    with pytest.raises(pl.PersistError, match="no probability output"):
        onx.predict_proba(Xt)


@pytest.fixture(scope="module")
def onx(small_model, churn_split, tmp_path_factory):
    return pl.export_onnx(small_model, churn_split[0].head(), tmp_path_factory.mktemp("onnx") / "m.onnx")


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda X: X.iloc[0].to_numpy(), "1-D array"),
        (lambda X: X.to_numpy()[:3, :5], r"expects \(n_rows, 12\)"),
        (lambda X: X.iloc[:3].drop(columns="satisfaction"), r"lack column\(s\) \['satisfaction'\]"),
        (lambda X: X.iloc[:3].astype({"region": str}), r"not numeric"),
        (lambda X: [["abc"] * 12], "could not be converted"),
    ],
)
def test_bad_inputs_give_clear_errors(onx, churn_split, bad, message):
    with pytest.raises(OnnxInputError, match=message) as info:
        onx.predict(bad(churn_split[1]))
    assert isinstance(info.value, pl.PersistError)


def test_disagreement_is_refused(onx, small_model, churn_split):
    X_train, X_test, y_train, _ = churn_split
    flipped = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X_train, 1 - y_train)
    with pytest.raises(OnnxAgreementError, match="below the required"):
        check_agreement(flipped, onx, X_test)
    assert check_agreement(small_model, onx, X_test).rate >= 0.99  # the right model passes the same check


def test_check_agreement_arguments(onx, small_model, churn_split):
    with pytest.raises(ValueError, match="min_rate"):
        check_agreement(small_model, onx, churn_split[1], min_rate=1.5)
    with pytest.raises(ValueError, match="at least one"):
        check_agreement(small_model, onx, churn_split[1].iloc[:0])


def test_custom_function_cannot_be_exported(churn_split, tmp_path):
    X_train, _, y_train, _ = churn_split
    model = make_pipeline(FunctionTransformer(demos.log1p_charges), LogisticRegression(max_iter=500))
    model.fit(X_train, y_train)
    with pytest.raises(OnnxConversionError, match="could not convert"):
        pl.export_onnx(model, X_train.head(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_argument_errors(small_model, churn_split, tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        pl.export_onnx(small_model, churn_split[0].iloc[0].to_numpy(), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="fitted estimator"):
        pl.export_onnx(object(), churn_split[0].head(), tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        load_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(OnnxError, match="damaged"):
        load_onnx(tmp_path / "junk.onnx")


# --------------------------------------------------------------------------- format benchmark helpers


def test_compare_formats_side_by_side(small_model, churn_split, tmp_path):
    from persistlib.format_benchmark import Latency, compare_formats, plot_comparison

    X_test = churn_split[1]
    rows = compare_formats(
        small_model, X_test, tmp_path, formats=["pickle", "joblib-3", "onnx"], n_single=5, batch_rows=50, label="RF(10)"
    )
    assert [r["format"] for r in rows] == ["pickle", "joblib-3", "onnx"]
    sizes = {p.suffix: p.stat().st_size for p in tmp_path.iterdir()}
    assert rows[0]["bytes"] == sizes[".pkl"] and rows[2]["bytes"] == sizes[".onnx"]
    assert rows[1]["bytes"] < rows[0]["bytes"]  # compress=3 shrinks a forest
    for r in rows:
        assert r["model"] == "RF(10)" and r["batch_rows"] == 50
        assert set(r) == {"model", "format", "bytes", "save_s", "load_s", *Latency.__dataclass_fields__}
    fig = plot_comparison(rows)
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="at least one row"):
        plot_comparison([])


def test_predict_latency_counts_calls_and_checks_arguments(churn_split):
    from persistlib.format_benchmark import predict_latency

    X_test = churn_split[1]
    sizes = []
    lat = predict_latency(lambda rows: sizes.append(len(rows)), X_test, n_single=7, batch_rows=30, batch_repeat=2)
    assert sizes == [1] * 10 + [30, 30]  # 3 warm-up + 7 timed single rows, then 2 batches
    assert lat.batch_rows == 30
    with pytest.raises(ValueError, match="n_single must be an integer >= 1"):
        predict_latency(len, X_test, n_single=0)
    with pytest.raises(ValueError, match="at least one row"):
        predict_latency(len, X_test.iloc[:0])


def test_predict_latency_times_each_call_on_the_clock(churn_split, monkeypatch):
    """A fake clock that each call advances by a known duration: the figures are exact."""
    from persistlib import format_benchmark
    from persistlib.format_benchmark import predict_latency

    now = [0.0]
    # 3 slow warm-up calls (never timed), 7 single rows taking 1..7 ms (shuffled), 2 batches.
    durations = iter([9.0, 9.0, 9.0, 0.004, 0.001, 0.007, 0.002, 0.006, 0.003, 0.005, 0.050, 0.030])

    def predict(rows):
        now[0] += next(durations)

    monkeypatch.setattr(format_benchmark, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    lat = predict_latency(predict, churn_split[1], n_single=7, batch_rows=30, batch_repeat=2)
    assert lat.single_p50_s == pytest.approx(0.004)  # the median of 1..7 ms; the warm-ups are left out
    assert lat.single_p99_s == pytest.approx(0.00694)  # between the 6 ms and 7 ms calls, near the top
    assert lat.batch_s == pytest.approx(0.030)  # the best of the two batches
