"""The public API: the top-level package and `archtune.PUBLIC_MODULES`, each with `__all__`;
README.md's examples import only public names (issue 30)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import archtune

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "docs").rglob("*.py"))]


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return [text]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _imports(source: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement of a code block ([] names: `import module`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _public(module: str) -> bool:
    return module == "archtune" or module in archtune.PUBLIC_MODULES


def test_every_public_module_has_an_all_whose_names_resolve():
    for name in ("archtune", *archtune.PUBLIC_MODULES):
        module = importlib.import_module(name)
        assert module.__all__, name
        for attribute in module.__all__:
            assert getattr(module, attribute) is not None, f"{name}.{attribute}"


def test_the_documents_have_python_examples():
    assert sum(len(_python_blocks(path)) for path in DOCUMENTS) >= 15


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_documents_import_only_public_names(path):
    wrong = []
    for block in _python_blocks(path):
        for module, names in _imports(block):
            if not module.split(".")[0] == "archtune":
                continue
            if not _public(module):
                wrong.append(f"{module} is not a public module")
                continue
            exported = importlib.import_module(module).__all__
            wrong += [f"{module}.{name} is not in its __all__" for name in names if name not in exported]
        # archtune.NAME used as an attribute of the package
        for name in re.findall(r"\barchtune\.([A-Za-z_]\w*)", block):
            if name not in archtune.__all__ and f"archtune.{name}" not in archtune.PUBLIC_MODULES:
                wrong.append(f"archtune.{name} is not public")
    assert not wrong, sorted(set(wrong))


def _resolve(dotted: str):
    """(module, attribute or None) for ``archtune.a.b.c``: the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        rest = parts[cut:]
        return module, (rest[0] if rest else None)
    return None, None


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_names_the_documents_tell_users_to_call_are_public(path):
    """A backticked ``archtune.x.Name`` in the text that names a function or class (not a
    module, which the text may point to as where something lives) is a public name."""
    wrong = []
    for dotted in set(re.findall(r"`(archtune(?:\.\w+)+)", path.read_text(encoding="utf-8"))):
        module, attribute = _resolve(dotted)
        if module is None or attribute is None or not hasattr(module, attribute):
            continue  # a module, or a field of an object (archtune.json, tags): no name to check
        if module.__name__ == "archtune":
            public = attribute in archtune.__all__ or f"archtune.{attribute}" in archtune.PUBLIC_MODULES
        else:
            public = _public(module.__name__) and attribute in module.__all__
        if not public:
            wrong.append(dotted)
    assert not wrong, sorted(wrong)
