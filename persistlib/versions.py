"""Semantic versions: ``MAJOR.MINOR.PATCH``, and which part to bump.

* **major**: the model's contract changed (other features, other labels);
  whoever calls it must change too.
* **minor**: a better model with the same contract (retrained, new data).
* **patch**: a fix that should not change predictions (metadata, a re-export).

Versions compare as numbers, part by part: ``1.10.0`` is newer than ``1.9.0``,
which a plain string comparison gets wrong.
"""

from __future__ import annotations

import re

from .errors import InvalidArgumentError, InvalidVersionError

__all__ = ["parse_version", "bump_version", "normalise_version", "is_version", "version_sort_key", "BUMPS"]

#: The parts :func:`bump_version` can bump.
BUMPS = ("major", "minor", "patch")

# Each part has at most 9 digits: a version is a name, not a number to overflow.
_VERSION_RE = re.compile(r"v?(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})")


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` (or ``"v1.2.3"``) -> ``(1, 2, 3)``.

    Raises
    ------
    InvalidVersionError
        If ``version`` is not ``MAJOR.MINOR.PATCH`` with non-negative integers.
    """
    if not isinstance(version, str):
        raise InvalidVersionError(f"a version must be a string like '1.2.0', got {version!r}.")
    m = _VERSION_RE.fullmatch(version.strip())
    if not m:
        raise InvalidVersionError(f"{version!r} is not a semantic version; write MAJOR.MINOR.PATCH, e.g. '1.2.0'.")
    return int(m[1]), int(m[2]), int(m[3])


def is_version(text: str) -> bool:
    """Whether ``text`` parses as a version (used to tell versions from aliases)."""
    return isinstance(text, str) and _VERSION_RE.fullmatch(text.strip()) is not None


def version_sort_key(ref: str) -> tuple:
    """Sort versions numerically, and anything else (an alias) after them, by name."""
    return (0, parse_version(ref), "") if is_version(ref) else (1, (0, 0, 0), ref)


def normalise_version(version: str) -> str:
    """``" v1.2.0 "`` -> ``"1.2.0"``: the one spelling used in file names and aliases."""
    return "{}.{}.{}".format(*parse_version(version))


def bump_version(version: str, part: str = "minor") -> str:
    """The next version: ``bump_version("1.2.3", "minor") == "1.3.0"``."""
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise InvalidArgumentError(f"bump must be 'major', 'minor' or 'patch', got {part!r}.")
