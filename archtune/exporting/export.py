"""`export`: a fitted network, or a bundle directory, written as one ONNX or TorchScript file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archtune.checks import check_choice
from archtune.errors import BundleError, InvalidParameterError
from archtune.files import atomic_write_bytes, json_bytes

FORMATS = ("onnx", "torchscript")


@dataclass(frozen=True)
class ExportedModel:
    """What `export` wrote.

    Attributes
    ----------
    path : Path
        The ONNX or TorchScript file.
    format : {"onnx", "torchscript"}
    inputs : list of (name, description)
        What the file takes, in order.
    outputs : list of (name, description)
        What it gives.
    description_path : Path or None
        TorchScript: the JSON beside the file that says which column is where and each
        category's code (the same JSON is inside the file as ``archtune.json``).
    notes : list of str
        What the caller should know (e.g. that a run's ensemble was not exported).
    """

    path: Path
    format: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    description_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human-readable summary, one item per line (what ``archtune export`` prints)."""
        out = [f"wrote {self.path} ({self.format})", "inputs:"]
        out += [f"  {name}: {text}" for name, text in self.inputs]
        out.append("outputs:")
        out += [f"  {name}: {text}" for name, text in self.outputs]
        if self.description_path is not None:
            out.append(f"description: {self.description_path} (column order and category codes)")
        return out + [f"note: {note}" for note in self.notes]


def export(model: Any, path: str | os.PathLike, format: str = "onnx", include_preprocessing: bool = True,
           best_network: bool = False) -> ExportedModel:
    """Write a fitted network as an ONNX or TorchScript file that predicts outside Python.

    Parameters
    ----------
    model : NeuralClassifier, NeuralRegressor, AutoNeural* or str or path-like
        A fitted estimator, or a model bundle directory (`archtune.save`, ``archtune fit
        --out``, ``archtune tune --out``); a bundle's weights and description are checked
        against their SHA-256 first (`archtune.bundles.network.load`).
    path : str or path-like
        The file to write (replaced atomically; nothing is written when the export fails).
    format : {"onnx", "torchscript"}
        ONNX (needs the optional extra: ``pip install 'archtune[onnx]'``), or TorchScript
        (a traced ``torch.jit`` module, loadable from C++ with ``torch::jit::load``).
    include_preprocessing : bool, default True
        True: raw columns in, predictions out. ONNX takes one input per column, named as the
        column, of shape [rows]: float64 for a numeric column (NaN for missing), string for
        a categorical one (the level as archtune names it: ``str(value)``, integers without
        ".0", booleans "True"/"False"; a level not seen in fit, or a missing value, is code
        0 as in `predict`). TorchScript takes a float64 matrix of the numeric columns and an
        int64 matrix of category codes, described in ``<path>.json``
        (`archtune.exporting.torchscript.encode` builds them from a table). Outputs: "label"
        [rows] and "probabilities" float64 [rows, n_classes] (TorchScript: the label's index
        into "classes") for a classifier; "prediction" float64 in the target's units, clipped
        as the model clips, for a regressor. False: ``model.module_`` alone, taking the
        float32 matrix of ``model.preprocessor_.transform`` and giving logits or standardised
        values.
    best_network : bool, default False
        A search whose predictions come from an ensemble (an AutoNeural* with ``ensemble_``,
        or a run directory with an ``ensemble/`` bundle) is refused unless this is True; then
        its best network is exported (what ``archtune predict RUN --best-network`` uses).

    Returns
    -------
    ExportedModel
        The file's path, inputs and outputs.

    Raises
    ------
    BundleError
        The bundle is missing, corrupted or changed since it was saved (weights or
        description); nothing is written.
    InvalidParameterError
        An unknown format; an ensemble (its members are exported one by one: an ensemble
        bundle's networks are its ``member-<i>`` bundles); with ``include_preprocessing``,
        a date, text or image-path column or an image or series array (named, with the
        advice to export the network alone); a network torch cannot export.
    ImportError
        format="onnx" without onnx and onnxscript installed (the message names the extra).

    Notes
    -----
    The preprocessing is `archtune.exporting.serving.ServingModule`: the fitted
    `Preprocessor`'s steps in float64 torch operations (missing-value indicators, medians,
    standard / robust with its smooth clip / quantile / max-abs scaling, one-hot columns and
    embedding codes), the network in float32, and the output (probabilities and label, or
    de-standardised, clipped values). ONNX adds ai.onnx.ml LabelEncoder nodes for the
    strings (`archtune.exporting.onnx_graph`). Predictions equal `predict_proba` /
    `predict` up to float32 rounding in the network (bench/export.py measures it).
    """
    check_choice("format", format, FORMATS)
    network, notes = resolve(model, best_network)
    if format == "onnx":
        content, inputs, outputs = _onnx(network, include_preprocessing)
        description, description_path = None, None
    else:
        from archtune.exporting.torchscript import trace

        content, description = trace(network, include_preprocessing)
        inputs = [(spec["name"], _matrix_text(spec)) for spec in description["inputs"]]
        outputs = [(name, f"{dtype} {shape}") for name, dtype, shape in description["outputs"]]
        if description.get("classes") is not None:  # a multi-label indicator's columns are the classes
            what = "index into" if description["outputs"][0][0] == "label_index" else "columns:"
            outputs[0] = (outputs[0][0], outputs[0][1] + f", {what} classes {description['classes']}")
    path = Path(path)
    if path.is_dir():
        raise InvalidParameterError(f"path {str(path)!r} is a directory; give the file to write, e.g. model.{format}")
    if format == "torchscript":
        description_path = path.with_name(path.name + ".json")
        atomic_write_bytes(description_path, json_bytes(description, indent=1))
    atomic_write_bytes(path, content)
    return ExportedModel(path, format, inputs, outputs, description_path, notes)


def _matrix_text(spec: dict[str, Any]) -> str:
    text = f"{spec['dtype']} {spec['shape']}"
    if "columns" in spec:
        text += f", columns {spec['columns']}"
    return text + (", NaN = missing" if spec.get("missing") else "") + (
        ", codes per <path>.json (0 = missing or unknown)" if "levels" in spec else "")


def _onnx(network: Any, include_preprocessing: bool) -> tuple[bytes, list[tuple[str, str]], list[tuple[str, str]]]:
    from archtune.exporting.onnx_graph import full_graph, network_graph

    if not include_preprocessing:
        graph = network_graph(network)
        n_out = network.module_.head.out_features
        return (graph.SerializeToString(), [("X", f"float32 [rows, {network.input_spec_.n_columns}], "
                                                  "model.preprocessor_.transform(X)")],
                [("outputs", f"float32 [rows, {n_out}], logits (classifier) or standardised values (regressor)")])
    graph, sig = full_graph(network)
    inputs = [(value.name, "float64 [rows], NaN = missing" if value.name not in sig.categorical else
               f"string [rows], {len(sig.categorical[value.name])} levels (others and missing: unknown)")
              for value in graph.graph.input]
    return graph.SerializeToString(), inputs, [(name, f"{dtype} {shape}") for name, dtype, shape in sig.outputs]


def resolve(model: Any, best_network: bool = False) -> tuple[Any, list[str]]:
    """The fitted NeuralClassifier or NeuralRegressor to export, and notes for the caller.

    Raises
    ------
    BundleError
        A bundle directory that does not load (checksums included).
    InvalidParameterError
        An ensemble, a search that predicts with one (unless ``best_network``), or anything
        that is not a fitted archtune network.
    """
    from archtune.ensemble.model import Ensemble
    from archtune.estimators import ESTIMATORS

    if isinstance(model, (str, os.PathLike)):
        return _from_directory(Path(model), best_network)
    if isinstance(model, Ensemble):
        raise InvalidParameterError(f"model is an ensemble ({model.summary()}), which cannot be exported as one "
                                    "network; export its network members one by one (ensemble.members[i].model)")
    if hasattr(model, "best_estimator_") or type(model).__name__.startswith("AutoNeural"):
        if not hasattr(model, "best_estimator_"):
            raise InvalidParameterError(f"model: this {type(model).__name__} is not fitted; call fit first")
        final = getattr(model, "final_estimator_", model.best_estimator_)
        if final is not model.best_estimator_ and not best_network:
            raise InvalidParameterError(
                f"model: this {type(model).__name__} predicts with an ensemble ({final.summary()}), "
                "which cannot be exported as one network; pass best_network=True to export its best network "
                "(model.best_estimator_), whose predictions differ from the ensemble's")
        model = model.best_estimator_
    if type(model).__name__ not in ESTIMATORS:
        raise InvalidParameterError(f"model must be a fitted NeuralClassifier or NeuralRegressor, an AutoNeural* "
                                    f"search, or a bundle directory; got {type(model).__name__}")
    if not hasattr(model, "module_"):
        raise InvalidParameterError(f"model: this {type(model).__name__} is not fitted; call fit first")
    return model, []


def _from_directory(directory: Path, best_network: bool) -> tuple[Any, list[str]]:
    from archtune.bundles.ensemble import is_ensemble_bundle, load_ensemble
    from archtune.bundles.network import load

    if is_ensemble_bundle(directory):
        ensemble = load_ensemble(directory)  # checked like any bundle, so that a broken one says so
        networks = [f"{directory / f'member-{i}'}" for i, m in enumerate(ensemble.members) if m.kind == "network"]
        raise InvalidParameterError(
            f"{directory} is an ensemble bundle ({ensemble.summary()}), which cannot be exported as one network; "
            + (f"export its networks one by one ({', '.join(networks[:3])}{' ...' if len(networks) > 3 else ''}) "
               "or the run's best network (the run directory, with --best-network)" if networks
               else "it has no network member"))
    from archtune.bundles.paths import check_path
    from archtune.bundles.search import final_ensemble_dir

    check_path(directory, "export")  # a pretraining bundle, an exported file, ...: named, with what takes it
    try:
        ensemble_dir = final_ensemble_dir(directory)
    except BundleError:
        if not best_network:
            raise
        ensemble_dir = None  # the best network is asked for: its ensemble need not be readable
    if ensemble_dir is not None and not best_network:
        raise InvalidParameterError(
            f"{directory}: this run predicts with its ensemble ({ensemble_dir}), which cannot be exported as one "
            f"network; pass best_network=True (archtune export --best-network) to export the run's best network, "
            f"whose predictions are those of `archtune predict {directory} --best-network`")
    try:
        model = load(directory)
    except BundleError as exc:
        raise BundleError(f"refusing to export: {exc}") from None
    notes = [f"the run's ensemble ({ensemble_dir}) was not exported; this file is the best network alone "
             f"(`archtune predict {directory} --best-network`)"] if ensemble_dir is not None else []
    return model, notes


__all__ = ["ExportedModel", "FORMATS", "export", "resolve"]
