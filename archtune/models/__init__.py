"""Model families. Each family is one registered builder; importing this package registers them."""

from archtune.models import cnn  # noqa: F401  (registers "cnn")
from archtune.models import layer_network  # noqa: F401  (registers "layers")
from archtune.models import mlp  # noqa: F401  (registers "mlp", "resnet", "wide_deep" and "sequence")
from archtune.models import tabm  # noqa: F401  (registers "tabm")
from archtune.models.network import InputSpec, TabularNetwork, build_model, embedding_dim
from archtune.models.registry import Family, get_family, list_models, register_model

__all__ = ["Family", "InputSpec", "TabularNetwork", "build_model", "embedding_dim", "get_family", "list_models",
           "register_model"]
