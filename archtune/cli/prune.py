"""``archtune prune``: shrink the network a run saved (archtune.shrink)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archtune.cli.common import resolve_image_paths, select_features
from archtune.cli.group import cli
from archtune.errors import DataError, InvalidParameterError, nearest


def _read_rows(data: str, target: str, model: Any) -> tuple[Any, Any, str]:
    """(X, y, source name) of DATA for a loaded model: its feature columns and ``target``."""
    from archtune.data.readers import check_source, load_table, source_name

    check_source(data)
    name = source_name(data)
    frame = load_table(data)
    if target not in frame.columns:
        columns = [str(c) for c in frame.columns]
        raise DataError(f"{name}: no target column {target!r}{nearest(target, columns)}")
    frame = resolve_image_paths(frame, data)
    y = frame[target]
    if y.isna().any():
        raise DataError(f"{name}: target column {target!r} has {int(y.isna().sum())} missing value(s)")
    return select_features(frame.drop(columns=[target]), model, name), y, name


@cli.command(epilog="""\b
Examples:
  archtune prune runs/magic ../shared/datasets/tabular/magic.tsv.gz --target target --out runs/magic-pruned
  archtune prune runs/magic train.csv --target target --max-drop 0.01 --importance magnitude --out runs/small""")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("data")
@click.option("--target", "-t", required=True, help="Name of the target column in DATA.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Directory to save the pruned bundle in (never RUN itself).")
@click.option("--max-drop", type=float, default=0.005, show_default=True,
              help="Largest drop of the validation score (accuracy or R^2) the pruned network may have.")
@click.option("--importance", type=click.Choice(["taylor", "magnitude"]), default="taylor", show_default=True,
              help="How units are ranked: first-order Taylor (the mean absolute activation x gradient) or weight magnitude (L1).")
@click.option("--target-params", type=click.IntRange(min=1), default=None,
              help="Stop once the network has at most this many parameters.")
@click.option("--step", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2, show_default=True,
              help="Share of each layer's units removed per round.")
@click.option("--fine-tune-epochs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Epochs of fine-tuning after each round.")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of DATA's rows held out to measure the score drop (stratified for "
                                      "classification); the rest fine-tunes the network.")
@click.option("--method", type=click.Choice(["structured", "unstructured"]), default="structured",
              show_default=True, help="Remove whole units (smaller layers), or zero the smallest weights "
                                      "(torch.nn.utils.prune: less memory if stored sparse, no faster on a CPU).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def prune(run: Path, data: str, target: str, out: Path, max_drop: float, importance: str, target_params: int | None,
          step: float, fine_tune_epochs: int, holdout: float, method: str, seed: int) -> None:
    """Prune the network saved in RUN (a `fit` or `tune` run, or a bundle) on DATA: remove its
    least important hidden units round by round, fine-tuning after each, while the score on
    held-out rows of DATA drops at most --max-drop. Writes the pruned bundle to --out and the
    rounds to OUT/prune_rounds.csv."""
    from archtune.bundles.ensemble import is_ensemble_bundle

    if out.resolve() == run.resolve():
        raise InvalidParameterError(f"--out {out} is RUN itself: the pruned network is written beside the run, "
                                    "never over it; choose another directory")
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out}: exists and is not a directory")
    if is_ensemble_bundle(run):
        raise InvalidParameterError(f"{run}: is an ensemble bundle; prune takes one network (the run directory "
                                    "holds its best network)")
    from archtune.bundles.network import load, save
    from archtune.files import atomic_write_bytes
    from archtune.shrink.prune import prune as prune_model

    from archtune.bundles.paths import check_path
    from archtune.bundles.search import final_ensemble_dir
    from archtune.errors import BundleError

    check_path(run, "prune")

    try:
        ensemble = final_ensemble_dir(run)
    except BundleError:  # prune reads the network only: its ensemble need not be readable
        ensemble = None
    if ensemble is not None:
        click.echo(f"archtune: note: {run} predicts with an ensemble ({ensemble.name}); prune takes one network, "
                   "so this prunes the run's best network", err=True)
    model = load(run)
    X, y, name = _read_rows(data, target, model)
    click.echo(f"data: {name}: {len(X)} rows ({holdout:.0%} held out to measure the score drop)")
    pruned, report = prune_model(model, X, y, importance=importance, step=step, max_score_drop=max_drop,
                                 target_params=target_params, fine_tune_epochs=fine_tune_epochs,
                                 validation_fraction=holdout, method=method, source=str(run), random_state=seed)
    click.echo(report.table())
    meta = dict(getattr(model, "bundle_metadata_", {}) or {})
    for stale in ("holdout", "validation", "holdout_ensemble", "holdout_network", "final"):  # the unpruned run's
        meta.pop(stale, None)
    before, after = report.rounds.iloc[0], report.rounds.iloc[report.kept_round]
    meta.update(target=target, data=str(data), pruned_from=str(run),
                pruning={"importance": importance, "max_drop": max_drop, "step": step,
                         "fine_tune_epochs": fine_tune_epochs, "kept_round": report.kept_round,
                         "stop_reason": report.stop_reason, "metric": report.metric,
                         "score_before": float(before.score), "score_after": float(after.score)})
    save(pruned, out, metadata=json.loads(json.dumps(meta, default=str)))
    rounds = report.rounds.assign(widths=report.rounds["widths"].map(lambda w: ",".join(map(str, w))),
                                  removed=report.rounds["removed"].map(json.dumps))
    atomic_write_bytes(out / "prune_rounds.csv", rounds.to_csv(index=False).encode())
    click.echo(f"saved the pruned network to {out}: {int(before.n_params):,} -> {int(after.n_params):,} parameters, "
               f"{before.latency_ms:.2f} -> {after.latency_ms:.2f} ms per 1000 rows, {report.metric} "
               f"{before.score:.4f} -> {after.score:.4f} (use: archtune predict {out} DATA)")
