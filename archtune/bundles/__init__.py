"""Persistence: every model archtune saves is a bundle directory, read without unpickling.

One module per bundle kind, each with its reader and writer:

- `network`: a fitted NeuralClassifier / NeuralRegressor (also pruned, distilled, fine-tuned);
- `ensemble`: an EnsembleClassifier / EnsembleRegressor or a bag's members, with its
  scikit-learn baselines in skops' format (`sklearn_member`);
- `pretrained`: a `Pretrained` network (archtune.pretrain);
- `search`: a fitted AutoNeural* search, its best network's bundle plus the ensemble that
  predicts beside it in ``ensemble-<sha256 prefix>/``.

`format` holds what they share (the JSON description's fields, format and version checks, the
safetensors weights, `write_bundle`: weights then description, each atomically through
archtune.files); `paths` says what a path holds (`identify`, `check_path`); `dispatch` is the
one `save` / `load` (`archtune.save`, `archtune.load`) that picks the kind. Every fault is a
`archtune.errors.BundleError` naming the path and what is wrong, and a save that fails leaves
what was saved before as it was.
"""

from archtune.bundles.dispatch import load, save

__all__ = ["load", "save"]
