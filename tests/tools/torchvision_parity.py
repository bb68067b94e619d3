"""One-off check that archtune's backbones are torchvision's (not run by pytest or CI).

torchvision cannot be imported beside archtune's CPU torch in the project's environment, so
this script loads a torchvision wheel from a scratch directory, with its custom-operator
registrations stubbed out (the models do not use them). It

1. lists the (name, shape) of every state-dict entry of torchvision's ``resnet18()`` and
   ``mobilenet_v3_small()`` and, with ``--write``, stores them as the test fixture
   tests/data/torchvision_backbones.json (tests/test_backbones.py checks archtune's modules
   against it);
2. checks that archtune's modules have exactly those entries, less the classifier's;
3. loads torchvision's randomly initialised state dict into archtune's module and compares
   the pooled features on random images in eval mode (torchvision's features: everything up
   to its classifier), printing the largest absolute difference.

Usage (from the repository root)::

    /work/main/.venv/bin/pip install --no-deps --target /tmp/tv torchvision==0.28.0
    /work/main/.venv/bin/python tests/tools/torchvision_parity.py --torchvision /tmp/tv [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "torchvision_backbones.json"
HEADS = {"resnet18": "fc.", "mobilenet_v3_small": "classifier."}


def import_torchvision(path: str):
    sys.path.insert(0, path)
    # torchvision registers fake (meta) kernels for its C++ operators at import; that fails
    # without its compiled extension for this torch. The models never call those operators.
    torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)
    from torchvision import models

    return models


def torchvision_features(name: str, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if name == "resnet18":
        model.fc = torch.nn.Identity()
        return model(x)
    return torch.flatten(model.avgpool(model.features(x)), 1)


def fixture_text(fixture: dict) -> str:
    """The fixture as JSON with one state-dict entry per line (small, readable diffs)."""
    lines = ["{"]
    for key in ("note", "generated_by", "torchvision", "torch"):
        lines.append(f" {json.dumps(key)}: {json.dumps(fixture[key])},")
    lines.append(' "backbones": {')
    names = list(fixture["backbones"])
    for i, name in enumerate(names):
        spec = fixture["backbones"][name]
        lines.append(f"  {json.dumps(name)}: {{\"head_prefix\": {json.dumps(spec['head_prefix'])}, \"entries\": [")
        lines += [f"   {json.dumps(entry)}," for entry in spec["entries"][:-1]]
        lines.append(f"   {json.dumps(spec['entries'][-1])}]}}" + ("," if i < len(names) - 1 else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torchvision", required=True, help="directory holding the torchvision package")
    parser.add_argument("--write", action="store_true", help="write the fixture tests/data/torchvision_backbones.json")
    args = parser.parse_args()
    models = import_torchvision(args.torchvision)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from archtune.models.backbones import backbone_class

    import torchvision

    fixture = {"note": "(name, shape) of every state-dict entry of torchvision's resnet18() and "
                       "mobilenet_v3_small(); the head_prefix entries are the classifier archtune drops",
               "generated_by": "tests/tools/torchvision_parity.py --write",
               "torchvision": torchvision.__version__, "torch": torch.__version__, "backbones": {}}
    torch.manual_seed(0)
    for name in ("resnet18", "mobilenet_v3_small"):
        reference = getattr(models, name)().eval()
        state = reference.state_dict()
        fixture["backbones"][name] = {"head_prefix": HEADS[name],
                                      "entries": [[key, list(value.shape)] for key, value in state.items()]}
        ours = backbone_class(name)().eval()
        expected = {k: tuple(v.shape) for k, v in state.items() if not k.startswith(HEADS[name])}
        got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        if expected != got:
            raise SystemExit(f"{name}: names or shapes differ: only torchvision {sorted(set(expected) - set(got))[:5]}, "
                             f"only archtune {sorted(set(got) - set(expected))[:5]}, shapes "
                             f"{[k for k in expected if k in got and expected[k] != got[k]][:5]}")
        # Batch-norm statistics away from (0, 1), so that eval mode's use of them is compared too.
        with torch.no_grad():
            for module in reference.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.normal_(0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        ours.load_state_dict({k: v for k, v in reference.state_dict().items() if k in expected})
        for size in (224, 64, 32, 7):
            x = torch.rand(4, 3, size, size)
            with torch.no_grad():
                a, b = ours(x), torchvision_features(name, reference, x)
            print(f"{name} {size}x{size}: features {tuple(a.shape)}, max |archtune - torchvision| = "
                  f"{(a - b).abs().max().item():.2e} (scale {b.abs().max().item():.2e}), {len(got)} tensors")
            if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
                raise SystemExit(f"{name} {size}x{size}: outputs differ")
    if args.write:
        FIXTURE.write_text(fixture_text(fixture))
        print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
