"""Which transfer defaults help: a network trained on a related task, fine-tuned on few labels
of the target task, against the same estimator from scratch (issue 29, part 5).

Each pair trains a source network once, on every row of the source part; then, for each seed,
draws the labelled target rows, fits the same estimator on them from scratch and from the
source in every variant below, and scores each on the target rows it did not draw.

Pairs (``--pairs``):

    letter          letters A-M -> N-Z (letter.tsv.gz), 260 labelled rows (20 a letter)
    satimage        classes 1, 2, 3 -> 4, 5, 7 (satimage.tsv.gz), 260 labelled rows
    adult           men -> women (adult.tsv.gz, ``sex`` 1 -> 0; the same target), 260 labelled rows
    electricity     the first 80% of the dates -> the last 20% (electricity.csv.gz; the same
                    target), 260 labelled rows
    house_16H       regression: the 80% of areas with the smallest population ``P1`` -> the
                    largest 20% (574_house_16H.tsv.gz), 260 labelled rows
    fashion_mnist   classes 0-4 -> 5-9, 100 images a class (500), as bench/transfer.py
    cifar10         classes 0-4 -> 5-9, 100 images a class (500), as bench/transfer.py

Tables: the source is ``NeuralClassifier(random_state=0)`` (``NeuralRegressor``), the target
fits ``max_epochs=30`` (the issue's letter run). Images: the source is the default CNN for
``--source-epochs`` epochs (4) on every training image of classes 0-4, the target fits 40
epochs. Classification labelled rows are drawn stratified by class; test rows are all the
target rows not drawn (images: every test image of classes 5-9).

Variants (``--variants``): every setting is written out, so the table does not move when
the estimator's defaults do:

    scratch         the same estimator, no ``init_from``
    old default     ``init_from`` with the defaults before issue 29: nothing frozen, copied
                    layers at 0.1 x the rate (``freeze=None, fine_tune_lr_factor=0.1``)
    two-phase       ``freeze="body", freeze_epochs=10, fine_tune_lr_factor=0.1``: the new output
                    layer alone for 10 epochs, then everything at 0.1 x
    full rate       ``freeze=None, fine_tune_lr_factor=1.0``: every layer at the full rate
                    (what the defaults do from a supervised network since issue 29: "auto")
    two-phase full  ``freeze="body", freeze_epochs=10, fine_tune_lr_factor=1.0`` (LP-FT,
                    Kumar et al. 2022: linear probe, then fine-tune everything)
    layer decay     ``freeze=None, fine_tune_lr_factor=1.0, layer_lr_decay=0.8``

The summary counts, for each variant, the pairs where it wins or ties (within a point of the
best mean) and those where it loses more than 3 points to scratch. With ``--doctor`` (the
default for tables) each fit from a source also gets the evidence of the doctor's
``transfer_below_scratch`` check (`archtune.doctor.diagnose.transfer_reference`: the same
estimator without ``init_from``, same seed, so the same validation rows, which is the scratch
arm here), and the summary says how often the check fired and whether the test rows agreed.

Reproduce from the repository root (one torch thread; a busy machine changes times, not
accuracies: a rerun gave the same figures to the last digit). Sources are cached in
/tmp/archtune-bench-transfer-defaults (``--fresh`` retrains them). Times measured 2026-12-06
on the shared 2-core machine beside other jobs::

    .venv/bin/python bench/transfer_defaults.py --pairs letter satimage adult electricity house_16H \\
        --json /tmp/tables.json                    # 5 seeds, ~4 min (3.5 of them the sources)
    .venv/bin/python bench/transfer_defaults.py --pairs fashion_mnist --seeds 0 1 2 --json /tmp/fashion.json  # ~6 min
    .venv/bin/python bench/transfer_defaults.py --pairs cifar10 --seeds 0 1 2 --json /tmp/cifar.json          # ~9 min
    .venv/bin/python bench/transfer_defaults.py --report /tmp/tables.json /tmp/fashion.json /tmp/cifar.json
    # after a self-supervised pretraining (bench/pretrain_labels.py's arms), 0.1x against 1x:
    .venv/bin/python bench/transfer_defaults.py --pretrained adult --seeds 0 1 2 3 4 5 6 7 8 9   # ~2 min
    .venv/bin/python bench/transfer_defaults.py --pretrained fashion_mnist --seeds 0 1 2         # ~6 min
    # the tables at the estimators' default max_epochs=64 (~3 min with the sources cached):
    .venv/bin/python bench/transfer_defaults.py --pairs letter satimage adult electricity house_16H --epochs 64 \\
        --variants scratch "old default" "full rate" "two-phase full" "layer decay" --no-doctor --json /tmp/t64.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import archtune  # noqa: E402
from archtune import NeuralClassifier, NeuralRegressor  # noqa: E402

TABULAR = ROOT.parent / "shared" / "datasets" / "tabular"
CACHE = Path("/tmp/archtune-bench-transfer-defaults")
N_LABELLED = 260
VARIANTS: dict[str, dict[str, Any] | None] = {
    "scratch": None,
    "old default": {"freeze": None, "freeze_epochs": 10, "fine_tune_lr_factor": 0.1, "layer_lr_decay": None},
    "two-phase": {"freeze": "body", "freeze_epochs": 10, "fine_tune_lr_factor": 0.1, "layer_lr_decay": None},
    "full rate": {"freeze": None, "freeze_epochs": 10, "fine_tune_lr_factor": 1.0, "layer_lr_decay": None},
    "two-phase full": {"freeze": "body", "freeze_epochs": 10, "fine_tune_lr_factor": 1.0, "layer_lr_decay": None},
    "layer decay": {"freeze": None, "freeze_epochs": 10, "fine_tune_lr_factor": 1.0, "layer_lr_decay": 0.8},
}
# Within this many points of the best arm's mean a variant ties (about the seed-to-seed
# standard error of a pair's mean over 5 seeds at these sizes).
TIE_POINTS = 1.0
# A loss of more than this many points below scratch's mean on a pair is "large".
LARGE_LOSS_POINTS = 3.0


@dataclass
class Pair:
    """A source task and a target task: ``source`` rows, the target ``pool`` (labelled rows
    are drawn from it), fixed ``test`` rows (None: the pool's rows not drawn)."""

    source: tuple[Any, Any]
    pool: tuple[Any, Any]
    test: tuple[Any, Any] | None
    regression: bool
    image: bool
    n_labelled: int = N_LABELLED
    per_class: int | None = None


def _table(file: str, target: str = "target") -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(TABULAR / file, sep="\t" if ".tsv" in file else ",")
    return frame.drop(columns=target), frame[target]


def _split(X: pd.DataFrame, y: pd.Series, source: np.ndarray, regression: bool = False) -> Pair:
    return Pair((X[source].reset_index(drop=True), y[source].reset_index(drop=True)),
                (X[~source].reset_index(drop=True), y[~source].reset_index(drop=True)), None, regression, False)


def letter() -> Pair:
    X, y = _table("letter.tsv.gz")
    return _split(X, y, (y <= 13).to_numpy())  # 1-13: A-M


def satimage() -> Pair:
    X, y = _table("satimage.tsv.gz")
    return _split(X, y, y.isin([1, 2, 3]).to_numpy())


def adult() -> Pair:
    X, y = _table("adult.tsv.gz")
    return _split(X, y, (X["sex"] == 1).to_numpy())


def electricity() -> Pair:
    X, y = _table("electricity.csv.gz", "Class")
    return _split(X, y, (X["Date"] <= X["Date"].quantile(0.8)).to_numpy())


def house_16H() -> Pair:
    X, y = _table("574_house_16H.tsv.gz")
    return _split(X, np.log1p(y), (X["P1"] <= X["P1"].quantile(0.8)).to_numpy(), regression=True)


def images(dataset: str) -> Pair:
    import importlib.util

    # bench/transfer.py's loaders: Fashion-MNIST from its package, CIFAR-10 from the shared JPEGs.
    spec = importlib.util.spec_from_file_location("bench_transfer", ROOT / "bench" / "transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X, y, X_test, y_test = module.load(dataset)
    test = y_test >= 5
    return Pair((X[y < 5], y[y < 5]), (X[y >= 5], y[y >= 5]), (X_test[test], y_test[test]), False, True,
                per_class=100)


PAIRS: dict[str, Callable[[], Pair]] = {
    "letter": letter, "satimage": satimage, "adult": adult, "electricity": electricity, "house_16H": house_16H,
    "fashion_mnist": lambda: images("fashion_mnist"), "cifar10": lambda: images("cifar10"),
}


def draw(pair: Pair, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the pool of the labelled rows and of the test rows (the rest)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(pair.pool[1])
    n = len(y)
    if pair.per_class is not None:
        labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), pair.per_class, replace=False)
                                   for c in np.unique(y)])
    elif pair.regression:
        labelled = rng.choice(n, pair.n_labelled, replace=False)
    else:  # stratified: each class its share of the labelled rows (largest remainders)
        classes, counts = np.unique(y, return_counts=True)
        share = counts / n * pair.n_labelled
        take = np.floor(share).astype(int)
        take[np.argsort(take - share)[: pair.n_labelled - take.sum()]] += 1
        labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                                   for c, k in zip(classes, take)])
    rng.shuffle(labelled)
    return labelled, np.setdiff1d(np.arange(n), labelled)


def rows(data: Any, idx: np.ndarray) -> Any:
    return data.iloc[idx] if isinstance(data, (pd.DataFrame, pd.Series)) else data[idx]


def estimator(pair: Pair, **params: Any) -> Any:
    cls = NeuralRegressor if pair.regression else NeuralClassifier
    return cls(**({"arch": "cnn"} if pair.image else {}), **params)


def source_bundle(name: str, pair: Pair, source_epochs: int, fresh: bool) -> tuple[Path, dict[str, Any]]:
    """The source network's bundle (trained once, cached) and how it was made."""
    epochs = source_epochs if pair.image else None
    path = CACHE / (f"{name}-source" + ("" if epochs is None else f"-{epochs}ep"))
    info_path = path.with_suffix(".json")
    if path.is_dir() and info_path.is_file() and not fresh:
        return path, json.loads(info_path.read_text())
    X, y = pair.source
    started = time.perf_counter()
    model = estimator(pair, random_state=0, **({} if epochs is None else {"max_epochs": epochs})).fit(X, y)
    seconds = time.perf_counter() - started
    info = {"rows": int(len(y)), "epochs_trained": int(len(model.history_)), "seconds": round(seconds, 1),
            "max_epochs": model.max_epochs}
    archtune.save(model, path)
    info_path.write_text(json.dumps(info))
    return path, info


def val_score(model: Any) -> float:
    """The validation score (accuracy or R^2) of the epoch the fit kept."""
    history = model.history_
    column = "val_r2" if "val_r2" in history else "val_accuracy"
    kept = history[history["epoch"] == model.best_epoch_] if "epoch" in history else history.iloc[
        [model.best_epoch_ - 1]]
    return float(kept[column].iloc[0])


def doctor_reference(model: Any, X: Any, y: Any) -> dict[str, float]:
    """What ``archtune.diagnose(model, X, y)`` compares for ``transfer_below_scratch``: the
    fitted model's validation score and a scratch fit's of the same network, same split."""
    from archtune.doctor.diagnose import transfer_reference
    from archtune.fitting import prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = transfer_reference(model, X, y, prepare(model, X, y))
    return {k: reference[k] for k in ("transfer_score", "scratch_score", "val_rows")}


# --pretrained: bench/pretrain_labels.py's arms (1% of the labels), fine-tuned from one
# self-supervised pretraining at 0.1x and at 1x: what fine_tune_lr_factor="auto" gives a
# pretext source. name -> (pretraining epochs, training rows kept (None: all)).
PRETRAINED = {"adult": (40, None), "fashion_mnist": (3, 20_000)}


def run_pretrained(name: str, seeds: list[int]) -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_pretrain_labels", ROOT / "bench" / "pretrain_labels.py")
    labels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(labels)
    epochs, n_rows = PRETRAINED[name]
    X, y, X_test, y_test, params = labels.load(name, n_rows)
    codes, names = pd.factorize(y, sort=True)
    y_test = pd.Series(y_test).map({n: i for i, n in enumerate(names)}).to_numpy()
    started = time.perf_counter()
    pretrained = archtune.pretrain(X, estimator=NeuralClassifier(random_state=0, **params), pretrain_epochs=epochs)
    print(f"{name}: pretrained ({pretrained.pretext_['name']}) on {len(y)} rows, {epochs} epochs, "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    rows_out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        labelled = np.sort(rng.choice(len(y), max(2, round(0.01 * len(y))), replace=False))
        row: dict[str, Any] = {"seed": seed}
        for arm, extra in (("labels only", {}), ("0.1x", {"init_from": pretrained, "fine_tune_lr_factor": 0.1}),
                           ("1x", {"init_from": pretrained, "fine_tune_lr_factor": 1.0})):
            model = NeuralClassifier(max_epochs=64, random_state=seed, **params, **extra)
            row[arm] = float(model.fit(rows(X, labelled), codes[labelled]).score(X_test, y_test))
        rows_out.append(row)
        print(f"  seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "seed"), flush=True)
    for arm in ("labels only", "0.1x", "1x"):
        values = [r[arm] for r in rows_out]
        print(f"  {arm}: {statistics.mean(values):.4f} +- {statistics.stdev(values) if len(values) > 1 else 0:.4f}")
    return {"labelled": int(len(labelled)), "pretrain_epochs": epochs, "seeds": rows_out}


def run_pair(name: str, seeds: list[int], variants: list[str], args: argparse.Namespace) -> dict[str, Any]:
    pair = PAIRS[name]()
    bundle, info = source_bundle(name, pair, args.source_epochs, args.fresh)
    print(f"{name}: source on {info['rows']} rows, {info['epochs_trained']} epochs, {info['seconds']} s", flush=True)
    epochs = args.image_epochs if pair.image else args.epochs
    results = []
    for seed in seeds:
        labelled, rest = draw(pair, seed)
        X_few, y_few = rows(pair.pool[0], labelled), rows(pair.pool[1], labelled)
        X_test, y_test = pair.test if pair.test is not None else (rows(pair.pool[0], rest), rows(pair.pool[1], rest))
        row: dict[str, Any] = {"seed": seed, "test": {}, "val": {}, "seconds": {}}
        for variant in variants:
            settings = VARIANTS[variant]
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extra = {} if settings is None else {"init_from": str(bundle), **settings}
                model = estimator(pair, max_epochs=epochs, random_state=seed, **extra).fit(X_few, y_few)
                row["test"][variant] = float(model.score(X_test, y_test))
            row["seconds"][variant] = round(time.perf_counter() - started, 1)
            row["val"][variant] = val_score(model)
            if settings is not None and (args.doctor or (args.doctor is None and not pair.image)):
                row.setdefault("doctor", {})[variant] = doctor_reference(model, X_few, y_few)
        results.append(row)
        print(f"  seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row["test"].items()), flush=True)
    return {"source": info, "n_labelled": int(len(labelled)), "n_test": int(len(y_test)), "epochs": epochs,
            "seeds": results}


def report(results: dict[str, dict[str, Any]]) -> None:
    """The markdown tables: mean and per-seed test scores, the verdicts, the doctor's check."""
    variants = [v for v in VARIANTS if all(v in s["test"] for r in results.values() for s in r["seeds"])]
    print("| pair (labelled / test rows) | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    means: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        means[name] = {v: statistics.mean(s["test"][v] for s in r["seeds"]) for v in variants}
        best = max(means[name].values())
        cells = [(f"**{means[name][v]:.4f}**" if 100 * (best - means[name][v]) <= TIE_POINTS
                  else f"{means[name][v]:.4f}") for v in variants]
        print(f"| {name} ({r['n_labelled']} / {r['n_test']}, {len(r['seeds'])} seeds) | " + " | ".join(cells) + " |")
    print("\nPer seed (test score, seeds in order):\n")
    print("| pair | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(" / ".join(f"{s['test'][v]:.3f}" for s in r["seeds"]) for v in variants)
              + " |")
    print(f"\nPer variant: pairs where it wins or ties (within {TIE_POINTS} point of the best mean), pairs "
          f"where it loses more than {LARGE_LOSS_POINTS} points to scratch, mean gain over scratch (points):\n")
    print("| variant | wins or ties | large losses to scratch | mean gain over scratch | worst pair |")
    print("|---|---|---|---|---|")
    for v in variants:
        ties = [n for n in means if 100 * (max(means[n].values()) - means[n][v]) <= TIE_POINTS]
        gains = {n: 100 * (means[n][v] - means[n]["scratch"]) for n in means} if "scratch" in variants else {}
        large = [n for n, g in gains.items() if g < -LARGE_LOSS_POINTS]
        worst = min(gains, key=gains.get) if gains else ""
        print(f"| {v} | {len(ties)} of {len(means)} ({', '.join(ties)}) | {', '.join(large) or 'none'} | "
              f"{statistics.mean(gains.values()):+.1f} | {worst} {gains.get(worst, 0):+.1f} |")
    doctor_check(results, variants)


def doctor_check(results: dict[str, dict[str, Any]], variants: list[str]) -> None:
    """How the doctor's ``transfer_below_scratch`` check did on the fits that recorded its
    evidence: fired or not, against whether the fit scored below the scratch arm on the test
    rows (by more than a point: ``lost``)."""
    from archtune.doctor.detectors import TRANSFER_SCRATCH_MARGIN

    fits = [(name, v, s["doctor"][v], 100 * (s["test"][v] - s["test"]["scratch"]))
            for name, r in results.items() for s in r["seeds"] for v in variants if v in s.get("doctor", {})]
    if not fits or "scratch" not in variants:
        return
    fired = [(n, v, d, g) for n, v, d, g in fits if d["scratch_score"] - d["transfer_score"] > TRANSFER_SCRATCH_MARGIN]
    lost = [f for f in fits if f[3] < -1.0]
    print(f"\nThe doctor's transfer_below_scratch (validation score more than {TRANSFER_SCRATCH_MARGIN} below the "
          f"same estimator's from scratch, same validation rows: {sorted({f[2]['val_rows'] for f in fits})}) on "
          f"{len(fits)} fits from a source: fired on {len(fired)}; of those, "
          f"{sum(g < -1.0 for *_, g in fired)} lost more than a point to the scratch arm on the test rows "
          f"({sum(g < 0 for *_, g in fired)} lost anything); it missed {sum(f not in fired for f in lost)} of the "
          f"{len(lost)} fits that lost more than a point. Fired, by variant: "
          + ", ".join(f"{v} {sum(f[1] == v for f in fired)} of {sum(f[1] == v for f in fits)}"
                      for v in variants if v != "scratch") + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=["letter", "satimage", "adult", "electricity", "house_16H"],
                        choices=list(PAIRS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30, help="max_epochs of the table fits on the labelled rows")
    parser.add_argument("--image-epochs", type=int, default=40, help="max_epochs of the image fits")
    parser.add_argument("--source-epochs", type=int, default=4, help="epochs of the image sources")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="retrain the sources")
    parser.add_argument("--doctor", action=argparse.BooleanOptionalAction, default=None,
                        help="record the doctor's transfer_below_scratch evidence (one more fit per fit from a "
                             "source; default: tables only)")
    parser.add_argument("--json", type=Path, help="write the figures here (merged into the file if it exists)")
    parser.add_argument("--report", nargs="+", type=Path, help="print the tables of these JSON files; run nothing")
    parser.add_argument("--pretrained", nargs="+", choices=list(PRETRAINED),
                        help="instead of the pairs: fine-tune from a self-supervised pretraining at 0.1x and 1x")
    args = parser.parse_args()
    if args.pretrained:
        torch.set_num_threads(args.threads)
        out = {name: run_pretrained(name, args.seeds) for name in args.pretrained}
        if args.json:
            args.json.write_text(json.dumps({"pretrained": out, "args": vars(args)}, indent=2, default=str))
        return
    if args.report:
        merged: dict[str, Any] = {}
        for path in args.report:
            merged.update(json.loads(path.read_text())["results"])
        report(merged)
        return
    torch.set_num_threads(args.threads)
    CACHE.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.json and args.json.is_file():
        results = json.loads(args.json.read_text())["results"]
    for name in args.pairs:
        results[name] = run_pair(name, args.seeds, args.variants, args)
        if args.json:
            args.json.write_text(json.dumps({"results": results, "args": vars(args)}, indent=2, default=str))
    print()
    report({name: results[name] for name in args.pairs})


if __name__ == "__main__":
    main()
