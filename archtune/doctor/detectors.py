"""Detectors of training problems: each reads the `Evidence` and returns findings.

Thresholds are module constants, each with the reason for its value. They were set on
networks built to have each problem and on healthy default networks trained on the shared
datasets (magic, adult, house_16H, cpu_act), which must stay silent; tests/test_doctor.py
checks both sides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archtune.doctor.evidence import Evidence
from archtune.doctor.findings import Finding

# Gradient RMS of the first layer over the output layer's. Healthy ReLU/He networks sit
# between 0.05 and 5; 20 sigmoid layers reach 1e-9.
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
# A step whose gradient RMS (over all layers) is this many times the early steps' median.
GRADIENT_GROWTH = 1e3
# A step loss this many times the first step's: with Adam and kin a too-high rate makes the
# loss jump (x16-x40 at learning_rate=5 on magic) long before anything reaches inf. Healthy
# default networks on the shared datasets stay below x1.5.
LOSS_EXPLOSION = 10.0
DEAD_SHARE = 0.5  # a layer with at least half its ReLU units never active
SATURATED_SHARE = 0.25  # a quarter of a sigmoid/tanh layer's pre-activations beyond +-4
# Update-to-weight ratio per step; the rule of thumb is about 1e-3, Adam at its default rate
# gives about 1e-2 on fresh layers. Two orders of magnitude out either way is a problem.
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 0.1
OSCILLATION_RISE = 0.1  # an epoch whose loss rose by 10% or more, then fell: a zig-zag
OSCILLATION_RISES = 3  # healthy default runs show none
OSCILLATION_RANGE = 0.05
OVERFIT_RISE = 0.1  # validation loss 10% above its minimum ...
OVERFIT_TRAIN_FALL = 0.1  # ... while the training loss fell another 10% below where it was then
UNDERFIT_SHARE = 0.8  # best losses still at 80% of a constant prediction's
VAL_BELOW_RATIO = 0.8  # validation loss under 80% of training loss over the last half
DUPLICATE_SHARE = 0.5  # half of a layer's units are copies of another unit
# A fit from a trained network (init_from) whose validation score (accuracy or R^2) is more
# than this below the same estimator's from scratch on the same validation rows: the source's
# weights cost more than they gave. Set on bench/transfer_defaults.py's 125 table fits from a
# source (5 pairs x 5 seeds x 5 ways to fine-tune, 26 validation rows each, where one row is
# 0.038): at 0.05 it fired on 23, 17 of which lost more than a point to scratch on the test
# rows (the other 6 gained at most 4.1 points); at 0.02 (any one row) on 41, only 22 of which
# lost; at 0.08 on 7 (6 lost), missing 34 of the 40 fits that lost more than a point. At 0.05
# it misses 23 of those 40: a small validation split cannot see a small loss, and the check
# speaks when the split can.
TRANSFER_SCRATCH_MARGIN = 0.05


# Problems that by themselves stop a network from learning: an underfitting finding beside
# one of them is its consequence.
ROOT_CAUSES = ("vanishing_gradients", "exploding_gradients", "dead_units", "symmetry")


def run_all(evidence: Evidence, checked: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for name, detector in DETECTORS:
        result = detector(evidence)
        if result is None:  # not enough evidence to decide
            continue
        checked.append(name)
        findings += result
    causes = [f.code for f in findings if f.severity == "error" and f.code in ROOT_CAUSES]
    for f in findings:
        if f.code == "underfitting" and causes:
            f.advice.insert(0, f"fix {' and '.join(causes)} first: a network that cannot pass gradients "
                               "learns little whatever its size")
    return findings


def _layer_medians(rows: list[list[float]]) -> np.ndarray:
    return np.median(np.asarray(rows, dtype=float), axis=0)


def _early(rows: list[list[float]], evidence: Evidence) -> list[list[float]]:
    """The first epoch's steps (or all probe batches): gradient flow at the start decides
    whether a network can learn at all."""
    record = evidence.record
    n = record.steps_per_epoch if record is not None and record.steps_per_epoch else len(rows)
    finite = [r for r in rows[:max(1, n)] if all(math.isfinite(v) for v in r)]
    return finite


def vanishing_gradients(ev: Evidence) -> list[Finding] | None:
    # A fine-tuning whose new output layer starts at zero passes the body no gradient at first
    # (with 260 rows the whole first epoch is that one step): the start says nothing of depth.
    if not ev.grad_rms or len(ev.layers) < 3 or getattr(ev, "zero_head", False):
        return None
    early = _early(ev.grad_rms, ev)
    if not early:
        return []
    medians = _layer_medians(early)
    first, last = medians[0], medians[-1]
    if last <= 0:
        return []
    ratio = first / last
    if ratio >= VANISHING_RATIO:
        return []
    evidence = {"first_to_last_ratio": float(ratio), "layers": ev.layers,
                "gradient_rms": [float(v) for v in medians]}
    depth = len(ev.layers) - 1
    advice = ["use a ReLU-family activation with He initialisation (activation='relu' or 'leaky_relu', "
              "initializer='auto')" if ev.params.get("activation") in ("sigmoid", "tanh", "softplus")
              else "keep initializer='auto' (He for the ReLU family, Glorot for sigmoid/tanh)",
              "add batch normalisation (norm='batch')",
              "add skip connections (arch='resnet')",
              f"use fewer layers (now {depth})"]
    return [Finding("vanishing_gradients", "error" if ratio < VANISHING_RATIO**2 else "warning",
                    f"the first layer's gradient is {ratio:.1e} of the output layer's: the early layers "
                    "barely learn", evidence, advice)]


def exploding_gradients(ev: Evidence) -> list[Finding] | None:
    if not ev.grad_rms and ev.diverged is None:
        return None
    reasons: list[str] = []
    evidence: dict[str, Any] = {}
    record = ev.record
    if ev.diverged is not None:
        reasons.append(ev.diverged.split(";")[0])
        evidence["diverged"] = ev.diverged
    if record is not None and record.nonfinite_step is not None:
        reasons.append(f"a NaN/inf loss or gradient at step {record.nonfinite_step}")
        evidence["nonfinite_step"] = record.nonfinite_step
    if record is not None and record.losses and math.isfinite(record.losses[0]) and record.losses[0] > 0:
        finite = [v for v in record.losses if math.isfinite(v)]
        peak = max(finite) if finite else math.inf
        if peak > LOSS_EXPLOSION * record.losses[0]:
            step = record.losses.index(peak) if finite else 0
            reasons.append(f"the training loss jumped to {peak / record.losses[0]:.0f}x its start (step {step})")
            evidence.update(first_step_loss=record.losses[0], peak_step_loss=peak)
    if ev.grad_rms:
        totals = np.asarray([math.sqrt(sum(v * v for v in r)) if all(math.isfinite(v) for v in r) else math.inf
                             for r in ev.grad_rms])
        start = float(np.median(totals[: min(10, len(totals))]))
        peak = float(totals.max())
        evidence.update(start_gradient_rms=start, peak_gradient_rms=peak)
        if start > 0 and math.isfinite(peak) and peak > GRADIENT_GROWTH * start:
            reasons.append(f"the gradient grew {peak / start:.0f}x from its start")
        early = _early(ev.grad_rms, ev)
        if len(ev.layers) >= 3 and early:
            medians = _layer_medians(early)
            if medians[-1] > 0 and medians[0] / medians[-1] > EXPLODING_RATIO:
                reasons.append(f"the first layer's gradient is {medians[0] / medians[-1]:.0f}x the output layer's")
                evidence["first_to_last_ratio"] = float(medians[0] / medians[-1])
    if not reasons:
        return []
    lr = ev.params.get("learning_rate")
    advice = [f"lower the learning rate (now {lr}); archtune.lr_find or learning_rate='auto' picks one",
              "clip gradients (gradient_clip=1.0)",
              "add batch normalisation (norm='batch')"]
    if ev.params.get("scaling") is None:
        advice.append("scale the features (scaling='standard')")
    return [Finding("exploding_gradients", "error", "; ".join(reasons), evidence, advice)]


def dead_units(ev: Evidence) -> list[Finding] | None:
    layers = [s for s in ev.final_units if s.dead is not None]
    if not layers:
        return None
    shares = {s.layer: s.dead / s.units for s in layers}
    bad = {name: share for name, share in shares.items() if share >= DEAD_SHARE}
    if not bad:
        return []
    initially = {s.layer: s.dead / s.units for s in ev.initial_units if s.dead is not None}
    from_start = [name for name in bad if initially.get(name, 0) >= DEAD_SHARE]
    worst = max(bad.values())
    where = ", ".join(f"{name}: {share:.0%}" for name, share in bad.items())
    message = f"ReLU units that never activate on the validation rows ({where})"
    if from_start:
        message += "; already dead at initialisation"
    advice = ["use a ReLU variant that keeps a gradient for negative inputs (activation='leaky_relu', "
              "'elu' or 'selu')",
              "initialise with He and zero biases (initializer='auto')",
              f"lower the learning rate (now {ev.params.get('learning_rate')}): large steps push biases negative",
              "add batch normalisation (norm='batch') to keep pre-activations centred"]
    return [Finding("dead_units", "error" if worst >= 0.9 else "warning", message,
                    {"dead_share": shares, "dead_share_at_init": initially}, advice)]


def saturation(ev: Evidence) -> list[Finding] | None:
    final = [s for s in ev.final_units if s.saturated_share is not None]
    initial = [s for s in ev.initial_units if s.saturated_share is not None]
    if not final and not initial:
        return None
    shares = {s.layer: max(s.saturated_share, *(i.saturated_share for i in initial if i.layer == s.layer))
              for s in final} or {s.layer: s.saturated_share for s in initial}
    bad = {k: v for k, v in shares.items() if v >= SATURATED_SHARE}
    if not bad:
        return []
    where = ", ".join(f"{name}: {share:.0%}" for name, share in bad.items())
    advice = ["keep initializer='auto' (Glorot for sigmoid/tanh) so pre-activations start near 0",
              "scale the features (scaling='standard')",
              "add batch normalisation (norm='batch')",
              "use a ReLU-family activation (activation='relu') in hidden layers"]
    return [Finding("saturation", "warning", f"sigmoid/tanh pre-activations beyond +-{4} ({where} of values): "
                    "saturated units pass almost no gradient", {"saturated_share": shares}, advice)]


def update_ratio(ev: Evidence) -> list[Finding] | None:
    record = ev.record
    if record is None or len(record.update_ratios) < 2:
        return None
    ratios = np.asarray(record.update_ratios, dtype=float)
    keep = np.isfinite(ratios).all(axis=1)
    ratios, steps = ratios[keep], np.asarray(record.update_steps)[keep]
    if not len(ratios):
        return []
    per_step = np.median(ratios, axis=1)  # the typical layer of each sampled step
    # Too low: typical over the first third (later the schedule decays the rate on purpose).
    # Too high: the worst step of the first epoch (a too-high rate does its damage at once and
    # can leave dead units that update no more).
    median = float(np.median(per_step[: max(2, len(per_step) // 3)]))
    first_epoch = per_step[steps < max(1, record.steps_per_epoch)]
    worst = float(first_epoch.max()) if len(first_epoch) else median
    evidence = {"median_update_ratio": median, "max_first_epoch_update_ratio": worst,
                "learning_rate": record.learning_rate}
    if worst > UPDATE_RATIO_HIGH:
        return [Finding("update_ratio", "warning", f"a step in the first epoch changed the weights by {worst:.2g} "
                        "of their size (about 1e-3 is healthy): the learning rate is too high", evidence,
                        [f"lower the learning rate (now {record.learning_rate:g}); archtune.lr_find or "
                         "learning_rate='auto' picks one", "add warm-up (warmup_epochs=2)"])]
    if median < UPDATE_RATIO_LOW:
        return [Finding("update_ratio", "warning", f"each step changes the weights by {median:.1e} of their size "
                        "(about 1e-3 is healthy): the learning rate is too low", evidence,
                        [f"raise the learning rate (now {record.learning_rate:g}); archtune.lr_find or "
                         "learning_rate='auto' picks one"])]
    return []


def _zigzags(loss: np.ndarray) -> list[int]:
    """Epochs (1-based) whose loss rose by OSCILLATION_RISE or more and fell again the next
    epoch: a zig-zag. A steady rise (overfitting's validation curve) is not counted, nor a
    rise too small to matter: under OSCILLATION_RANGE of the way the loss has come down (near
    zero, a training loss of 0.05 moves by 10% with every dropout draw: breast_cancer)."""
    change = loss[1:] / np.maximum(loss[:-1], 1e-12) - 1
    rise = loss[1:] - loss[:-1]
    floor = OSCILLATION_RANGE * max(float(loss.max() - loss.min()), 0.0)
    return [i + 2 for i in range(len(change) - 1)
            if change[i] >= OSCILLATION_RISE and rise[i] >= floor and change[i + 1] < 0]


def _epoch_numbers(history: Any) -> np.ndarray:
    """The epoch each row of the history is (its ``epoch`` column: after a pretraining the
    supervised epochs are numbered on), else 1, 2, ..."""
    if "epoch" in history:
        return history["epoch"].to_numpy(dtype=int)
    return np.arange(1, len(history) + 1)


def loss_oscillation(ev: Evidence) -> list[Finding] | None:
    # Epoch losses, not step losses: single mini-batches of a heavy-tailed regression target
    # spike 5x their neighbours in healthy runs (house_16H), so step spikes prove nothing.
    # Only the later half of the run counts: early on, a healthy validation loss can bounce
    # while warm-up ends (house_16H's default network: 0.40 -> 1.47 -> 0.48 by epoch 7), and
    # a decaying rate settles it; an oscillation that persists is what a too-high rate does.
    history = ev.history
    if "train_loss" not in history or len(history) < 6 or ev.diverged is not None:
        return None
    later = len(history) // 2 + 1
    worst: tuple[str, list[int]] = ("training", [])
    for column, label in (("train_loss", "training"), ("val_loss", "validation")):
        if column in history:
            loss = history[column].to_numpy(dtype=float)
            zigzags = [e for e in _zigzags(loss) if e >= later] if np.isfinite(loss).all() else []
            if len(zigzags) > len(worst[1]):
                worst = (label, zigzags)
    label, positions = worst
    if len(positions) < OSCILLATION_RISES:
        return []
    numbers = _epoch_numbers(history)
    epochs = [int(numbers[e - 1]) for e in positions]
    return [Finding("loss_oscillation", "warning",
                    f"the {label} loss zig-zags: in the later half of training it rose by 10% or more and fell "
                    f"back {len(epochs)} times (epochs {', '.join(map(str, epochs[:8]))} of {int(numbers[-1])}): "
                    "steps overshoot",
                    {"curve": label, "zigzag_epochs": epochs},
                    [f"lower the learning rate (now {ev.params.get('learning_rate')})",
                     "use a decaying schedule (lr_schedule='cosine' or 'plateau')",
                     "use a larger batch_size", "clip gradients (gradient_clip=1.0)"])]


def symmetry(ev: Evidence) -> list[Finding] | None:
    reports = ev.initial_duplicates or ev.final_duplicates
    if not reports:
        return None
    bad = {}
    for stage, layers in (("initialisation", ev.initial_duplicates), ("end", ev.final_duplicates)):
        for name, units, copies in layers:
            if units >= 2 and copies / units >= DUPLICATE_SHARE:
                bad.setdefault(name, (stage, copies, units))
    if not bad:
        return []
    where = ", ".join(f"{name}: {copies} of {units} units at {stage}" for name, (stage, copies, units) in bad.items())
    return [Finding("symmetry", "error", f"units with identical weights ({where}): they compute the same "
                    "function, get the same gradient and never differentiate",
                    {"duplicates": {k: {"stage": s, "copies": c, "units": u} for k, (s, c, u) in bad.items()}},
                    ["initialise randomly (initializer='auto': He for the ReLU family, Glorot for sigmoid/tanh, "
                     "LeCun for SELU); a constant initialisation never breaks the symmetry"])]


def _curves(ev: Evidence) -> tuple[np.ndarray, np.ndarray] | None:
    h = ev.history
    if "val_loss" not in h or "train_loss" not in h or len(h) < 3 or ev.diverged is not None:
        return None
    train, val = h["train_loss"].to_numpy(dtype=float), h["val_loss"].to_numpy(dtype=float)
    if not (np.isfinite(train).all() and np.isfinite(val).all()):
        return None
    return train, val


def overfitting(ev: Evidence) -> list[Finding] | None:
    curves = _curves(ev)
    if curves is None:
        return None
    train, val = curves
    best = int(np.argmin(val))
    rise = (val[-1] - val[best]) / max(abs(val[best]), 1e-12)
    fall = (train[best] - train[-1]) / max(abs(train[best]), 1e-12)
    if rise < OVERFIT_RISE or fall < OVERFIT_TRAIN_FALL:
        return []
    epoch = int(_epoch_numbers(ev.history)[best])
    p = ev.params
    stop = (f"stop at epoch {epoch}: early_stopping=True (on) keeps that epoch's weights"
            if p.get("early_stopping", True) else f"stop at epoch {epoch} (early_stopping=True)")
    advice = [stop, f"raise dropout (now {p.get('dropout')}) to 0.2-0.5",
              f"add weight decay or L2 (weight_decay now {p.get('weight_decay')}, l2 {p.get('l2')})",
              f"use a smaller network (now {p.get('hidden_layers')} x {p.get('units')} units)",
              "gather more training rows"]
    return [Finding("overfitting", "warning",
                    f"validation loss rose {rise:.0%} from its minimum at epoch {epoch} while the training "
                    f"loss fell another {fall:.0%}",
                    {"best_epoch": epoch, "val_loss_min": float(val[best]), "val_loss_last": float(val[-1]),
                     "train_loss_at_best": float(train[best]), "train_loss_last": float(train[-1])}, advice)]


def underfitting(ev: Evidence) -> list[Finding] | None:
    curves = _curves(ev)
    if curves is None or not ev.constant_loss or ev.constant_loss <= 0:
        return None
    train, val = curves
    share_train, share_val = train.min() / ev.constant_loss, val.min() / ev.constant_loss
    if share_train < UNDERFIT_SHARE or share_val < UNDERFIT_SHARE:
        return []
    p = ev.params
    return [Finding("underfitting", "warning",
                    f"the best training and validation losses are {share_train:.0%} and {share_val:.0%} of a "
                    "constant prediction's: the network has learned little",
                    {"train_loss_min": float(train.min()), "val_loss_min": float(val.min()),
                     "constant_prediction_loss": ev.constant_loss, "epochs": len(train)},
                    [f"more capacity (now {p.get('hidden_layers')} x {p.get('units')} units)",
                     f"less regularisation (dropout {p.get('dropout')}, weight_decay {p.get('weight_decay')}, "
                     f"l1 {p.get('l1')}, l2 {p.get('l2')})",
                     f"a higher learning rate (now {p.get('learning_rate')}; archtune.lr_find)",
                     f"more epochs (this run trained {len(train)}; max_epochs is {p.get('max_epochs')})",
                     "check that the features carry signal: compare with the baselines of archtune tune"])]


def val_below_train(ev: Evidence) -> list[Finding] | None:
    curves = _curves(ev)
    if curves is None:
        return None
    train, val = curves
    half = slice(len(train) // 2, None)
    ratio = float(np.mean(val[half]) / max(np.mean(train[half]), 1e-12))
    if ratio >= VAL_BELOW_RATIO:
        return []
    p = ev.params
    return [Finding("val_below_train", "info",
                    f"validation loss is {ratio:.0%} of the training loss over the last {len(train) - len(train) // 2} "
                    "epochs",
                    {"val_to_train_ratio": ratio},
                    [f"expected with regularisation: dropout ({p.get('dropout')}) and L1/L2 penalties act only "
                     "while training, and the training loss is averaged over an epoch in which the weights improve",
                     f"a small validation set (validation_fraction={p.get('validation_fraction')}) can be easier "
                     "by chance: use a larger one or cross-validation (archtune tune --cv 5)"])]


def transfer_below_scratch(ev: Evidence) -> list[Finding] | None:
    """A fit from ``init_from`` that ends below a scratch fit of the same network on the same
    split (evidence gathered by `archtune.diagnose` only: ``Evidence.transfer``)."""
    reference = ev.transfer
    if reference is None:
        return None
    gap = reference["scratch_score"] - reference["transfer_score"]
    if not gap > TRANSFER_SCRATCH_MARGIN:
        return []
    p = ev.params
    metric = reference["metric"]
    factor = reference.get("fine_tune_lr_factor", 1.0)  # as the fit used it ("auto" resolved)
    advice = []
    if p.get("freeze") is not None or factor < 1.0 or p.get("layer_lr_decay"):
        advice.append(f"fine-tune every layer at the full rate: freeze=None, fine_tune_lr_factor=1.0, "
                      f"layer_lr_decay=None (now freeze={p.get('freeze')!r}, fine_tune_lr_factor={factor:g}, "
                      f"layer_lr_decay={p.get('layer_lr_decay')})")
    advice += ["train from scratch (init_from=None): the source's task may be too far from this one",
               "start from a source trained on a task closer to this one, or on more rows",
               "search how to fine-tune with init_from fixed in the space (freeze, fine_tune_lr_factor)"]
    return [Finding("transfer_below_scratch", "warning",
                    f"the fine-tuned network's validation {metric} is {reference['transfer_score']:.3f}; the same "
                    f"estimator without init_from reaches {reference['scratch_score']:.3f} on the same "
                    f"{reference['val_rows']} validation rows: starting from {reference['source']} did not help",
                    {**reference, "gap": float(gap), "margin": TRANSFER_SCRATCH_MARGIN}, advice)]


DETECTORS = [
    ("vanishing_gradients", vanishing_gradients), ("exploding_gradients", exploding_gradients),
    ("dead_units", dead_units), ("saturation", saturation), ("update_ratio", update_ratio),
    ("loss_oscillation", loss_oscillation), ("symmetry", symmetry), ("overfitting", overfitting),
    ("underfitting", underfitting), ("val_below_train", val_below_train),
    ("transfer_below_scratch", transfer_below_scratch),
]
