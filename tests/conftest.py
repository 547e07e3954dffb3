"""Shared fixtures for persistlib's tests."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

# Bytecode is cached (in __pycache__/, git-ignored) even where PYTHONDONTWRITEBYTECODE is set, as it
# is on our machines and in CI. Without it every Python process the suite starts (nbval's kernels,
# the CLI, server and crash-test children, JupyterLab and Voila kernels) compiles persistlib from
# source again, ~0.4 s each, and each worker rewrites every test module. This runs before any test
# module or persistlib is imported, in the main process too, so the workers and every child inherit it.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# persistlib and scikit-learn are imported in the fixtures, not here: with xdist the main process
# only hands out tests, and importing them there (~2.5 s) delayed the start of every worker.

# What pytest, its plugins and the test modules import leaves each worker ~370,000 objects that live
# until it exits, and every full pass of the cyclic garbage collector walked them all again: 13 s of
# each worker's time over a run. Frozen (here, and after each module is collected), the collector
# skips them. The tests import more (MLflow, SQLAlchemy, Playwright...): after the last test of each
# module or notebook (its fixtures torn down), one collection frees that module's garbage and what survives is
# frozen too. Garbage made later is collected as before.
gc.freeze()


def pytest_collectreport(report):
    gc.freeze()  # what the module just collected imported


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()


@pytest.fixture(scope="session")
def churn_split():
    """A small, fixed churn split: (X_train, X_test, y_train, y_test)."""
    from sklearn.model_selection import train_test_split

    import persistlib as pl

    X, y = pl.make_churn(1500, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="session")
def small_model(churn_split):
    """A small fitted forest: quick to save and load."""
    from sklearn.ensemble import RandomForestClassifier

    X_train, _, y_train, _ = churn_split
    return RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X_train, y_train)


@pytest.fixture()
def registry(tmp_path):
    """An empty joblib registry in a temporary folder."""
    import persistlib as pl

    return pl.Registry(tmp_path / "registry")


@pytest.fixture(scope="module")
def two_forests(tmp_path_factory):
    """A registry with two tiny forests, 1.0.0 (production) and 2.0.0: (registry, X, y).

    Module-scoped: each test module gets its own, so promotions do not leak between modules.
    """
    from sklearn.ensemble import RandomForestClassifier

    import persistlib as pl

    X, y = pl.make_churn(600, random_state=2)
    reg = pl.Registry(tmp_path_factory.mktemp("two_forests") / "registry")
    for seed, version in enumerate(("1.0.0", "2.0.0")):
        model = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=seed).fit(X, y)
        reg.save(model, version=version)
    reg.promote("1.0.0")
    return reg, X, y


@pytest.fixture()
def wait_until():
    """``wait_until(condition, what)``: poll ``condition()`` until it holds; fail naming ``what`` if it never does.

    Each call has its own deadline, so one slow condition cannot eat another's time,
    and a condition that is never reached is a failure, not a silent pass.
    """
    import time

    def wait(condition, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"never reached: {what}"
            time.sleep(0.005)

    return wait


@contextmanager
def defined_in_main(monkeypatch, function):
    """Within the block, ``function`` lives in ``__main__`` (as one defined in a notebook), so a pickle made
    there refers to ``__main__.<name>``; after it, this ``__main__`` no longer has it, like another process's."""
    main = sys.modules["__main__"]
    monkeypatch.setattr(function, "__module__", "__main__")
    monkeypatch.setattr(main, function.__name__, function, raising=False)
    try:
        yield
    finally:
        monkeypatch.delattr(main, function.__name__)


def auth(server) -> dict[str, str]:
    """The header the admin endpoints require: the token start_http made for this server."""
    return {"Authorization": f"Bearer {server.admin_token}"}


@pytest.fixture(scope="module")
def http_server(two_forests):
    """One (ModelServer, base_url) per test module on the two-forest registry, for requests that change nothing."""
    import persistlib as pl

    server = pl.ModelServer(two_forests[0])
    url = pl.start_http(server)
    yield server, url
    pl.stop_http(url)


@contextmanager
def server_processes(script: str, *args: str, count: int = 2, exit_timeout: float = 30):
    """Start ``count`` Python processes running ``script``; yield the server URL each prints first.

    Each script serves until its stdin closes, then stops its follower and HTTP server and exits 0,
    which is checked on the way out.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        urls = []
        for proc in procs:
            line = proc.stdout.readline()
            if not line.startswith("http://127.0.0.1:"):
                proc.kill()
                pytest.fail(f"a server process did not start: {line!r} {proc.communicate(timeout=30)[1]}")
            urls.append(line.strip())
        yield urls
    finally:
        for proc in procs:
            proc.stdin.close()  # each server stops its follower and its HTTP server, then exits
        for proc in procs:
            try:
                assert proc.wait(exit_timeout) == 0, proc.stderr.read()
            finally:
                if proc.poll() is None:
                    proc.kill()


def versions_served(urls: list[str]) -> list[str]:
    """The version each server at ``urls`` answers ``GET /version`` with."""
    import httpx

    return [httpx.get(f"{u}/version", timeout=10).json()["version"] for u in urls]


def pytest_collection_modifyitems(items):
    """The browser tests first, then the notebooks, then the other tests (each group in collection order).

    With ``--no-loadscope-reorder`` (pyproject.toml) xdist hands the scopes out in this order: the
    browser scope (the longest) first, and the many short test modules last, to even out the end.
    """
    group = {"tests/browser/": 0, "notebooks/": 1}
    items.sort(key=lambda item: next((g for prefix, g in group.items() if item.nodeid.startswith(prefix)), 2))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with every browser test in one scope, so one worker starts JupyterLab and Chromium.

    Each worker that runs a browser test starts its own JupyterLab and Chromium (session fixtures in
    tests/browser/conftest.py), ~8 s of a worker's time. Handed out first (see
    pytest_collection_modifyitems), the browser tests keep one worker busy while the other takes the rest.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/browser" if nodeid.startswith("tests/browser/") else super()._split_scope(nodeid)

    return BrowserTestsTogether(config, log)


class DictRegistry:
    """Any object honouring the Registry contract will do; this one keeps models in a dict."""

    def __init__(self, models):
        self.models = models

    def versions(self):
        return sorted(self.models)

    def aliases(self):
        return {"production": "1.0.0"}

    def resolve(self, ref):
        v = self.aliases().get(ref, ref)
        if v not in self.models:
            from persistlib.errors import VersionNotFoundError

            raise VersionNotFoundError(f"no {ref!r}")
        return v

    def card(self, ref):
        v = self.resolve(ref)
        from persistlib.card import ModelCard

        return ModelCard(
            version=v,
            trained_at="2026-01-01T00:00:00+00:00",
            algorithm="Slow",
            artifact=f"m{v}",
            artifact_sha256=hashlib.sha256(v.encode()).hexdigest(),  # each version its own
        )

    def load(self, ref):
        return self.models[self.resolve(ref)], self.card(ref)
