"""Layer 4: optional registries behind the same contract as :class:`~persistlib.Registry`.

:class:`~persistlib.backends.mlflow.MlflowRegistry` keeps the course's lifecycle
(save, load, promote, rollback, history) in an MLflow tracking store or server,
and :mod:`~persistlib.backends.tracking_server` starts a local MLflow server for
a lesson or a test. Nothing here imports MLflow until it is used, so
``import persistlib`` stays fast and works without it; a missing or broken MLflow
is a :class:`~persistlib.errors.BackendUnavailableError` naming the ``pip install``.
"""

__all__: list[str] = []
