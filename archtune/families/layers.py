"""A declared layer list, Keras-style (the layers: archtune/models/layer_list.py; checked and
compiled with shape inference by archtune/models/layer_compile.py)."""

from __future__ import annotations

from typing import Any

from archtune.families.spec import FamilyParam, FamilySpec


def check_layer_list(layers: Any) -> tuple:
    """The layer list as checked layer objects (their JSON form converted); () for None."""
    if layers is None or (isinstance(layers, (list, tuple)) and not layers):
        return ()
    # Layer objects are torch modules' recipes: read only when a list is given.
    from archtune.models.layer_compile import check_layers

    return check_layers(layers)


SPEC = FamilySpec(
    "layers",
    params=(FamilyParam("layers", None, check_layer_list,
                        "list, optional\narch=\"layers\": the network as a list of layers (archtune.layers: Dense, "
                        "Conv2D,\nLSTM, ...) or of their JSON form ({\"type\": \"Dense\", \"units\": 16}); each "
                        "layer's shape\nis inferred from the one before, and the output layer is added."),),
    uses=("layers",),
    where_used="it applies to arch='layers'",
)

__all__ = ["SPEC", "check_layer_list"]
