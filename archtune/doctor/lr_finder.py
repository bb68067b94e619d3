"""The learning-rate finder: which learning rate should this network train with?

Two procedures, both on a throwaway copy of the estimator's initial network:

- ``method="range"``: the exponential range test (Smith, 2015; fast.ai's ``lr_find``). One
  pass of mini-batch steps while the rate grows geometrically from ``start_lr`` to
  ``end_lr``, recording the loss, until it diverges. Suggestions: the rate where the smoothed
  loss falls fastest (the steepest descent, per unit of log learning rate), and the largest
  rate at which the loss was still no worse than where it started (the largest stable rate).
- ``method="divide"``: the practitioner's rule "start high, divide by 3 until training stops
  diverging": from ``end_lr``, train ``probe_steps`` steps at a constant rate from the same
  initial weights; while the loss does not end below 0.8 of where it began, divide by 3, and
  suggest a tenth of the first rate that trains.

    from archtune import NeuralClassifier, lr_find
    result = lr_find(NeuralClassifier(units=128), X, y)
    print(result)                      # a text summary with both suggestions
    result.plot("lr.png")              # loss against learning rate (needs matplotlib)
    NeuralClassifier(units=128, learning_rate=result.suggestion).fit(X, y)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archtune.checks import check_choice, check_number
from archtune.errors import InvalidParameterError
from archtune.fitting import prepare
from archtune.prepared import Prepared
from archtune.train.threads import training_threads


# "divide": a rate trains when the loss at the end of the probe is at most this share of the
# loss at its start (a rate that merely does not blow up can still oscillate uselessly).
STABLE_RATIO = 0.8
# "range": the yardstick is the median smoothed loss of this many first steps; the loss has
# descended when its minimum is this share below it, and has risen (the rate is no longer
# stable) when it is this share above it.
REFERENCE_STEPS = 10
MIN_DESCENT = 0.01
RISE_TOLERANCE = 0.02


@dataclass
class LRFinderResult:
    """What the finder measured, and what it suggests."""

    method: str
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    steepest: float | None = None  # range test: fastest descent of the smoothed loss
    largest_stable: float | None = None  # largest rate whose loss had not risen above the start
    suggestion: float = 1e-3
    descended: bool = True  # range test: whether the loss clearly fell at all

    def __str__(self) -> str:
        lines = [f"learning-rate finder ({self.method}): suggested learning_rate={self.suggestion:.3g}"]
        if self.method == "range":
            if not self.descended:
                lines.append("  the loss never clearly fell: suggested a tenth of the largest stable rate (try more "
                             "steps or a larger batch if the network should learn quickly)")
            elif self.steepest:
                lines.append(f"  steepest descent of the loss at {self.steepest:.3g}")
            if self.largest_stable:
                lines.append(f"  largest stable rate {self.largest_stable:.3g} (the loss diverges above it)")
            lines.append(f"  {len(self.lrs)} steps from {self.lrs[0]:.1e} to {self.lrs[-1]:.1e}")
        else:
            tried = ", ".join(f"{lr:.3g}" + (" did not train" if not ok else " trains")
                              for lr, ok in zip(self.lrs, [math.isfinite(v) and v <= STABLE_RATIO
                                                           for v in self.losses]))
            lines.append(f"  tried, from the top, dividing by 3: {tried}; suggested a tenth of the first that trains")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Loss against learning rate (log axis) as a PNG, with the suggestions marked."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - matplotlib ships with the test extras
            raise InvalidParameterError("plotting needs matplotlib: pip install 'archtune[plot]'") from exc
        fig, ax = plt.subplots(figsize=(6, 4))
        draw_curve(ax, self)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def draw_curve(ax: Any, result: Any, legend_size: str = "medium") -> None:
    """Draw a finder's curve on matplotlib axes ``ax``: the loss against the rate (log axis)
    and the rates it marks. ``result`` is an `LRFinderResult`, or anything with its fields (the
    report's data); losses that are None are drawn as gaps."""
    def values(seq: Any) -> list[float]:
        return [math.nan if v is None else v for v in seq]

    ax.plot(result.lrs, values(result.losses), alpha=0.35, label="loss")
    if result.smoothed:
        ax.plot(result.lrs, values(result.smoothed), label="smoothed")
    for value, name, style in ((result.steepest, "steepest", "--"), (result.largest_stable, "largest stable", ":"),
                               (result.suggestion, "suggestion", "-")):
        if value:
            ax.axvline(value, linestyle=style, color="k", alpha=0.6, label=f"{name} {value:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss" if result.method == "range" else "final / initial loss")
    ax.legend(fontsize=legend_size)


def lr_find(estimator: Any, X: Any, y: Any, *, method: str = "range", start_lr: float = 1e-7,
            end_lr: float = 10.0, num_steps: int = 100, smoothing: float = 0.05, divergence: float = 4.0,
            probe_steps: int = 50) -> LRFinderResult:
    """Run the learning-rate finder for ``estimator``'s network on (X, y).

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        Unfitted or fitted; it is not changed. Its optimiser, batch size and architecture are
        used as given. Its ``random_state`` seeds the finder (the validation split, as a
        fit's, the initial weights, the batches and dropout): None draws a fresh seed
        from NumPy's global generator, so each call measures another curve; pass an integer
        to repeat one.
    method : {"range", "divide"}
    start_lr, end_lr : float
        The range of the test ("divide" starts at ``end_lr``).
    num_steps : int
        Steps of the range test (the data is cycled if it has fewer batches).
    smoothing : float
        Weight of the newest loss in the exponential moving average.
    divergence : float
        The range test stops once the smoothed loss exceeds this multiple of its best.
    probe_steps : int
        Steps per trial rate of the "divide" method.

    Notes
    -----
    Reproducibility: the same estimator parameters (an integer ``random_state``), rows and
    settings give the same curve and suggestion, whatever the session drew from NumPy's or
    torch's global generators before; so does ``learning_rate="auto"`` in ``fit``, which runs
    this finder on the fit's own prepared rows. The steps are float sums that torch may split
    among its threads (`archtune.train.threads`, as in a fit: one thread unless the steps are
    large, at most the idle cores, i.e. the load average), so another thread count can change
    their last bits and, near the suggestion's thresholds, the rate suggested;
    ``torch.set_num_threads(n)`` fixes it (archtune keeps a count the user set). On a GPU,
    PyTorch's non-deterministic kernels add their own differences.
    """
    check_choice("method", method, ("range", "divide"))
    check_number("start_lr", start_lr, 0.0, low_open=True)
    check_number("end_lr", end_lr, start_lr, low_open=True)
    check_number("num_steps", num_steps, 5, integer=True)
    check_number("smoothing", smoothing, 0.0, 1.0, low_open=True)
    check_number("divergence", divergence, 1.0, low_open=True)
    check_number("probe_steps", probe_steps, 1, integer=True)
    return find_on_prepared(prepare(estimator, X, y), method=method, start_lr=start_lr, end_lr=end_lr,
                            num_steps=num_steps, smoothing=smoothing, divergence=divergence, probe_steps=probe_steps)


def find_on_prepared(prepared: Prepared, *, method: str = "range", start_lr: float = 1e-7,
                     end_lr: float = 10.0, num_steps: int = 100, smoothing: float = 0.05, divergence: float = 4.0,
                     probe_steps: int = 50) -> LRFinderResult:
    """The finder on prepared data (what ``learning_rate="auto"`` runs in fit). The global random state is left as it was, so that the fit that follows draws the
    same dropout masks as it would have without the finder."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(prepared.seed)
        module = prepared.build_network().to(prepared.device)
        loss_fn = prepared.task.loss_fn(prepared.device)
        batches = _batches(prepared)
        # The finder's steps are the fit's steps: the same thread rule (archtune.train.threads).
        batch = min(prepared.train_config.batch_size, len(prepared.X_train))
        with (training_threads([module], prepared.X_train[:1].to(prepared.device), batch)
              if prepared.device.type == "cpu" else nullcontext()):
            if method == "range":
                return _range_test(module, prepared.train_config, loss_fn, batches, start_lr, end_lr, num_steps,
                                   smoothing, divergence)
            return _divide_by_three(module, prepared.train_config, loss_fn, batches, end_lr, probe_steps)


# learning_rate="auto" when the finder cannot decide: the estimators' default rate.
FALLBACK_LEARNING_RATE = 2e-3
# A suggestion within this factor of the first rate tried, from a curve that never descended,
# is no decision.
BOTTOM_OF_RANGE = 10.0


def resolve_learning_rate(prepared: Prepared) -> Prepared:
    """With ``learning_rate="auto"``, the prepared fit with the finder's suggestion (the range
    test on the prepared training rows); otherwise ``prepared`` unchanged.

    When the finder cannot decide (the loss never descended over the range, or it diverged at
    the first rates: a degenerate target, say), the fit uses FALLBACK_LEARNING_RATE and warns
    why; the user never set the finder's ``start_lr``, so its error is not theirs to fix."""
    if not prepared.auto_lr:
        return prepared
    try:
        result = find_on_prepared(prepared)
    except InvalidParameterError as exc:
        reason = str(exc).split(";")[0]
    else:
        # A curve that never descended and points at the bottom of the range tried says only
        # that nothing was learned there (a target with one positive row in 200, say).
        if result.descended or result.suggestion > BOTTOM_OF_RANGE * result.lrs[0]:
            return prepared.with_learning_rate(result.suggestion, finder=result)
        reason = f"the loss did not descend, and the only stable rates were near {result.lrs[0]:g}"
    warnings.warn(f"learning_rate='auto': the learning-rate finder could not decide ({reason}); using "
                  f"learning_rate={FALLBACK_LEARNING_RATE:g}", RuntimeWarning, stacklevel=3)
    return prepared.with_learning_rate(FALLBACK_LEARNING_RATE, finder=None)


def _batches(prepared: Prepared):
    """An endless stream of shuffled mini-batches of the training rows."""
    X, y = prepared.X_train.to(prepared.device), prepared.y_train.to(prepared.device)
    n = len(X)
    size = max(2, min(prepared.train_config.batch_size, n))
    generator = torch.Generator().manual_seed(prepared.seed)
    while True:
        perm = torch.randperm(n, generator=generator).to(X.device)
        for start in range(0, n - size + 1, size):  # full batches only: batch norm needs 2+ rows
            idx = perm[start:start + size]
            yield X[idx], y[idx]


def _optimizer(module: torch.nn.Module, config: Any, lr: float) -> torch.optim.Optimizer:
    from archtune.train.optim import make_optimizer

    return make_optimizer(dataclasses.replace(config, learning_rate=lr), module.parameters())


def _step(module, optimizer, loss_fn, xb, yb) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(module(xb), yb)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _range_test(module, config, loss_fn, batches, start_lr, end_lr, num_steps, smoothing,
                divergence) -> LRFinderResult:
    module = copy.deepcopy(module).train()
    optimizer = _optimizer(module, config, start_lr)
    ratio = (end_lr / start_lr) ** (1 / (num_steps - 1))
    result = LRFinderResult("range")
    average, best = 0.0, math.inf
    for i in range(num_steps):
        lr = start_lr * ratio**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb, yb = next(batches)
        loss = _step(module, optimizer, loss_fn, xb, yb)
        if not math.isfinite(loss):
            break
        # A bias-corrected moving average (as fast.ai's): seeding it with the first loss would
        # weigh that one batch 0.6 still after ten steps.
        average = (1 - smoothing) * average + smoothing * loss
        smoothed = average / (1 - (1 - smoothing) ** (len(result.lrs) + 1))
        result.lrs.append(lr)
        result.losses.append(loss)
        result.smoothed.append(smoothed)
        best = min(best, smoothed)
        # The first steps' losses are single batches: one noisy batch is not divergence.
        if smoothed > divergence * best and len(result.lrs) > REFERENCE_STEPS:
            break
    if len(result.lrs) < 3:
        raise InvalidParameterError(f"the loss diverged at once (learning rate {start_lr:g}); lower start_lr")
    _suggest(result)
    return result


def _suggest(result: LRFinderResult) -> None:
    """The range test's suggestions from its curve (``lrs``, ``smoothed``).

    The yardstick is the median smoothed loss of the first steps, whose rates are too small to
    train: a single first batch that happens to be easy would otherwise make every later loss
    look like a rise. A curve whose minimum is not clearly below the yardstick never descended
    (a GRU on text at these step counts, say); then the suggestion is a tenth of the largest
    stable rate, never a tenth of the first rate tried.
    """
    lrs = np.asarray(result.lrs)
    smooth = np.asarray(result.smoothed)
    # The first steps' rates (1e-7 to 6e-7 by default) are the yardstick; their losses are
    # single noisy batches, so neither the minimum nor the steepest slope is looked for there.
    window = min(REFERENCE_STEPS, max(1, len(lrs) // 10))
    reference = float(np.median(smooth[:window]))
    # The largest stable rate: the last whose smoothed loss is not clearly above the
    # yardstick. The last, not the one before the first rise: a single noisy batch can lift
    # the loss for a step long before the rate is too high, and the test ends soon after the
    # loss really diverges.
    stable = np.nonzero(smooth <= reference * (1 + RISE_TOLERANCE))[0]
    result.largest_stable = float(lrs[int(stable[-1]) if stable.size else 0])
    result.descended = bool(smooth[window:].min() < reference * (1 - MIN_DESCENT))
    if result.descended:
        # Up to the minimum of the smoothed loss: past it the loss is diverging.
        stop = window + int(np.argmin(smooth[window:])) + 1
        # The fall over a decade of rates, not between neighbouring steps: a one-step slope
        # finds the noise of single batches (a GRU's finder once pointed at 2e-6 that way).
        log_lr = np.log10(lrs)
        decade = max(1, int(round(1 / max(log_lr[1] - log_lr[0], 1e-12))))
        first = window - 1
        if stop - first > decade:
            falls = smooth[first + decade:stop] - smooth[first:stop - decade]
            if falls.min() < 0:
                result.steepest = float(lrs[first + int(np.argmin(falls)) + decade // 2])
        elif stop - first >= 3:
            slopes = np.gradient(smooth[first:stop], log_lr[first:stop])
            if slopes.min() < 0:
                result.steepest = float(lrs[first + int(np.argmin(slopes))])
        # The steepest point can sit on a small early dip; never suggest more than a tenth of
        # the rate at which the loss was lowest, the usual safety margin of the range test.
        candidates = [v for v in (result.steepest, lrs[stop - 1] / 10) if v]
        suggestion = float(min(candidates))
    else:
        suggestion = result.largest_stable / 10
    # Never above the largest stable rate, never below the range the test explored (nothing
    # was learned about smaller rates).
    result.suggestion = float(max(min(suggestion, result.largest_stable), lrs[0]))


def _divide_by_three(module, config, loss_fn, batches, end_lr, probe_steps) -> LRFinderResult:
    result = LRFinderResult("divide")
    fixed = [next(batches) for _ in range(probe_steps)]
    lr = end_lr
    while lr > 1e-7:
        trial = copy.deepcopy(module).train()
        optimizer = _optimizer(trial, config, lr)
        with torch.no_grad():
            first = float(loss_fn(trial(fixed[0][0]), fixed[0][1]))
        losses = [_step(trial, optimizer, loss_fn, xb, yb) for xb, yb in fixed]
        tail = float(np.mean(losses[-max(1, probe_steps // 5):]))
        ratio = tail / first if math.isfinite(tail) and first > 0 else math.inf
        result.lrs.append(lr)
        result.losses.append(ratio)
        if math.isfinite(ratio) and ratio <= STABLE_RATIO:
            # The first rate that trains is at the edge of stability, where adaptive optimisers
            # still oscillate (measured on magic with Adam: 0.37 "trains", 0.12 reaches 0.77
            # accuracy against 0.87 at 0.03): back off a decade, as the range test does.
            result.largest_stable = lr
            result.suggestion = lr / 10
            return result
        lr /= 3
    raise InvalidParameterError("training diverged at every learning rate down to 1e-7; check the data "
                                "(scaling, target) and the architecture")


__all__ = ["LRFinderResult", "find_on_prepared", "lr_find", "resolve_learning_rate"]
