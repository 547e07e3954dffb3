"""The environment a model needs: which package versions it was saved with, and whether they match here.

A pickled scikit-learn model is only guaranteed to load under the versions
that wrote it. The card records those versions (:func:`environment_versions`);
:func:`check_compatibility` compares them with what is running before any byte
is unpickled, and turns a mismatch into one line that says what to do.
"""

from __future__ import annotations

import platform
import re
import sys
from functools import cache
from importlib import metadata

from .errors import CompatibilityError

__all__ = ["TRACKED_PACKAGES", "environment_versions", "check_compatibility"]

#: Packages whose versions every card records.
TRACKED_PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib", "pandas", "skops", "persistlib")


def environment_versions() -> dict[str, str]:
    """Versions of Python and of the packages a pickled model depends on.

    For a package already imported, the version of the imported module is used
    (what is really running, even if something was pip-installed since);
    otherwise the installed distribution's version.
    """
    out = {"python": platform.python_version()}
    for pkg in TRACKED_PACKAGES:
        module = sys.modules.get(_IMPORT_NAMES.get(pkg, pkg))
        running = getattr(module, "__version__", None)
        version = running if isinstance(running, str) else _installed_version(pkg)
        if version is not None:
            out[pkg] = version
    return out


_IMPORT_NAMES = {"scikit-learn": "sklearn"}


@cache
def _installed_version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _parts(v: str) -> tuple[int, int, int]:
    """``"1.9.1rc1"`` -> ``(1, 9, 1)``; missing parts count as 0."""
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", v.strip())
    return tuple(int(g or 0) for g in m.groups()) if m else (0, 0, 0)  # type: ignore[return-value]


# (package, how many leading version parts must agree for a safe load)
_STRICT = {"scikit-learn": 2, "numpy": 1}


def check_compatibility(recorded: dict[str, str], installed: dict[str, str] | None = None) -> list[str]:
    """Compare a card's recorded versions with the running environment.

    Returns the list of small differences (one message each). Raises
    :class:`CompatibilityError` for a difference that makes loading unsafe:
    another scikit-learn major or minor version, or another numpy major.
    """
    installed = environment_versions() if installed is None else installed
    errors, notes, pins = [], [], []
    for pkg, rec in sorted(recorded.items()):
        inst = installed.get(pkg)
        if pkg in ("persistlib",) or inst is None or inst == rec:
            continue
        if pkg != "python":
            pins.append(f"{pkg}=={rec}")
        strict = _STRICT.get(pkg)
        fix = f"pip install {pkg}=={rec}" if pkg != "python" else f"use Python {rec}"
        if strict and _parts(rec)[:strict] != _parts(inst)[:strict]:
            errors.append(f"{pkg}: saved with {rec}, installed {inst}.")
        else:
            notes.append(f"{pkg}: saved with {rec}, installed {inst}; usually harmless, but to match exactly: {fix}.")
    if errors:
        py = recorded.get("python")
        python = "python{}.{}".format(*_parts(py)[:2]) if py else "python"
        raise CompatibilityError(
            "this model was saved in an environment that cannot safely load here:\n  "
            + "\n  ".join(errors)
            + "\nFix: retrain the model and save it again under the installed versions. Or load this file in a "
            f"separate environment with the card's Python{f' ({py})' if py else ''} and versions, which installed "
            "together when the model was saved (from there you can export it, e.g. to ONNX):\n  "
            f"{python} -m venv old-env && old-env/bin/pip install {' '.join(pins)}\n"
            "Not into this environment: a newer Python may have no wheels for old versions, "
            "and a downgrade changes it for everything else.\n"
            "To load anyway (unsupported; predictions may be wrong), pass allow_version_mismatch=True."
        )
    return notes
