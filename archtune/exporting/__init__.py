"""Export a fitted network for serving outside Python: ONNX (with onnxruntime, from any
language) or TorchScript, the preprocessing included so that raw columns go in and
predictions come out.

- serving.py: ServingModule, the fitted preprocessing + network + output as one torch module
- ops.py: numpy.interp and the normal quantile function in exportable torch operations
- onnx_graph.py: the ONNX graph (torch's exporter + LabelEncoder nodes for strings), and
  `onnx_inputs`: a table's rows as the file's inputs
- torchscript.py: the traced module and the JSON that describes its inputs
- export.py: `export`, the public entry point
"""

from typing import Any

from archtune.exporting.export import FORMATS, ExportedModel, export

__all__ = ["ExportedModel", "FORMATS", "export", "onnx_inputs", "torchscript_inputs"]


def __getattr__(name: str) -> Any:
    # Imported on use: onnx_graph and torchscript import torch, the CLI's checks must not.
    if name == "onnx_inputs":
        from archtune.exporting.onnx_graph import onnx_inputs

        return onnx_inputs
    if name == "torchscript_inputs":  # a table's rows as the traced module's inputs
        from archtune.exporting.torchscript import encode

        return encode
    raise AttributeError(f"module 'archtune.exporting' has no attribute {name!r}")
