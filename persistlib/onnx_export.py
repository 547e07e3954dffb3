"""Export a fitted scikit-learn model to ONNX, for prediction-only serving.

ONNX is a portable graph of maths operations. Loading it unpickles nothing, so
it runs no Python code from the file, and onnxruntime can serve it from C++,
Java, C# or JavaScript with no Python at all. What you lose: the Python object.
There is no ``fit``, no ``get_params``, no pipeline to inspect; only
predictions. And onnxruntime computes in float32, so probabilities can differ
from scikit-learn's in the last digits: compare labels, or probabilities with a
tolerance (:func:`check_agreement`).

Needs ``skl2onnx`` and ``onnxruntime`` (imported only in this module).

Examples
--------
>>> onx = export_onnx(model, X_train, "workspace/model.onnx")   # doctest: +SKIP
>>> onx.predict(X_test[:3])                                      # doctest: +SKIP
array([0, 1, 0])
>>> check_agreement(model, onx, X_test).rate                    # doctest: +SKIP
1.0
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import check_number
from ._files import atomic_write
from ._model_lock import one_model_call
from .errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    MissingFileError,
    OnnxAgreementError,
    OnnxConversionError,
    OnnxError,
    OnnxInputError,
)

__all__ = [
    "export_onnx",
    "load_onnx",
    "OnnxModel",
    "check_agreement",
    "Agreement",
    "OnnxError",
    "OnnxConversionError",
    "OnnxInputError",
    "OnnxAgreementError",
]

_INPUT = "X"


class OnnxModel:
    """A prediction-only model: an onnxruntime ``InferenceSession`` and what it expects.

    Build one with :func:`export_onnx` or :func:`load_onnx`.

    Attributes
    ----------
    path : pathlib.Path
        The ``.onnx`` file.
    session : onnxruntime.InferenceSession
    n_features : int
        Columns each row must have.
    feature_names : list of str or None
        Column names recorded at export (when ``X_sample`` was a DataFrame). A
        DataFrame given to :meth:`predict` must have these columns; they are
        put in this order.
    """

    def __init__(self, path: str | os.PathLike, session: Any, n_features: int, feature_names: list[str] | None = None):
        self.path = Path(path)
        self.session = session
        self.n_features = int(n_features)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self._outputs = [o.name for o in session.get_outputs()]

    def __repr__(self) -> str:
        return f"<OnnxModel {self.path.name}: {self.n_features} features, outputs {self._outputs}>"

    @property
    def has_proba(self) -> bool:
        """Whether the graph has a probability output (classifiers)."""
        return "probabilities" in self._outputs

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classifiers) or values (regressors), one per row of ``X``."""
        return np.asarray(self.session.run([self._outputs[0]], {_INPUT: self._to_float32(X)})[0]).ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_rows, n_classes)``, in float32."""
        if not self.has_proba:
            raise OnnxError(
                f"{self.path.name} has no probability output (outputs: {self._outputs}); "
                "it was exported from a regressor, or from a classifier without "
                "predict_proba. Use predict()."
            )
        return self.session.run(["probabilities"], {_INPUT: self._to_float32(X)})[0]

    def _to_float32(self, X: Any) -> np.ndarray:
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):  # a pandas DataFrame
            if self.feature_names is not None and list(X.columns) != self.feature_names:
                missing = [c for c in self.feature_names if c not in X.columns]
                if missing:
                    raise OnnxInputError(
                        f"the rows lack column(s) {missing} that {self.path.name} was "
                        f"exported with; pass a DataFrame with columns {self.feature_names}."
                    )
                X = X[self.feature_names]
            values = X.to_numpy()  # numeric columns only -> a numeric array; anything else -> object
            if values.dtype.kind not in "biuf":
                from pandas.api.types import is_bool_dtype, is_numeric_dtype

                bad = [c for c in X.columns if not (is_numeric_dtype(X[c].dtype) or is_bool_dtype(X[c].dtype))]
                raise OnnxInputError(
                    f"column(s) {bad} are not numeric; ONNX takes one float tensor. "
                    "Encode them as numbers first, as during training."
                )
            X = values.astype(np.float32, copy=False)
        else:
            try:
                X = np.asarray(X, dtype=np.float32)
            except (TypeError, ValueError):
                raise OnnxInputError(
                    "the rows could not be converted to float32 numbers; pass a numeric 2-D array or a DataFrame."
                ) from None
        if X.ndim == 1:
            raise OnnxInputError(
                f"got a 1-D array of {X.shape[0]} values; pass a 2-D array, e.g. X.reshape(1, -1) for one row."
            )
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise OnnxInputError(f"got rows of shape {X.shape}; {self.path.name} expects (n_rows, {self.n_features}).")
        return np.ascontiguousarray(X)


def export_onnx(model: Any, X_sample: Any, path: str | os.PathLike, *, target_opset: int | None = None) -> OnnxModel:
    """Convert a fitted model to ONNX, write it atomically, and open it with onnxruntime.

    Parameters
    ----------
    model : fitted scikit-learn estimator or pipeline
        Must be made of estimators skl2onnx knows (most built-in ones). Custom
        functions (``FunctionTransformer``) cannot be converted.
    X_sample : DataFrame or 2-D array
        A few rows of training data: they fix the number of features (and,
        for a DataFrame, the column names and order).
    path : str or os.PathLike
        Where to write the ``.onnx`` file. Written to a temporary name and
        renamed, so a crash never leaves half a file.
    target_opset : int, optional
        ONNX operator-set version; skl2onnx's default when omitted.

    Returns
    -------
    OnnxModel

    Raises
    ------
    OnnxConversionError
        If skl2onnx cannot convert the model.
    InvalidArgumentError
        If ``X_sample`` is not 2-D.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    names = [str(c) for c in X_sample.columns] if hasattr(X_sample, "columns") else None
    shape = getattr(X_sample, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] < 1:
        raise InvalidArgumentError(
            f"X_sample must be 2-D rows of training data (a DataFrame or array), got shape {shape}."
        )
    if not hasattr(model, "predict"):
        raise ArgumentTypeError(f"export_onnx needs a fitted estimator with predict(), got {type(model).__name__}.")
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        onx = convert_sklearn(
            model,
            initial_types=[(_INPUT, FloatTensorType([None, int(shape[1])]))],
            options=options,
            target_opset=target_opset,
        )
    except Exception as e:  # skl2onnx raises many kinds: RuntimeError, NotImplementedError, ...
        raise OnnxConversionError(
            f"skl2onnx could not convert {type(model).__name__}: {type(e).__name__}: {e}. ONNX supports "
            "built-in scikit-learn estimators; custom Python code cannot become ONNX. Keep a pickle-based "
            "format (joblib or skops) for this model."
        ) from e
    meta = onx.metadata_props.add()
    meta.key, meta.value = "persistlib_feature_names", json.dumps(names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, onx.SerializeToString())
    return load_onnx(path)


def load_onnx(path: str | os.PathLike) -> OnnxModel:
    """Open an ``.onnx`` file written by :func:`export_onnx`. Nothing is unpickled."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no ONNX file at {str(path)!r}; export one with export_onnx(model, X, path).")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise OnnxError(
            f"onnxruntime could not open {path.name}: {e}. The file is damaged or not an ONNX model; export it again."
        ) from None
    inp = session.get_inputs()[0]
    n_features = inp.shape[1] if len(inp.shape) == 2 and isinstance(inp.shape[1], int) else None
    if inp.name != _INPUT or n_features is None:
        raise OnnxError(
            f"{path.name} was not written by export_onnx (input {inp.name!r} of shape "
            f"{inp.shape}); export it with persistlib.export_onnx."
        )
    raw = session.get_modelmeta().custom_metadata_map.get("persistlib_feature_names")
    names = json.loads(raw) if raw else None
    return OnnxModel(path, session, n_features, names)


@dataclass(frozen=True)
class Agreement:
    """Result of :func:`check_agreement`."""

    rate: float  #: share of rows whose predictions agree
    n_rows: int
    n_disagree: int
    max_proba_diff: float | None  #: largest |p_onnx - p_sklearn| (classifiers), else None

    def __str__(self) -> str:
        extra = "" if self.max_proba_diff is None else f"; max probability difference {self.max_proba_diff:.1e}"
        return f"predictions agree on {self.rate:.1%} of {self.n_rows} rows ({self.n_disagree} differ){extra}"


def check_agreement(model: Any, onnx_model: OnnxModel, X: Any, *, min_rate: float = 0.99) -> Agreement:
    """Check that the ONNX model predicts the same labels as the original, on held-out rows.

    ONNX computes in float32, so a row sitting exactly on a decision boundary
    may flip; that is why this compares labels against a rate rather than
    demanding equality everywhere.

    Parameters
    ----------
    model : fitted estimator
        The original scikit-learn model.
    onnx_model : OnnxModel
    X : DataFrame or 2-D array
        Held-out rows (not the training data).
    min_rate : float, default=0.99
        Smallest acceptable share of agreeing labels, in ``[0, 1]``.

    Returns
    -------
    Agreement

    Raises
    ------
    OnnxAgreementError
        If fewer than ``min_rate`` of the labels agree.
    """
    check_number(min_rate, "min_rate", low=0, high=1)
    if len(X) == 0:
        raise InvalidArgumentError("check_agreement needs at least one held-out row.")
    with one_model_call():  # one model call at a time in the process (persistlib._model_lock says why)
        expected = np.asarray(model.predict(X)).ravel()
        has_both = onnx_model.has_proba and hasattr(model, "predict_proba")
        expected_proba = model.predict_proba(X) if has_both else None
    got = onnx_model.predict(X)
    from sklearn.base import is_regressor

    same = np.isclose(expected, got, rtol=1e-4, atol=1e-5) if is_regressor(model) else expected == got
    proba_diff = None
    if expected_proba is not None:
        proba_diff = float(np.max(np.abs(onnx_model.predict_proba(X) - expected_proba)))
    result = Agreement(float(np.mean(same)), int(len(same)), int(np.sum(~same)), proba_diff)
    if result.rate < min_rate:
        raise OnnxAgreementError(
            f"{onnx_model.path.name}: {result}, below the required {min_rate:.1%}. Do not serve it: check the "
            "converter options and that X has the training columns in the training order."
        )
    return result
