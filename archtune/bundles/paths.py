"""What archtune finds at a path (`identify`: a network, a search's run, an ensemble, a
pretraining bundle, an exported file, a stopped search, ...), read from its description alone,
and which command takes it (`check_path`: one line naming what the path is and which command
takes it). Nothing is loaded, and nothing heavier than json is imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archtune.errors import InvalidParameterError

META_FILE = "archtune.json"


@dataclass(frozen=True)
class PathKind:
    """What archtune finds at a path, for commands that take one.

    kind : str
        "network" (a network bundle: a fit's run, a pruned or distilled network, an ensemble's
        or a bag's member), "search" (a search's run whose ensemble predicts), "ensemble" (an
        ensemble bundle), "pretrained" (a pretraining bundle), "exported" (an ONNX or
        TorchScript file), "stopped search" (a search's folder with a study but no model yet),
        "empty", "foreign" (a folder or file archtune did not write), "missing", "unreadable"
        (an archtune.json that does not parse or is not archtune's: the loaders name the fault).
    what : str
        The same in words, for messages: "a pretraining bundle (archtune pretrain)".
    """

    kind: str
    what: str


# What each command takes, and what it says of the rest: one line naming what the path is and
# which command takes it.
COMMANDS = {
    "predict": ("network", "search", "ensemble"),
    "info": ("network", "search", "ensemble", "pretrained"),
    "export": ("network", "search"),
    "report": ("network", "search"),
    "prune": ("network", "search"),
    "distill": ("network", "search", "ensemble"),
    "load": ("network", "search", "ensemble", "pretrained"),
}
HINTS = {
    "pretrained": "fine-tune it on labelled rows with `archtune fit DATA --target COLUMN --init-from {path}` "
                  "(init_from={path} in Python), or describe it with `archtune info {path}`",
    "ensemble": "predict with it (`archtune predict {path} DATA`) or distil it into one network (`archtune distill "
                "{path} DATA`); commands that take one network take its member-<i> folders or the run folder "
                "that holds it",
    "exported": "run it with onnxruntime or torch.jit.load; archtune's commands take the bundle or run folder "
                "it was exported from",
    "stopped search": "continue it with `archtune tune DATA --target COLUMN --out {path} --resume`, or list its "
                      "trials with `archtune leaderboard {path}`",
    "empty": "give the --out folder of `archtune fit`, `tune`, `distill`, `prune` or `pretrain`",
    "foreign": "give the --out folder of `archtune fit`, `tune`, `distill`, `prune` or `pretrain`",
}


def identify(path: str | os.PathLike) -> PathKind:
    """What archtune wrote at ``path``, read from its description alone (nothing is loaded)."""
    path = Path(path)
    if not path.exists():
        return PathKind("missing", "no such model bundle or run folder (not found)")
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            return PathKind("exported", "an ONNX model file (archtune export)")
        if path.with_name(path.name + ".json").is_file():  # TorchScript: its description beside it
            return PathKind("exported", "a TorchScript model file (archtune export)")
        return PathKind("foreign", "is a file, not an archtune model bundle directory (archtune never loads "
                                   "pickles or .pt files)")
    meta = read_json(path / META_FILE)
    if meta is None and (path / META_FILE).is_file():  # the loaders say exactly what is wrong with it
        return PathKind("unreadable", f"a folder whose {META_FILE} cannot be read")
    if isinstance(meta, dict) and meta.get("format") == "archtune-ensemble":
        return PathKind("ensemble", "an ensemble bundle")
    if isinstance(meta, dict) and meta.get("format") == "archtune-bundle":
        estimator = meta.get("estimator")
        if estimator == "Pretrained":
            return PathKind("pretrained", "a pretraining bundle (archtune pretrain: a network without a head for "
                                          "a target)")
        final = meta.get("final")
        if isinstance(final, dict) and final.get("kind") == "ensemble":
            return PathKind("search", f"a search's run ({estimator}, with the ensemble that predicts)")
        return PathKind("network", f"a network bundle ({estimator})")
    if meta is not None:  # an archtune.json of another format or shape: the loaders name the fault
        return PathKind("unreadable", f"a folder whose {META_FILE} is not an archtune description")
    if any((path / name).is_file() for name in ("study.db", "study.log")):
        return PathKind("stopped search", "a search's folder with no saved model (the search stopped before "
                                          "saving one)")
    if not any(path.iterdir()):
        return PathKind("empty", "an empty folder")
    return PathKind("foreign", f"a folder archtune did not write (no {META_FILE})")


def check_path(path: str | os.PathLike, command: str) -> PathKind:
    """``path``'s kind when ``command`` takes it.

    Raises
    ------
    InvalidParameterError
        In one line: what ``path`` is, and which command takes it.
    """
    found = identify(path)
    if found.kind in COMMANDS[command] or found.kind == "unreadable":
        return found
    takes = "archtune.load takes a bundle or run folder" if command == "load" else f"`archtune {command}` takes " + {
        "predict": "a network, a search's run or an ensemble",
        "info": "a network, a search's run, an ensemble or a pretraining bundle",
        "export": "one network (a search's run exports its best network with --best-network)",
        "report": "a run folder of `archtune fit`, `tune`, `distill` or `prune`",
        "prune": "one network (a fit's or a search's run, or a network bundle)",
        "distill": "a teacher that predicts: a network, a search's run or an ensemble",
    }[command]
    hint = HINTS.get(found.kind, "").format(path=path)
    raise InvalidParameterError(f"{path}: {found.what}; {takes}" + (f"; to use it: {hint}" if hint else ""))


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


__all__ = ["COMMANDS", "META_FILE", "PathKind", "check_path", "identify", "read_json"]
