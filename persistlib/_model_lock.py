"""One model call at a time in this process: scikit-learn's ensembles are not safe to call from two threads at once.

scikit-learn 1.9 runs an ensemble's per-estimator work (a forest's trees, a bagging
model's members) through ``sklearn.utils.parallel``, which swaps the process's
warning filters in and out around every task. The ``warnings`` module keeps those
filters in one process-wide list, so two threads predicting with forests at the
same time can leave the process with no filters, or duplicated ones; every later
prediction then warns "`sklearn.utils.parallel.delayed` should be used with
`sklearn.utils.parallel.Parallel`" (scikit-learn issue #32631).
``tests/test_model_lock.py`` shows it happen without this lock.

A server predicts in many threads (HTTP workers, a load generator, a swap's
warm-up), and a notebook evaluates models while a server runs. So every model
call persistlib makes (serving, :func:`~persistlib.gate.evaluate`, the bootstrap,
the ONNX check, the widgets) holds :data:`model_lock`, through :func:`one_model_call`.
A forest predicting a few rows is Python-bound and held the GIL almost throughout
anyway; a model whose work releases the GIL (large numpy batches) loses the
parallelism of concurrent calls.

Training is left out: a fit can take seconds, and holding the lock for it would
stall every request meanwhile. Fitting a forest in one thread while another
predicts can still corrupt the filters; fit where nothing is being served, or
in another process, as a production retraining job does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Held around every model call persistlib makes. Re-entrant: a call inside a call does not deadlock.
model_lock = threading.RLock()
#: How long a model call waits for another one to finish before it goes ahead without the lock.
WAIT = 1.0


@contextmanager
def one_model_call() -> Iterator[None]:
    """Hold :data:`model_lock` for one model call, waiting at most :data:`WAIT` seconds for it.

    A model call that hangs, or takes far longer than a prediction should, must not
    stall every other request, nor the swap that would replace its model; past
    ``WAIT`` the call goes ahead without the lock (and the race is possible again
    while the slow call lasts).
    """
    got = model_lock.acquire(timeout=WAIT)
    try:
        yield
    finally:
        if got:
            model_lock.release()
