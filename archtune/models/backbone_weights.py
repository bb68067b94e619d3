"""Pretrained weights of an image backbone, read from a local file the user names.

``backbone_weights`` is a file holding torchvision's state dict of the backbone: either
``.safetensors`` (read by safetensors, which holds tensors only) or a torch state dict
``.pth`` / ``.pt`` read with ``torch.load(..., weights_only=True)`` (a restricted unpickler:
a pickle that would import or call anything but tensors and containers is refused, and
nothing in it runs). Nothing is ever downloaded.

`load_backbone_weights` is called by ``fitting.train`` right after the network is built, and
by nothing else: a saved bundle holds the trained weights and rebuilds the network from its
``model_config`` without reading the file again (it need not exist any more).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archtune.config_groups import BACKBONE_WEIGHT_SUFFIXES, check_weights_path
from archtune.errors import BundleError, InvalidParameterError
from archtune.models.backbones import BACKBONES, Backbone, backbone_class

if TYPE_CHECKING:
    from archtune.config import ModelConfig
    from archtune.config_groups import ConvConfig

WEIGHT_SUFFIXES = BACKBONE_WEIGHT_SUFFIXES
# The file names of torchvision's ImageNet weights (download.pytorch.org/models/<name>).
WEIGHT_FILES = {"resnet18": "resnet18-f37072fd.pth", "mobilenet_v3_small": "mobilenet_v3_small-047dcff4.pth"}
WEIGHTS_ENUMS = {"resnet18": "ResNet18_Weights", "mobilenet_v3_small": "MobileNet_V3_Small_Weights"}
# torchvision's classifier, which archtune replaces by its own dense layers and head.
HEAD_PREFIXES = {"resnet18": "fc.", "mobilenet_v3_small": "classifier."}
# Batch norm's step counters: not weights (older torchvision files lack them).
OPTIONAL_SUFFIX = ".num_batches_tracked"
SHOWN = 3  # names listed in an error


def how_to_get(backbone: str) -> str:
    """Where the ImageNet weights of ``backbone`` come from, in one sentence."""
    enum = WEIGHTS_ENUMS[backbone]
    return (f"torchvision's ImageNet weights for {backbone} are the file {WEIGHT_FILES[backbone]} (or a .safetensors "
            f"conversion of it); on a machine with internet and torchvision, save them with "
            f"python -c \"import torch, torchvision; torch.save(torchvision.models.{enum}.IMAGENET1K_V1"
            f".get_state_dict(), '{WEIGHT_FILES[backbone]}')\" (or take that file from ~/.cache/torch/hub/checkpoints/) "
            f"and copy it here; see the README, 'Pretrained image backbones'")


def check_weights_file(conv: "ConvConfig") -> None:
    """Refuse, before any data is read, a ``backbone_weights`` file that is not there."""
    if conv.backbone_weights is None or Path(conv.backbone_weights).is_file():
        return
    path = Path(conv.backbone_weights)
    state = "is a directory, not a file" if path.is_dir() else "does not exist"
    raise InvalidParameterError(f"backbone_weights={conv.backbone_weights!r}: {path.resolve()} {state}. Put the "
                                f"{conv.backbone} weights file there or pass its path; {how_to_get(conv.backbone)}")


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """(tensors by name, sha256 of the file) of a .safetensors or torch state-dict file.

    Raises
    ------
    InvalidParameterError
        The file is missing.
    BundleError
        The file is truncated or corrupt, not a state dict, or a pickle holding code
        (refused by torch's weights-only unpickler before anything in it runs).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InvalidParameterError(f"backbone_weights: {path} is not a file") from None
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            state = load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
            raise BundleError(f"backbone_weights {path}: not a valid safetensors file, or a truncated one "
                              f"({type(exc).__name__}: {exc})") from None
    else:
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # torch's message names a refused global ("Unsupported global: GLOBAL io.open ..."); bytes
            # that are no pickle at all fail in the same unpickler without one: those are corrupt.
            what = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if "weights only" in str(exc).lower() and what:
                raise BundleError(f"backbone_weights {path}: refused: the pickle holds more than tensors (it would "
                                  f"import or run code such as {what.group(1)}; nothing of it was executed). Save a "
                                  f"plain state dict (model.state_dict()) or use .safetensors") from None
            raise BundleError(f"backbone_weights {path}: not a readable torch file, or a truncated one "
                              f"({type(exc).__name__}: {_first_sentence(exc)})") from None
        except (RuntimeError, EOFError, ValueError, KeyError, OSError, AttributeError, ImportError) as exc:
            raise BundleError(f"backbone_weights {path}: not a readable torch file, or a truncated one "
                              f"({type(exc).__name__}: {_first_sentence(exc)})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise BundleError(f"backbone_weights {path}: not a state dict (a mapping of names to tensors); got a "
                          f"{type(state).__name__}")
    return state, digest


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split(". ")[0][:200]


def match_state_dict(state: dict[str, torch.Tensor], backbone: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` that ``backbone`` reads, with torchvision's plain names (the
    classifier's entries, ``fc.*`` or ``classifier.*``, are dropped). Raises `BundleError`
    listing a few missing, foreign and misshapen names when the file holds another
    architecture."""
    expected = _shapes(backbone)
    head = HEAD_PREFIXES[backbone]
    body = {k: v for k, v in state.items() if not k.startswith(head)}
    required = [k for k in expected if not k.endswith(OPTIONAL_SUFFIX)]
    missing = [k for k in required if k not in body]
    foreign = [k for k in body if k not in expected]
    misshapen = [f"{k} {tuple(body[k].shape)} instead of {expected[k]}" for k in expected
                 if k in body and tuple(body[k].shape) != expected[k]]
    if missing or foreign or misshapen:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of its {len(required)} weight tensors are missing "
                         f"(e.g. {', '.join(missing[:SHOWN])})")
        if foreign:
            parts.append(f"{len(foreign)} names are not {backbone}'s (e.g. {', '.join(foreign[:SHOWN])})")
        if misshapen:
            parts.append(f"{len(misshapen)} shapes differ (e.g. {'; '.join(misshapen[:SHOWN])})")
        guess = [other for other in BACKBONES if other != backbone
                 and set(body) <= set(_shapes(other)) | {k for k in body if k.startswith(HEAD_PREFIXES[other])}
                 and body]
        hint = f"; the file looks like {guess[0]} weights (backbone={guess[0]!r})" if guess else ""
        raise BundleError(f"backbone_weights {Path(path)}: not {backbone} weights: {'; '.join(parts)}{hint}")
    return {k: body[k] for k in expected if k in body}


def _shapes(backbone: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a backbone's state dict (built on the meta device: no memory)."""
    with torch.device("meta"):
        module = backbone_class(backbone)()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def backbone_modules(network: nn.Module) -> list[Backbone]:
    """The backbones in a network (one per image input: the cnn body or each image column)."""
    return [m for m in network.modules() if isinstance(m, Backbone)]


def load_backbone_weights(network: nn.Module, model_config: "ModelConfig") -> list[dict[str, Any]]:
    """Copy the pretrained weights that ``model_config.conv.backbone_weights`` names into every
    backbone of ``network``; return the lineage records (one dict, or none).

    Parameters
    ----------
    network : TabularNetwork
        Just built by `build_model` (its backbones hold random weights).
    model_config : ModelConfig
        ``conv.backbone`` names the architecture, ``conv.backbone_weights`` the file.

    Returns
    -------
    list of dict
        ``[{"step": "backbone", "backbone": name, "from": absolute path, "sha256": hex digest,
        "loaded": number of tensors copied into each backbone}]``; empty when there is no
        backbone, or no weights file (then a UserWarning says the backbone is untrained and
        where a file would come from).

    Raises
    ------
    InvalidParameterError
        The file is missing.
    BundleError
        The file is truncated or corrupt, a pickle holding code, or another architecture's.
    """
    conv = model_config.conv
    modules = backbone_modules(network)
    if conv.backbone is None or not modules:
        return []
    if conv.backbone_weights is None:
        warnings.warn(f"backbone={conv.backbone!r} starts from random weights (backbone_weights=None), not from "
                      f"ImageNet: pass backbone_weights='path/to/{WEIGHT_FILES[conv.backbone]}'; "
                      f"{how_to_get(conv.backbone)}", UserWarning, stacklevel=3)
        return []
    check_weights_file(conv)
    state, digest = read_state_dict(conv.backbone_weights)
    weights = match_state_dict(state, conv.backbone, conv.backbone_weights)
    for module in modules:
        # Only step counters may be missing (checked above), hence strict=False.
        module.load_state_dict(weights, strict=False)
    return [{"step": "backbone", "backbone": conv.backbone, "from": str(Path(conv.backbone_weights).resolve()),
             "sha256": digest, "loaded": len(weights)}]


__all__ = ["HEAD_PREFIXES", "WEIGHT_FILES", "WEIGHT_SUFFIXES", "backbone_modules", "check_weights_file",
           "check_weights_path", "how_to_get", "load_backbone_weights", "match_state_dict", "read_state_dict"]
