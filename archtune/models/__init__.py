"""Model families. Each family is one registered builder; importing this package registers them."""

from archtune.models import cnn  # noqa: F401  (registers "cnn")
from archtune.models import layer_list  # noqa: F401  (registers "layers")
from archtune.models import mlp  # noqa: F401  (registers "mlp" and "resnet")
from archtune.models.registry import InputSpec, TabularNetwork, build_model, list_models, register_model

__all__ = ["InputSpec", "TabularNetwork", "build_model", "list_models", "register_model"]
