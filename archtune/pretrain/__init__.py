"""Self-supervised pretraining on unlabeled rows (issue 16).

``archtune.pretrain(X, ...)`` trains a network on a pretext task — masked-feature
reconstruction for tables, rotation prediction for images — and returns a `Pretrained`
whose ``to_source()`` a fit starts from (archtune.transfer). Its parameters are those of
`archtune.pretrain.api.pretrain`.

Modules: tasks.py (the pretext tasks), model.py (the network while it pretrains), run.py
(the training, from an estimator's parameters), result.py (`Pretrained`), bundle.py (saving
and loading), api.py (the public function).

The package itself is callable, so that ``archtune.pretrain`` is one object — this package —
whether it was reached as a public name or by importing one of its modules (Python sets a
package's attribute on its parent when it is imported, which would replace a function of
the same name).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, X: Any, **kwargs: Any) -> Any:
        """`archtune.pretrain.api.pretrain` (imported on first use: PyTorch loads lazily)."""
        from archtune.pretrain.api import pretrain

        return pretrain(X, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
