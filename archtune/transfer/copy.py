"""Copy a trained network's weights into a freshly built one.

Every parameter and buffer whose name and shape match is copied; the output layer is copied
only when the new task is the same classification with the same classes (otherwise it stays
as built, initialised for the new task's outputs). This is the usual transfer-learning recipe
(Yosinski et al. 2014, "How transferable are features in deep neural networks?"; Keras'
transfer-learning guide): keep the learned layers, replace the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# The output layer(s) of a TabularNetwork: the head, and Wide&Deep's wide part, which also
# writes straight to the outputs.
OUTPUT_LAYERS = ("head", "wide_head", "wide_levels")


def is_output(name: str) -> bool:
    """Whether parameter or buffer ``name`` belongs to an output layer (`OUTPUT_LAYERS`)."""
    return name.split(".", 1)[0] in OUTPUT_LAYERS


@dataclass(frozen=True)
class CopyReport:
    """What `copy_matching` copied.

    copied : tuple of str
        Names (parameters and buffers) copied from the source, bit for bit.
    skipped : tuple of str
        Names both networks have, with different shapes: left as built.
    new : tuple of str
        Names the source lacks, or output layers kept for the new task: left as built.
    n_parameters : int
        Parameter values (elements, buffers not counted) copied.
    origin : str
        Where the weights came from (the `Source`'s ``origin``).
    """

    copied: tuple[str, ...]
    skipped: tuple[str, ...]
    new: tuple[str, ...]
    n_parameters: int
    origin: str = "the source"

    @property
    def total(self) -> int:
        """Tensors (parameters and buffers) of the new network."""
        return len(self.copied) + len(self.skipped) + len(self.new)

    def summary(self) -> str:
        """One line, e.g. "copied 14 of 16 tensors (1.2M parameters) from bundle runs/a; new:
        head.weight, head.bias"."""
        line = (f"copied {len(self.copied)} of {self.total} tensors ({_count(self.n_parameters)} parameters) "
                f"from {self.origin}")
        if self.skipped:
            line += f"; other shape: {_names(self.skipped)}"
        if self.new:
            line += f"; new: {_names(self.new)}"
        return line


def _names(names: tuple[str, ...], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


@torch.no_grad()
def copy_matching(source: nn.Module, target: nn.Module, keep_head: bool, origin: str = "the source") -> CopyReport:
    """Copy into ``target`` every tensor of ``source`` whose name and shape match.

    Parameters
    ----------
    source : torch.nn.Module
        The trained network (not changed).
    target : torch.nn.Module
        A freshly built network, changed in place.
    keep_head : bool
        Copy the output layers (`OUTPUT_LAYERS`) too: True only when the new task is the same
        classification with the same classes.
    origin : str
        Where the weights came from, for `CopyReport.summary`.

    Returns
    -------
    CopyReport
    """
    theirs = source.state_dict()
    parameters = {name for name, _ in target.named_parameters()}
    copied, skipped, new = [], [], []
    n_parameters = 0
    for name, tensor in target.state_dict().items():
        other = theirs.get(name)
        if other is None or (is_output(name) and not keep_head):
            new.append(name)
        elif other.shape != tensor.shape:
            skipped.append(name)
        else:
            tensor.copy_(other.to(device=tensor.device, dtype=tensor.dtype))  # state_dict tensors share storage
            copied.append(name)
            n_parameters += tensor.numel() if name in parameters else 0
    if copied:
        # A new output layer starts at zero (as BiT, Kolesnikov et al. 2020): the first logits
        # are uniform (values at the target's mean) whatever the scale of the copied body's
        # features, which with a random head can start the loss at several times log(classes).
        for name, tensor in target.state_dict().items():
            if name in new and is_output(name) and name in parameters:
                tensor.zero_()
    return CopyReport(tuple(copied), tuple(skipped), tuple(new), n_parameters, origin)


__all__ = ["CopyReport", "OUTPUT_LAYERS", "copy_matching", "is_output"]
