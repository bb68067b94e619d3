"""The Trainer: mini-batch training of one network from a `TrainConfig`.

A thin front of the training core (archtune.train.core) with one member and a
`SingleEngine`. Data lives in memory as tensors and mini-batches are cut by indexing a
per-epoch permutation: for the small networks archtune trains, a DataLoader's per-batch
Python overhead would cost more than the arithmetic. Losses are accumulated on the device and
read once per epoch, so there is no host synchronisation inside the batch loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from archtune.config import TrainConfig
from archtune.train.callbacks import Callback, History
from archtune.train.core import run
from archtune.train.engines import EVAL_BATCH, SingleEngine, penalised_weights, predict_tensor
from archtune.train.state import TrainingState

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


class Trainer:
    """Train ``module`` with ``loss_fn`` as ``config`` says.

    Parameters
    ----------
    module : torch.nn.Module
        The network; trained in place.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor`` (the data loss, without penalties).
    config : TrainConfig
        Optimiser, schedule, regularisation, batch size, epochs and early stopping.
    metric : callable, optional
        ``metric(outputs, targets) -> float`` computed on the validation set each epoch.
    metric_name : str
        Name under which the metric appears in the history (``val_<name>``).
    callbacks : sequence of Callback
        Each hook receives the run's `TrainingState` (``module``, ``config``, ``epoch``,
        ``history``, ``stop_training``, ...).
    device : torch.device or str
    divergence_limit : float, optional
        A training loss above this stops training as diverged.
    interrupt : callable, optional
        ``interrupt() -> bool``, checked every step: True ends the epoch and training at once.
    param_groups, eval_modules : optional
        Fine-tuning (archtune.transfer.freeze): optimiser groups ``{"params": [...],
        "lr_factor": f}`` (parameters in none do not train) and modules kept in evaluation
        mode; see `SingleEngine`.
    epoch_offset : int
        Epochs already trained in an earlier phase: this run's epochs are numbered after them
        (in the logs, ``state.epoch`` and ``best_epoch``); ``config.max_epochs`` counts this
        run's own.

    After `fit`, ``module`` holds the best epoch's weights (with early stopping), ``history``
    the logs of every epoch and ``best_epoch`` the epoch of the weights kept. A diverged run
    raises `TrainingDivergedError`; an exception from a callback is raised as it is.
    """

    def __init__(self, module: nn.Module, loss_fn: LossFn, config: TrainConfig, *, metric: MetricFn | None = None,
                 metric_name: str = "metric", callbacks: Sequence[Callback] = (),
                 device: torch.device | str = "cpu", divergence_limit: float | None = None,
                 interrupt: Callable[[], bool] | None = None, param_groups: Sequence[dict] | None = None,
                 eval_modules: Sequence[nn.Module] = (), epoch_offset: int = 0):
        self.module = module
        self.config = config
        self.metric_name = metric_name
        self.device = torch.device(device)
        self.divergence_limit = divergence_limit
        self.interrupt = interrupt
        self.engine = SingleEngine(module, config, loss_fn, metric, self.device, param_groups, eval_modules)
        self.epoch_offset = epoch_offset
        self.callbacks = list(callbacks)
        self.state: TrainingState | None = None

    @property
    def history(self) -> History:
        return self.state.history if self.state is not None else History()

    @property
    def best_epoch(self) -> int:
        return self.state.best_epoch if self.state is not None else 0

    def fit(self, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor | None = None,
            y_val: torch.Tensor | None = None, *, w: torch.Tensor | None = None,
            w_val: torch.Tensor | None = None) -> History:
        """Train on (X, y), validating on (X_val, y_val) when given; return the History.
        ``w`` and ``w_val`` weight the rows (see archtune.train.losses); None: unweighted."""
        batch_size = min(self.config.batch_size, max(1, len(X)))
        steps = -(-len(X) // batch_size)
        state = self.state = TrainingState(0, self.config, self.metric_name, self.callbacks, steps, self.engine)
        state.epoch_offset = self.epoch_offset

        def keep_result(member: TrainingState) -> None:
            if member.config.early_stopping and member.best_state is not None:
                self.module.load_state_dict(member.best_state)

        run(self.engine, [state], X, y, X_val, y_val, seed=self.config.seed, device=self.device,
            divergence_limit=self.divergence_limit, interrupt=self.interrupt, on_leave=keep_result,
            w=w, w_val=w_val)
        if state.error is not None:
            raise state.error
        return state.history


__all__ = ["EVAL_BATCH", "Trainer", "penalised_weights", "predict_tensor"]
