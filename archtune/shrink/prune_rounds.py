"""The rounds of one pruning run (`prune`'s loop): `PruneRounds` ranks the units, removes the
lowest ranked (or zeroes single weights), fine-tunes, measures and stops; `PruneReport` records
what each round did.

The steps of a round are other modules' (archtune.shrink.importance, surgery, latency); this
module holds their order, the fine-tuning settings and the termination rules.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from archtune.errors import ArchtuneError
from archtune.fitting import set_fitted, task_spec
from archtune.models.tabm import LinearBatchEnsemble
from archtune.shrink.importance import magnitude, normalise, taylor
from archtune.shrink.latency import latency_ms
from archtune.shrink.surgery import remove_units, unit_layers
from archtune.train.loop import Trainer, predict_tensor

# Fine-tuning starts from a trained network: a tenth of its training rate, decayed to zero
# along a cosine, moves it back toward a minimum without undoing what it learned.
FINE_TUNE_LR_FACTOR = 0.1
IMPORTANCE_ROWS = 4096  # rows the Taylor importance is averaged over (a random sample)


@dataclass(frozen=True)
class PruneReport:
    """What `prune` did, round by round.

    Attributes
    ----------
    rounds : pandas.DataFrame
        One row per round, round 0 being the unpruned network: ``round``, ``n_params``
        (parameters of the network), ``n_nonzero`` (parameters that are not zero: what
        unstructured pruning reduces), ``latency_ms`` (milliseconds per 1000 rows, CPU, one
        thread, see `archtune.shrink.latency.latency_ms`: measured, so it differs from call to
        call while the other columns repeat), ``score`` (validation score:
        accuracy for a classifier, R^2 for a regressor), ``score_drop`` (baseline minus score),
        ``widths`` (units of each prunable layer), ``removed`` (per layer, the removed units'
        indices in the unpruned network; structured only).
    metric : str
        "accuracy" or "r2".
    baseline_score : float
        The unpruned network's validation score.
    kept_round : int
        The round whose network is returned (0: none was good enough).
    stop_reason : str
    method, importance : str
    """

    rounds: pd.DataFrame
    metric: str
    baseline_score: float
    kept_round: int
    stop_reason: str
    method: str
    importance: str

    def table(self) -> str:
        """The rounds as a plain-text table (the returned round marked with ``*``)."""
        lines = [f"{'round':>5}  {'params':>10}  {'nonzero':>10}  {'ms/1000 rows':>12}  {self.metric:>9}  "
                 f"{'drop':>8}  widths"]
        for row in self.rounds.itertuples():
            mark = "*" if row.round == self.kept_round else " "
            lines.append(f"{row.round:>4}{mark}  {row.n_params:>10,}  {row.n_nonzero:>10,}  {row.latency_ms:>12.3f}  "
                         f"{row.score:>9.4f}  {row.score_drop:>8.4f}  {','.join(map(str, row.widths))}")
        lines.append(f"stopped: {self.stop_reason}; returned round {self.kept_round}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PruneData:
    """A pruning run's rows: as tensors for fine-tuning and the importance, and the validation
    rows as given too, for the model's own ``score``."""

    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_val_raw: Any
    y_val_raw: Any


def n_params(module: nn.Module) -> int:
    """Parameters of a network."""
    return int(sum(p.numel() for p in module.parameters()))


def n_nonzero(module: nn.Module) -> int:
    """Parameters of a network that are not zero."""
    return int(sum(int(torch.count_nonzero(p.detach())) for p in module.parameters()))


def prunable_weights(net: nn.Module) -> list[nn.Module]:
    """The body's weighted layers (unstructured pruning's targets)."""
    return [m for m in net.body.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, LinearBatchEnsemble))]


class PruneRounds:
    """One pruning run: the working estimator, its data and the round-by-round state."""

    def __init__(self, model: Any, data: PruneData, importance: str, step: float, method: str, scope: str,
                 fine_tune_epochs: int, seed: int):
        self.model = model
        self.work = copy.deepcopy(model)  # scores candidate networks with the model's own predict
        self.data = data
        self.importance, self.step, self.method, self.scope = importance, step, method, scope
        self.fine_tune_epochs, self.seed = fine_tune_epochs, seed
        self.device = next(model.module_.parameters()).device
        self.task = dataclasses.replace(task_spec(model), label_smoothing=self._train_config().label_smoothing)
        generator = torch.Generator().manual_seed(seed)
        rows = torch.randperm(len(data.X), generator=generator)[:IMPORTANCE_ROWS]
        self.importance_rows = (data.X[rows], data.y[rows])
        self.example = data.X_val[:2]
        self.layers = unit_layers(model.module_, self.example) if method == "structured" else []
        # Per unit layer, the unpruned network's index of each remaining unit.
        self.origin = [list(range(layer.width)) for layer in self.layers]

    def _train_config(self) -> Any:
        return self.model.train_config(max(1, len(self.data.X)), self.seed)

    # ------------------------------------------------------------------ measuring

    def score(self, net: nn.Module) -> float:
        set_fitted(self.work, {"module_": net.eval()})
        return float(self.work.score(self.data.X_val_raw, self.data.y_val_raw))

    def measure(self, round_: int, net: nn.Module, baseline: float | None, removed: dict) -> dict[str, Any]:
        score = self.score(net)
        return {"round": round_, "n_params": n_params(net), "n_nonzero": n_nonzero(net),
                "latency_ms": latency_ms(net, self.data.X_val), "score": score,
                "score_drop": 0.0 if baseline is None else baseline - score,
                "widths": [layer.width for layer in unit_layers(net, self.example)] if self.layers
                else [int(m.weight.shape[0]) for m in prunable_weights(net)],
                "removed": removed}

    # ------------------------------------------------------------------ one round

    def scores(self, net: nn.Module, layers: list) -> list[torch.Tensor]:
        if self.importance == "magnitude":
            return magnitude(layers)
        X, y = self.importance_rows
        return taylor(net, layers, X, y, self.task.loss_fn(self.device))

    def structured_round(self, net: nn.Module) -> tuple[nn.Module, dict[str, list[int]]] | None:
        net = copy.deepcopy(net)  # the Taylor measure's backward pass must not touch the caller's network
        layers = unit_layers(net, self.example)
        scores = self.scores(net, layers)
        drop = self._choose(layers, scores)
        if not any(drop.values()):
            return None
        keep = {i: [j for j in range(layer.width) if j not in set(drop[i])] for i, layer in enumerate(layers)}
        removed = {f"layer{i}": sorted(self.origin[i][j] for j in drop[i]) for i in range(len(layers))}
        self.origin = [[self.origin[i][j] for j in keep[i]] for i in range(len(layers))]
        return remove_units(net, self.example, {i: torch.tensor(k) for i, k in keep.items()}), removed

    def _choose(self, layers: list, scores: list[torch.Tensor]) -> dict[int, list[int]]:
        """Per layer, the units to remove (lowest scores first; ties by index)."""
        if self.scope == "layer":
            out = {}
            for i, (layer, score) in enumerate(zip(layers, scores)):
                n = min(layer.width - 1, max(1, int(round(self.step * layer.width))))
                out[i] = sorted(torch.argsort(score, stable=True)[:n].tolist())
            return out
        ranked = sorted((float(s), i, j) for i, score in enumerate(normalise(scores)) for j, s in enumerate(score))
        total = sum(layer.width for layer in layers)
        budget = max(1, int(round(self.step * total)))
        out = {i: [] for i in range(len(layers))}
        for _, i, j in ranked:
            if budget == 0:
                break
            if layers[i].width - len(out[i]) > 1:  # every layer keeps a unit
                out[i].append(j)
                budget -= 1
        return {i: sorted(units) for i, units in out.items()}

    def unstructured_round(self, net: nn.Module) -> tuple[nn.Module, dict[str, list[int]]] | None:
        net = copy.deepcopy(net)
        modules = prunable_weights(net)
        grads = self._weight_gradients(net, modules) if self.importance == "taylor" else None
        changed = False
        for position, module in enumerate(modules):
            weight = module.weight.detach()
            zeros = int((weight == 0).sum())
            nonzero = weight.numel() - zeros
            amount = zeros + min(nonzero, max(1, int(round(self.step * nonzero)))) if nonzero > 1 else zeros
            changed = changed or amount > zeros
            scores = None if grads is None else (weight * grads[position]).abs()
            # Zero weights score 0 under both measures, so they are among the `amount` removed.
            torch_prune.l1_unstructured(module, "weight", amount=amount, importance_scores=scores)
        return (net, {}) if changed else None

    def _weight_gradients(self, net: nn.Module, modules: list[nn.Module]) -> list[torch.Tensor]:
        """The gradient of the summed loss over the importance rows for each module's weight."""
        X, y = self.importance_rows
        loss_fn = self.task.loss_fn(self.device)
        net.eval()
        net.zero_grad(set_to_none=True)
        for start in range(0, len(X), 512):
            xb, yb = X[start:start + 512].to(self.device), y[start:start + 512].to(self.device)
            (loss_fn(net(xb), yb) * len(xb)).backward()
        grads = [m.weight.grad.detach().clone() if m.weight.grad is not None else torch.zeros_like(m.weight)
                 for m in modules]
        net.zero_grad(set_to_none=True)
        return grads

    def fine_tune(self, net: nn.Module, round_: int) -> nn.Module:
        if self.fine_tune_epochs == 0:
            return net
        config = self._train_config()
        rate = float(getattr(self.model, "learning_rate_", None) or config.learning_rate)
        config = dataclasses.replace(config, max_epochs=self.fine_tune_epochs, learning_rate=rate * FINE_TUNE_LR_FACTOR,
                                     lr_schedule="cosine", warmup_epochs=0, early_stopping=True,
                                     patience=self.fine_tune_epochs)
        if self.method == "unstructured":
            # The masks' hooks recompute ``weight`` from ``weight_orig`` each pass, which the
            # trainer's penalties and constraints (applied to ``weight``) cannot see.
            config = dataclasses.replace(config, weight_decay=0.0, l1=0.0, l2=0.0, max_norm=None)
        loss_fn = self.task.loss_fn(self.device)
        before = self._val_loss(net, loss_fn)
        untuned = copy.deepcopy(net.state_dict())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + round_)
            trainer = Trainer(net, loss_fn, dataclasses.replace(config, seed=self.seed + round_),
                              metric=self.task.metric_fn(), metric_name=self.task.metric_name, device=self.device,
                              divergence_limit=self.task.divergence_limit)
            trainer.fit(self.data.X, self.data.y, self.data.X_val, self.data.y_val)
        # Early stopping keeps the best of the fine-tuning epochs; the network before them
        # competes too, by the same validation loss (a few steps of a fresh optimiser can
        # move a network that removal left close to its optimum away from it).
        if self._val_loss(net, loss_fn) > before:
            net.load_state_dict(untuned)
        return net.eval()

    def _val_loss(self, net: nn.Module, loss_fn: Any) -> float:
        with torch.no_grad():
            return float(loss_fn(predict_tensor(net, self.data.X_val.to(self.device)), self.data.y_val.to(self.device)))

    # ------------------------------------------------------------------ the loop

    def run(self, max_score_drop: float | None, target_params: int | None, target_latency: float | None,
            max_rounds: int, source: str | None, verbose: int) -> tuple[Any, PruneReport]:
        original = self.model.module_
        first = self.measure(0, original, None, {})
        baseline = first["score"]
        rows, kept, kept_round = [first], original, 0
        stop = f"max_rounds={max_rounds} reached"
        if verbose:
            print(f"round 0: {first['n_params']:,} parameters, {first['latency_ms']:.3f} ms/1000 rows, "
                  f"score {baseline:.4f}")
        for round_ in range(1, max_rounds + 1):
            step = self.structured_round(kept) if self.method == "structured" else self.unstructured_round(kept)
            if step is None:
                stop = "no unit left to remove (every layer is down to one unit)"
                break
            candidate, removed = step
            candidate = self.fine_tune(candidate, round_)
            if self.method == "unstructured":
                for module in prunable_weights(candidate):
                    torch_prune.remove(module, "weight")  # the zeros become the plain weight
            row = self.measure(round_, candidate, baseline, removed)
            rows.append(row)
            if verbose:
                print(f"round {round_}: {row['n_params']:,} parameters ({row['n_nonzero']:,} non-zero), "
                      f"{row['latency_ms']:.3f} ms/1000 rows, score {row['score']:.4f} (drop {row['score_drop']:.4f})")
            if max_score_drop is not None and row["score_drop"] > max_score_drop:
                stop = (f"the validation score dropped {row['score_drop']:.4f} > max_score_drop={max_score_drop} "
                        f"in round {round_}")
                break
            kept, kept_round = candidate, round_
            size = row["n_nonzero"] if self.method == "unstructured" else row["n_params"]
            if target_params is not None and size <= target_params:
                stop = f"target_params={target_params} reached"
                break
            if target_latency is not None and row["latency_ms"] <= target_latency:
                stop = f"target_latency={target_latency} ms reached"
                break
        report = PruneReport(pd.DataFrame(rows), self.task.metric_name, baseline, kept_round, stop, self.method,
                             self.importance)
        return self._result(kept, rows[kept_round], first, source), report

    def _result(self, net: nn.Module, row: dict[str, Any], first: dict[str, Any], source: str | None) -> Any:
        model = copy.deepcopy(self.model)
        config = self._config(net)
        # Rebuilt from the config as `archtune.load` will: the state must fit it exactly.
        rebuilt = self.task.build_network(config, model.input_spec_, 0)
        try:
            rebuilt.load_state_dict(net.state_dict())
        except RuntimeError as exc:
            raise ArchtuneError(f"the pruned network does not match its description ({exc})") from None
        size = "n_nonzero" if self.method == "unstructured" else "n_params"
        entry = {"step": "pruned", "from": source or f"{type(model).__name__} (in memory)",
                 "method": self.method, "importance": self.importance,
                 "params_before": int(first[size]), "params_after": int(row[size]),
                 "score_before": float(first["score"]), "score_after": float(row["score"])}
        if config.hidden_sizes != model.model_config_.hidden_sizes:
            model.set_params(hidden_sizes=tuple(config.hidden_sizes))
        return set_fitted(model, {"module_": rebuilt.to(self.device).eval(), "model_config_": config,
                                  "lineage_": [entry, *(getattr(self.model, "lineage_", None) or [])]})  # newest first

    def _config(self, net: nn.Module) -> Any:
        """The model's `ModelConfig` with the widths of the pruned layers."""
        config = self.model.model_config_
        if self.method == "unstructured":
            return config
        sizes = list(config.hidden_sizes)
        filters = list(config.conv_filters or [config.conv.filters * 2**b for b in range(config.conv.conv_blocks)])
        for layer in unit_layers(net, self.example):
            if layer.kind == "dense":
                sizes[layer.hidden_index] = layer.width
            else:
                filters[layer.hidden_index] = layer.width
        conv_changed = any(layer.kind == "conv" for layer in self.layers)
        return dataclasses.replace(config, hidden_sizes=tuple(sizes),
                                   conv_filters=tuple(filters) if conv_changed else config.conv_filters)


__all__ = ["FINE_TUNE_LR_FACTOR", "IMPORTANCE_ROWS", "PruneData", "PruneReport", "PruneRounds", "n_nonzero",
           "n_params", "prunable_weights"]
