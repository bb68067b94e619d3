"""Experiment tracking: searches and fits logged to MLflow or as TensorBoard event files.

- A search (``AutoNeural*(mlflow_uri=..., tensorboard_dir=...)``, ``archtune tune --mlflow
  URI --tensorboard DIR``): `search_tracker.SearchTracker`, called by the search at its start,
  at each trial's end, after the baselines and at its end.
- One fit: the callbacks `MLflowLogger` and `TensorBoardLogger` (``fit(callbacks=[...])``,
  ``archtune fit --mlflow URI --tensorboard DIR``).

mlflow (``pip install 'archtune[mlflow]'``) and tensorboardX (``'archtune[tensorboard]'``) are
optional and imported only when tracking is asked for.
"""

from archtune.tracking.callbacks import MLflowLogger, TensorBoardLogger

__all__ = ["MLflowLogger", "TensorBoardLogger"]
