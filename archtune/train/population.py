"""PopulationTrainer: K networks of one structure trained together as a `StackedNetwork`.

A thin front of the training core (archtune.train.core) with a `StackedEngine`: every member
keeps its own hyperparameters (learning rate and schedule, warm-up, momentum or beta1, weight
decay, L1, L2, dropout, max-norm, gradient clipping, early stopping) and follows the same
arithmetic as `Trainer` does for one network; all members see the same mini-batches, or, given
`MemberRows` (cross-validation bagging), each member its own rows in its own order. A member
leaves the stack (compaction) when it early-stops, diverges, reaches its epoch limit, or one of
its callbacks stops it (a pruner); the others continue unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from archtune.config import TrainConfig
from archtune.errors import InvalidParameterError
from archtune.families import family_spec
from archtune.train.callbacks import Callback
from archtune.train.core import run
from archtune.train.engines import StackedEngine
from archtune.train.member_rows import MemberRows
from archtune.train.state import TrainingState

MemberLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MemberResult:
    """How a member ended, and what it leaves behind."""

    status: str  # "complete" | "diverged" | "stopped" (a callback raised; see ``error``)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    state: dict[str, torch.Tensor] | None = None  # single-network state dict of its result
    error: BaseException | None = None


class PopulationTrainer:
    """Train ``modules`` (built by `build_model`, one structure) together.

    Parameters
    ----------
    modules : list of TabularNetwork
        Initial networks; their weights are copied into the stack.
    configs : list of TrainConfig
        One per member; optimiser and batch size must agree. The data order follows the first
        member's seed.
    loss : callable
        ``loss(outputs [K, B, o], targets) -> [K]`` (see `make_member_loss`).
    metric : callable
        ``metric(outputs [K, N, o], targets) -> [K]``.
    callbacks : list of list of Callback, optional
        Per member; each hook receives the member's `TrainingState`; ``on_epoch_end`` may set
        ``state.stop_training`` or raise to stop that member (the exception is kept in its
        result).
    divergence_limit : float, optional
        A member whose training loss exceeds it has diverged.
    interrupt : callable, optional
        Checked every step; when it returns True the current epoch ends at once (its
        validation still runs and the callbacks see it) and every member stops with its best
        weights so far. A cohort's epoch is K members long, too long to wait for at a deadline.
    """

    def __init__(self, modules: Sequence[torch.nn.Module], configs: Sequence[TrainConfig], loss: MemberLoss,
                 metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], metric_name: str = "metric",
                 callbacks: Sequence[Sequence[Callback]] | None = None, device: torch.device | str = "cpu",
                 divergence_limit: float | None = None, interrupt: Callable[[], bool] | None = None):
        if len({(c.optimizer, c.batch_size) for c in configs}) > 1:
            raise InvalidParameterError("members of a population must share optimizer and batch_size")
        self.device = torch.device(device)
        self.engine = StackedEngine(modules, configs, loss, metric, self.device)
        self.net = self.engine.net
        self.configs = list(configs)
        self.metric_name = metric_name
        self.callbacks = [list(c) for c in (callbacks or [[] for _ in configs])]
        self.divergence_limit = divergence_limit
        self.interrupt = interrupt

    def fit(self, X: torch.Tensor | None, y: torch.Tensor | None, X_val: torch.Tensor | None = None,
            y_val: torch.Tensor | None = None, *, w: torch.Tensor | None = None,
            w_val: torch.Tensor | None = None, rows: MemberRows | None = None) -> list[MemberResult]:
        """Train every member on (X, y); one `MemberResult` per member, in order.
        ``w`` and ``w_val`` weight the rows (see archtune.train.losses); None: unweighted.

        With ``rows`` (X, y, X_val, y_val, w and w_val None), member k trains and validates on
        its own rows in its own order (its config's seed order): the loss given to the trainer
        must then be `make_padded_member_loss`'s (``TaskSpec.padded_member_loss_fn``)."""
        if rows is not None:
            if len(rows.sizes) != len(self.configs):
                raise InvalidParameterError(f"rows hold {len(rows.sizes)} members' data for {len(self.configs)} members")
            rows.seeds = [c.seed for c in self.configs]  # each member's order is its own fit's
            steps_of = rows.steps_per_epoch(self.configs[0].batch_size)
        else:
            batch_size = min(self.configs[0].batch_size, max(1, len(X)))  # type: ignore[arg-type]
            steps_of = [-(-len(X) // batch_size)] * len(self.configs)  # type: ignore[arg-type]
        members = [TrainingState(k, c, self.metric_name, cbs, steps_of[k], self.engine)
                   for k, (c, cbs) in enumerate(zip(self.configs, self.callbacks))]
        states: dict[int, dict[str, torch.Tensor]] = {}

        def keep_result(member: TrainingState) -> None:
            if member.status != "diverged":
                states[member.index] = member.result_state()

        run(self.engine, members, X, y, X_val, y_val, seed=self.configs[0].seed, device=self.device,
            divergence_limit=self.divergence_limit, interrupt=self.interrupt, on_leave=keep_result,
            w=w, w_val=w_val, rows=rows)
        return [MemberResult(m.status, m.history.records, m.best_epoch, states.get(m.index), m.error)
                for m in members]


def structure_signature(config: Any, train: TrainConfig, hidden_sizes: Sequence[int]) -> tuple:
    """Members train together only if these match: family, depth, activation (parametric or
    not), norm, the feature scale, the numeric
    embedding's kind and sizes, optimiser, batch size, and what the family's declaration adds
    (`FamilySpec.stack_key`: which residual blocks have projections, TabM's ensemble size k)
    (widths, rates and the embedding's initial frequency scale may differ)."""
    numeric = config.numeric
    embedding = None if numeric.kind is None else (
        numeric.kind, numeric.d_embedding, numeric.n_frequencies if numeric.kind != "piecewise_linear" else None,
        (numeric.n_bins, numeric.binning) if numeric.kind == "piecewise_linear" else None)
    family = family_spec(config.arch).stack_key(config, hidden_sizes)
    return (config.arch, len(hidden_sizes), config.activation, config.parametric_activation, config.norm,
            config.feature_scale, embedding, train.optimizer, train.batch_size, family)


__all__ = ["MemberResult", "PopulationTrainer", "structure_signature"]
