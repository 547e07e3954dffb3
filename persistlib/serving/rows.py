"""Input validation for serving: the rows a request sends, and the true labels reported later.

* :func:`validate_rows` checks the rows of a prediction request against the
  model's feature names and turns them into a DataFrame with the model's
  columns, in order. A bad request gets an
  :class:`~persistlib.errors.InvalidInputError` naming the first problem, and
  the server keeps serving.
* :func:`as_labels` turns one true label, or a list, array or Series of them,
  into plain Python scalars, ready for JSON and for comparing with a
  prediction's labels.

Both are plain functions of their arguments: the server, the A/B router and
the audit log all use them, and none of them is needed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._display import clip, short
from ..errors import ArgumentTypeError, InvalidArgumentError, InvalidInputError

__all__ = ["validate_rows", "as_labels", "FLOAT32_MAX"]

#: The largest magnitude a float32 holds: scikit-learn's trees (and ONNX) compute in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- labels


def as_labels(y_true: Any) -> list:
    """Turn one label, or a list/tuple/ndarray/Series of labels, into a list of plain Python scalars.

    Parameters
    ----------
    y_true : label or sequence of labels
        A single label (``1``, ``np.int64(0)``, ``"yes"``), or a one-dimensional
        list, tuple, ``numpy.ndarray`` or ``pandas.Series`` of them.

    Returns
    -------
    list
        Plain ``int``/``float``/``str``/``bool`` values, one per label, ready for
        JSON and for ``==`` against a :class:`~persistlib.serving.Prediction`'s ``labels``.

    Raises
    ------
    ArgumentTypeError
        If ``y_true`` is ``None``, a mapping, a table (a DataFrame or a 2-D array)
        or holds something that is not a single label.
    InvalidArgumentError
        If it holds no label at all.
    """
    if y_true is None:
        raise ArgumentTypeError("y_true is None; pass the true label(s), e.g. 1 or y_test.iloc[:2].")
    if isinstance(y_true, (str, bytes, bool, int, float, np.generic)):
        values: list = [y_true]
    elif isinstance(y_true, (list, tuple)):
        values = list(y_true)
    elif hasattr(y_true, "to_numpy") or isinstance(y_true, np.ndarray):
        arr = np.asarray(y_true.to_numpy() if hasattr(y_true, "to_numpy") else y_true)
        if arr.ndim == 0:
            values = [arr.item()]
        elif arr.ndim == 1:
            values = list(arr)
        else:
            raise ArgumentTypeError(
                f"y_true must be one-dimensional (one label per row), got shape {arr.shape}; "
                "pass a column such as y_test.iloc[:2], not a table."
            )
    else:
        raise ArgumentTypeError(
            f"y_true must be a label or a list/tuple/ndarray/Series of labels, got {type(y_true).__name__}."
        )
    if not values:
        raise InvalidArgumentError("y_true holds no label; pass one true label per predicted row.")
    out = []
    for v in values:
        v = v.item() if isinstance(v, np.generic) else v
        if not isinstance(v, (str, bytes, bool, int, float)):
            raise ArgumentTypeError(f"each true label must be a single value like 0, 1 or 'yes', got {short(v)}.")
        out.append(v)
    return out


# --------------------------------------------------------------------------- request rows


def validate_rows(rows: Any, features: Sequence[str]) -> Any:
    """Check request rows and turn them into a DataFrame with the model's columns, in order.

    Parameters
    ----------
    rows : list of dict, dict or pandas.DataFrame
        Each row maps every feature name to a number. A single dict is one row.
    features : sequence of str
        The model's feature names (``model.feature_names_in_``).

    Returns
    -------
    pandas.DataFrame
        One row per input row, columns exactly ``features``, dtype float.

    Raises
    ------
    InvalidInputError
        With a message naming the first problem found: not a list, an empty
        list, a row that is not an object, missing or unknown features, or a
        value that is not a finite number.
    """
    import pandas as pd

    feats = list(features)
    if isinstance(rows, pd.DataFrame):
        _check_columns(list(map(str, rows.columns)), feats, "the DataFrame")
        if len(rows) == 0:
            raise InvalidInputError("the DataFrame has no rows; send at least one row.")
        frame = rows if list(rows.columns) == feats else rows[feats]
        try:
            values = frame.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InvalidInputError("the DataFrame holds non-numeric values; every feature must be a number.") from None
        if not np.isfinite(values).all():
            raise InvalidInputError("the DataFrame holds NaN or infinite values; send finite numbers.")
        if (np.abs(values) > FLOAT32_MAX).any():
            raise InvalidInputError(
                f"the DataFrame holds values beyond ±{FLOAT32_MAX:.3g}, which models compute in "
                "float32 cannot represent; send smaller numbers."
            )
        return frame
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, list):
        raise InvalidInputError(
            f"'rows' must be a list of objects like [{{{feats[0]!r}: ...}}], got {type(rows).__name__}."
        )
    if not rows:
        raise InvalidInputError("'rows' is empty; send at least one row.")
    data = np.empty((len(rows), len(feats)), dtype=float)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInputError(
                f"row {i} must be an object mapping feature names to numbers, got {type(row).__name__}."
            )
        if len(row) != len(feats) or any(f not in row for f in feats):
            _check_columns(list(map(str, row)), feats, f"row {i}")
        for j, f in enumerate(feats):
            v = row[f]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise InvalidInputError(
                    f"row {i}, feature {f!r}: {short(v)} is not a number; "
                    "send numbers only (categories are integer codes)."
                )
            try:
                data[i, j] = v
            except OverflowError:
                data[i, j] = math.inf
            if not math.isfinite(data[i, j]):
                raise InvalidInputError(f"row {i}, feature {f!r}: {short(v)} is not a finite number.")
            if abs(data[i, j]) > FLOAT32_MAX:
                raise InvalidInputError(
                    f"row {i}, feature {f!r}: {short(v)} is beyond ±{FLOAT32_MAX:.3g}, which models that compute in "
                    "float32 (such as scikit-learn's trees) cannot represent; send a smaller number."
                )
    return pd.DataFrame(data, columns=feats)


def _check_columns(got: list[str], want: list[str], where: str) -> None:
    missing = [f for f in want if f not in got]
    unknown = [f for f in got if f not in want]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing feature(s) {missing}")
        if unknown:
            parts.append(f"unknown feature(s) {unknown}")
        raise InvalidInputError(
            clip(f"{where} has {' and '.join(parts)}", 400) + f"; the model expects exactly {want}."
        )
