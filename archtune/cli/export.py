"""``archtune export``: a run's network as an ONNX or TorchScript file for serving."""

from __future__ import annotations

from pathlib import Path

import click

from archtune.cli.group import EXIT_USAGE, cli


@cli.command(epilog="""\b
Examples:
  archtune export runs/bc --format onnx --out bc.onnx
  archtune export runs/bc --format torchscript --out bc.pt      (bc.pt.json describes its inputs)
  archtune export runs/search --best-network --out best.onnx    (a run that saved an ensemble)""")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True,
              help="onnx (run with onnxruntime; needs pip install 'archtune[onnx]') or torchscript (torch.jit).")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True, help="The file to write.")
@click.option("--network-only", is_flag=True,
              help="The network alone, taking the preprocessed matrix (for columns the file cannot preprocess: "
                   "dates, text, image paths).")
@click.option("--best-network", is_flag=True,
              help="Export the run's best network even when the run predicts with an ensemble (saved beside it).")
def export(run: Path, format_: str, out: Path, network_only: bool, best_network: bool) -> None:
    """Write the model saved in RUN as one file that predicts from raw columns.

    The file includes the preprocessing (missing values, scaling, category codes) and the
    output (probabilities and label, or values in the target's units). RUN's checksums are
    verified first: a changed bundle is refused and nothing is written."""
    from archtune.exporting import export as export_model

    try:
        exported = export_model(run, out, format=format_, include_preprocessing=not network_only,
                                best_network=best_network)
    except ImportError as exc:  # the optional extra is missing: one line, as for archtune's own errors
        click.echo(f"archtune: error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    for line in exported.lines():
        click.echo(line)
