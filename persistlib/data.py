"""Data for the course: a synthetic churn data set, and data fingerprints.

Nothing here downloads anything: :func:`make_churn` generates the data from a
seed, so every notebook runs offline and gives the same numbers every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_number
from ._files import sha256_file
from .errors import ArgumentTypeError, MissingFileError

__all__ = ["make_churn", "fingerprint", "CHURN_FEATURES"]

#: The columns of :func:`make_churn`'s ``X``, in order.
CHURN_FEATURES: tuple[str, ...] = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",  # 0 = month-to-month, 1 = one year, 2 = two years
    "support_calls",
    "late_payments",
    "num_products",
    "satisfaction",  # survey score, 1 (bad) to 5 (good)
    "internet_fiber",  # 1 = fibre, 0 = DSL / none
    "paperless_billing",
    "senior",
    "region",  # 0 = north, 1 = south, 2 = east, 3 = west
)


def make_churn(
    n_samples: int = 5000, *, drift: float = 0.0, random_state: int | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Generate a synthetic customer-churn data set.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of customers (rows). Must be a positive integer.
    drift : float, default=0.0
        How far the world has moved since "today" (``0``). Larger values shift
        the feature distributions (shorter tenure, higher prices, more support
        calls) *and* change how churn depends on them (price matters more,
        satisfaction less). A model trained at ``drift=0`` loses accuracy on
        ``drift=1`` data.
    random_state : int or None, default=None
        Seed. The same seed (and arguments) always gives the same data.

    Returns
    -------
    X : pandas.DataFrame
        All-numeric features (categoricals are integer-encoded), columns
        :data:`CHURN_FEATURES`.
    y : pandas.Series
        ``churn``: 1 if the customer left, else 0. About a quarter churn.

    Examples
    --------
    >>> X, y = make_churn(1000, random_state=0)
    >>> X.shape
    (1000, 12)
    """
    n = check_number(
        n_samples, "n_samples", low=1, integer=True, what="a positive integer", hint="; try make_churn(5000)"
    )
    d = check_number(drift, "drift", low=0, what="a finite number >= 0 (0 = no drift, 1 = a lot)")
    rng = np.random.default_rng(random_state)

    contract = rng.choice(3, size=n, p=_normalise([0.5 + 0.15 * d, 0.28, 0.22 - 0.1 * min(d, 1.5)]))
    tenure = np.clip(rng.gamma(2.0, 14.0 * (1 + contract) / (1 + 0.5 * d), size=n), 0, 72).round()
    fiber = (rng.random(n) < 0.45 + 0.15 * min(d, 2)).astype(int)
    num_products = rng.integers(1, 6, size=n)
    monthly = np.clip(25 + 30 * fiber + 8 * num_products + 10 * d + rng.normal(0, 10, size=n), 18, 160).round(2)
    total = (monthly * tenure * rng.normal(1.0, 0.05, size=n)).clip(0).round(2)
    support = rng.poisson(1.2 + 0.8 * d + 0.6 * fiber, size=n)
    late = rng.poisson(0.4 + 0.3 * d, size=n)
    satisfaction = np.clip(np.round(4 - 0.45 * support + rng.normal(0, 0.7, size=n)), 1, 5)
    paperless = (rng.random(n) < 0.6).astype(int)
    senior = (rng.random(n) < 0.16).astype(int)
    region = rng.choice(4, size=n, p=[0.3, 0.25, 0.25, 0.2])

    # How churn depends on the features. Drift rewrites part of the rule:
    # price sensitivity grows, the survey score stops predicting churn.
    w_price = 0.045 + 0.05 * d
    w_sat = 1.1 - 1.6 * min(d, 1.5)
    logit = (
        1.5
        - 0.11 * tenure
        + w_price * (monthly - 70)
        - 1.6 * contract
        + 0.55 * support
        + 0.7 * late
        - w_sat * (satisfaction - 3)
        + 0.6 * fiber
        - 0.25 * (num_products - 3)
        + 0.3 * paperless
        + 0.4 * senior
        + 0.8 * d * (region == 1)
        - 1.2 * d
        + 0.05 * d * tenure * (contract > 0)
    )
    # A sharp rule plus some label noise: good models reach about 0.9 accuracy.
    churn = (1.65 * logit + rng.logistic(0, 1, size=n) > 0).astype(int)

    X = pd.DataFrame(
        {
            "tenure_months": tenure.astype(int),
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract.astype(int),
            "support_calls": support.astype(int),
            "late_payments": late.astype(int),
            "num_products": num_products.astype(int),
            "satisfaction": satisfaction.astype(int),
            "internet_fiber": fiber,
            "paperless_billing": paperless,
            "senior": senior,
            "region": region.astype(int),
        },
        columns=list(CHURN_FEATURES),
    )
    return X, pd.Series(churn, name="churn")


def _normalise(p: list[float]) -> np.ndarray:
    a = np.clip(np.asarray(p, dtype=float), 0.01, None)
    return a / a.sum()


# --------------------------------------------------------------------------- fingerprints


def fingerprint(data: Any) -> dict[str, Any]:
    """Identify a data set by content: the same data always gives the same hash.

    Parameters
    ----------
    data : pandas.DataFrame, pandas.Series, numpy.ndarray, str or os.PathLike
        In-memory data, or the path of a data file.

    Returns
    -------
    dict
        ``sha256`` of canonical bytes (column names, dtypes and values for a
        frame; dtype, shape and values for an array; the raw bytes for a file),
        ``rows`` (``None`` for a file whose rows persistlib cannot count),
        ``schema_sha256`` (column names and dtypes only, so a schema change is
        visible even when you cannot compare values) and ``kind``.
    """
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        schema = [[str(c), str(t)] for c, t in zip(data.columns, data.dtypes, strict=True)]
        h = hashlib.sha256(_canon(schema))
        for name in data.columns:
            h.update(_column_bytes(data[name]))
        return {
            "kind": "dataframe",
            "sha256": h.hexdigest(),
            "rows": int(len(data)),
            "schema_sha256": _sha(_canon(schema)),
        }
    if isinstance(data, np.ndarray):
        if data.dtype == object:
            raise ArgumentTypeError(
                "fingerprint cannot hash an object-dtype array; convert it to a "
                "numeric dtype or a pandas.DataFrame first."
            )
        schema = {"dtype": data.dtype.str, "shape": list(data.shape[1:])}
        h = hashlib.sha256(_canon(schema) + _canon(list(data.shape)))
        h.update(np.ascontiguousarray(data).tobytes())
        return {
            "kind": "ndarray",
            "sha256": h.hexdigest(),
            "rows": int(data.shape[0]) if data.ndim else 1,
            "schema_sha256": _sha(_canon(schema)),
        }
    if isinstance(data, (str, os.PathLike)):
        return _fingerprint_file(Path(data))
    raise ArgumentTypeError(
        f"fingerprint() takes a DataFrame, Series, ndarray or file path, not {type(data).__name__}."
    )


def _fingerprint_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingFileError(f"fingerprint(): no such file {str(path)!r}; check the path.")
    digest, _ = sha256_file(path)
    rows = schema = None
    if path.suffix.lower() == ".csv":
        header = pd.read_csv(path, nrows=0)
        schema = _sha(_canon([str(c) for c in header.columns]))
        with open(path, "rb") as f:
            rows = max(sum(1 for line in f if line.strip()) - 1, 0)
    elif path.suffix.lower() == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        rows = int(arr.shape[0]) if arr.ndim else 1
        schema = _sha(_canon({"dtype": arr.dtype.str, "shape": list(arr.shape[1:])}))
    return {"kind": "file", "sha256": digest, "rows": rows, "schema_sha256": schema}


def _column_bytes(col: pd.Series) -> bytes:
    values = col.to_numpy()
    if values.dtype == object or not isinstance(values, np.ndarray):
        return _canon([None if pd.isna(v) else str(v) for v in values])
    return np.ascontiguousarray(values).tobytes()


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()
