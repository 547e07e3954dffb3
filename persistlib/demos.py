"""Teaching demonstrations for notebooks 06 and 07: real failures, made on purpose, harmlessly.

Each function here breaks something the way it breaks in real life, so the
notebook (and the tests) can show the genuine error rather than describe it:

* :func:`make_version_mismatch_pickle` -- a model file that claims another
  scikit-learn version, so loading it raises scikit-learn's own
  ``InconsistentVersionWarning``.
* :func:`make_malicious_pickle` -- a pickle that runs code when loaded. The
  code only writes a note file where you ask; a real attacker's would not be
  so polite.
* :func:`replace_artifact` and :func:`edit_card` -- what an attacker (or an
  accident) does to a registry folder.
* :func:`log1p_charges`, :func:`save_with_main_function` and
  :func:`load_in_fresh_python` -- why custom code must live in an importable
  module.

Never use these on files you care about.
"""

from __future__ import annotations

import json
import operator
import os
import pickle
import pickletools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._display import mark
from ._files import sha256_file
from .card import card_file_name
from .errors import DemoError, InvalidArgumentError, MissingFileError

__all__ = [
    "make_version_mismatch_pickle",
    "make_malicious_pickle",
    "replace_artifact",
    "edit_card",
    "log1p_charges",
    "save_with_main_function",
    "load_in_fresh_python",
    "FreshLoad",
    "skops_untrusted_types",
    "pickle_imports",
    "recommend_format",
]


# --------------------------------------------------------------------------- versions


class _FakeVersionPickler(pickle.Pickler):
    """Pickles scikit-learn estimators as if another scikit-learn version had saved them."""

    def __init__(self, file: Any, fake_version: str):
        super().__init__(file, protocol=5)
        self.fake_version = fake_version

    def reducer_override(self, obj: Any) -> Any:
        from sklearn.base import BaseEstimator

        if not isinstance(obj, BaseEstimator) or isinstance(obj, type):
            return NotImplemented
        rv = obj.__reduce_ex__(5)
        state = rv[2] if len(rv) > 2 else None
        if not isinstance(state, dict) or "_sklearn_version" not in state:
            return NotImplemented
        return (rv[0], rv[1], {**state, "_sklearn_version": self.fake_version}, *rv[3:])


def make_version_mismatch_pickle(model: Any, path: str | os.PathLike, fake_version: str = "1.0.2") -> Path:
    """Pickle ``model`` so that every estimator in it records ``fake_version``.

    scikit-learn stores its version in each estimator's pickled state
    (``_sklearn_version``, added by ``BaseEstimator.__getstate__``). This writes
    that state with ``fake_version`` instead, exactly as an old scikit-learn
    would have, so ``joblib.load(path)`` or ``pickle.load`` genuinely warns with
    ``sklearn.exceptions.InconsistentVersionWarning``. The model itself is
    unchanged and still works here (which is the danger: it *might* not).

    Returns the path written.
    """
    import sklearn

    if not isinstance(fake_version, str) or not fake_version.strip():
        raise InvalidArgumentError(f"fake_version must be a version string like '1.0.2', got {fake_version!r}.")
    if fake_version == sklearn.__version__:
        raise InvalidArgumentError(
            f"fake_version {fake_version!r} is the installed scikit-learn version, so no "
            "warning would follow; pick another, e.g. '1.0.2'."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _FakeVersionPickler(f, fake_version).dump(model)
    return path


# --------------------------------------------------------------------------- pickle runs code


class _WriteNote:
    """Unpickles by calling ``Path.write_text(note_path, message)``: standard library, no persistlib."""

    def __init__(self, note_path: Path, message: str):
        self.note_path, self.message = note_path, message

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.note_path, self.message))


def make_malicious_pickle(
    path: str | os.PathLike,
    note_path: str | os.PathLike,
    *,
    model: Any = None,
    message: str = "This note was written by unpickling a file. It could have been any code at all.\n",
) -> Path:
    """Write a HARMLESS pickle whose loading writes ``message`` to ``note_path``.

    Unpickling calls ``pathlib.Path.write_text(note_path, message)``: a
    function from Python's standard library, named inside the file. That is
    the whole trick; an attacker would name ``os.system`` instead.

    With ``model``, loading the file also returns that model, working
    normally, so nothing looks wrong to the person who loaded it.

    Returns the path written.
    """
    note = Path(note_path).resolve()
    payload: Any = _WriteNote(note, message)
    if model is not None:
        # [side effect, model][1]: the side effect runs, the caller gets the model.
        payload = _GetItem([payload, model], 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=5)
    return path


class _GetItem:
    def __init__(self, seq: list[Any], index: int):
        self.seq, self.index = seq, index

    def __reduce__(self) -> tuple[Any, ...]:
        return (operator.getitem, (self.seq, self.index))


def pickle_imports(path: str | os.PathLike) -> list[str]:
    """The ``module.name`` globals a pickle file will import or call, read WITHOUT unpickling it.

    Uses :mod:`pickletools` to walk the opcodes. Every callable a pickle can run
    must be named this way, which is why listing them is a useful first look
    (skops formalises the idea as its untrusted-type review). Works on plain
    pickle files (``pickle.dump``), not on compressed joblib files.
    """
    names, strings, memo = [], [], {}
    for op, arg, _ in pickletools.genops(Path(path).read_bytes()):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            strings.append(memo.get(arg))
        elif op.name == "GLOBAL":
            names.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- tampering


def _card_file(root: Path, version: str) -> Path:
    path = Path(root) / card_file_name(version)
    if not path.is_file():
        raise MissingFileError(f"no card {path.name} in {root}; list versions with Registry(root).versions().")
    return path


def replace_artifact(root: str | os.PathLike, version: str, source: str | os.PathLike) -> Path:
    """Overwrite version ``version``'s artefact in registry folder ``root`` with ``source``'s bytes.

    What an attacker with write access to the folder does (or a botched copy).
    The card is left alone, so its sha256 no longer matches. Returns the
    artefact's path.
    """
    card = json.loads(_card_file(Path(root), version).read_text(encoding="utf-8"))
    target = Path(root) / card["artifact"]
    target.write_bytes(Path(source).read_bytes())
    return target


def edit_card(root: str | os.PathLike, version: str, *, match_artifact: bool = False, **changes: Any) -> dict[str, Any]:
    """Rewrite fields of a version's card in place, as someone without the signing key would.

    Parameters
    ----------
    root : str or os.PathLike
        The registry folder.
    version : str
        e.g. ``"1.0.0"``.
    match_artifact : bool, default=False
        Recompute ``artifact_sha256`` and ``artifact_bytes`` from the artefact
        file now on disk: the attacker who replaced the model fixes the card
        too. The ``signature`` is kept (they cannot compute a new one).
    **changes
        Fields to set. A dict value for a dict field (``dependencies``,
        ``metrics``) is merged into it, e.g. ``dependencies={"scikit-learn": "1.0.2"}``.

    Returns
    -------
    dict
        The card as written.
    """
    path = _card_file(Path(root), version)
    card = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key not in card:
            raise InvalidArgumentError(f"card {path.name} has no field {key!r}; fields: {sorted(card)}.")
        if isinstance(value, dict) and isinstance(card[key], dict):
            card[key] = {**card[key], **value}
        else:
            card[key] = value
    if match_artifact:
        card["artifact_sha256"], card["artifact_bytes"] = sha256_file(Path(root) / card["artifact"])
    path.write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    return card


# --------------------------------------------------------------------------- custom code


def log1p_charges(X: Any) -> Any:
    """Feature engineering for churn data: ``log(1 + x)`` of the two charges columns.

    Lives in an importable module, so a pipeline using it through
    ``FunctionTransformer(log1p_charges)`` loads in any Python that can
    ``import persistlib``.
    """
    X = X.copy()
    for col in ("monthly_charges", "total_charges"):
        X[col] = np.log1p(X[col])
    return X


_SCRIPT = """\
import joblib
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
import numpy as np
import persistlib as pl
{definition}
X, y = pl.make_churn(300, random_state=0)
model = make_pipeline(FunctionTransformer(log1p_charges), StandardScaler(), LogisticRegression()).fit(X, y)
joblib.dump(model, {path!r})
"""

_IN_MAIN = """
def log1p_charges(X):  # defined here, in the script: its module is __main__
    X = X.copy()
    for col in ("monthly_charges", "total_charges"):
        X[col] = np.log1p(X[col])
    return X
"""


def save_with_main_function(path: str | os.PathLike, *, importable: bool, timeout: float = 120) -> Path:
    """Train and save a pipeline with a custom function, from a separate Python script.

    With ``importable=False`` the script defines ``log1p_charges`` itself, so
    the pickle refers to ``__main__.log1p_charges`` -- exactly what happens in
    a notebook or a training script. With ``importable=True`` it imports
    :func:`log1p_charges` from ``persistlib.demos`` instead. The script is
    written next to ``path`` and run with this interpreter.

    Returns the path of the saved model.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    definition = "from persistlib.demos import log1p_charges" if importable else _IN_MAIN
    script = path.with_suffix(".train.py")
    script.write_text(_SCRIPT.format(definition=definition, path=str(path)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=path.parent
    )
    if done.returncode != 0:
        raise DemoError(f"the training script {script.name} failed:\n{done.stderr[-2000:]}")
    return path


@dataclass(frozen=True)
class FreshLoad:
    """What happened when a fresh Python process tried ``joblib.load``."""

    ok: bool
    message: str  #: the loaded object's type on success, else the error's last line

    def __str__(self) -> str:
        return f"{mark(self.ok)} {'loaded' if self.ok else 'failed'}: {self.message}"


_LOADER = "import sys, joblib; m = joblib.load(sys.argv[1]); print(type(m).__name__)"


def load_in_fresh_python(path: str | os.PathLike, *, timeout: float = 120) -> FreshLoad:
    """Run ``joblib.load(path)`` in a new ``python -c`` process, as a server or a colleague would.

    The new process has its own ``__main__`` (nothing you defined in this
    notebook or script exists there), so it shows whether the file loads
    anywhere but here.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise MissingFileError(f"no file at {str(path)!r} to load.")
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, str(path)], capture_output=True, text=True, timeout=timeout, cwd=path.parent
    )
    if done.returncode == 0:
        return FreshLoad(True, done.stdout.strip().splitlines()[-1])
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return FreshLoad(False, lines[-1] if lines else f"exit code {done.returncode}")


# --------------------------------------------------------------------------- skops


def skops_untrusted_types(model: Any) -> list[str]:
    """The types skops would ask you to review before loading ``model`` (dumped in memory)."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


# --------------------------------------------------------------------------- choosing a format


def recommend_format(
    *, need_python_object: bool, untrusted_source: bool, need_mmap: bool = False, custom_functions: bool = False
) -> tuple[str, str]:
    """Follow scikit-learn's model-persistence questions, in order, to a format.

    1. Only predictions needed? ONNX. 2. Could the file come from someone you
    do not trust? skops. 3. Memory-mapping or sharing across processes?
    joblib, uncompressed. 4. Custom functions? They must be importable (or
    use cloudpickle). Otherwise joblib.

    Returns
    -------
    (format, reason) : tuple of str
    """
    if not need_python_object:
        if custom_functions:
            return (
                "joblib",
                "ONNX cannot convert custom Python functions; keep a Python format, "
                "with the functions in an importable module",
            )
        return ("onnx", "only predictions are needed: portable, no pickle, fast single-row predictions")
    if untrusted_source:
        return (
            "skops",
            "the file may come from an untrusted source: skops loads only reviewed types, never arbitrary code",
        )
    if need_mmap:
        return (
            "joblib",
            "joblib.load(path, mmap_mode='r') on an uncompressed file shares large arrays "
            "between processes (compressed files cannot be memory-mapped)",
        )
    if custom_functions:
        return (
            "joblib",
            "custom functions must live in an importable module on every machine that "
            "loads the model (or use cloudpickle, with no forward-compatibility guarantee)",
        )
    return (
        "joblib",
        "a trusted source and the Python object needed: joblib with compression, "
        "verified by a registry's sha256 before loading",
    )
