"""Experiment tracking: searches and fits logged to MLflow or as TensorBoard event files.

- A search (``AutoNeural*(mlflow_uri=..., tensorboard_dir=...)``, ``archtune tune --mlflow
  URI --tensorboard DIR``): `search_tracker.SearchTracker`, called by the search at its start,
  at each trial's end, after the baselines and at its end.
- One fit: the callbacks ``archtune.train.MLflowLogger`` and ``TensorBoardLogger``
  (archtune/train/tracking.py; ``fit(callbacks=[...])``, ``archtune fit --mlflow URI
  --tensorboard DIR``).

mlflow (``pip install 'archtune[mlflow]'``) and tensorboardX (``'archtune[tensorboard]'``) are
optional and imported only when tracking is asked for. This package's ``__init__`` imports
nothing, so that ``archtune.train`` (which re-exports the callbacks) can import its modules.
"""
