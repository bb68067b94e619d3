"""The documentation runs as written (issue 33): every ```python block of README.md and of the
guides under docs/ is executed, one document at a time, its blocks in order in one namespace,
in a scratch folder; the gallery (docs/examples) is executed by the site's build (scripts/docs).
Every public name has an API reference page, and README.md stays a front page.

A block preceded by ``<!-- no-run: REASON -->`` is not executed (it needs data or hardware a
test cannot have, such as image folders or pretrained weights); the reason is required.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import archtune

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCUMENTS = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
# Documents whose blocks train searches or many networks: together they take minutes, so
# they run with the slow tests; the rest (README.md, getting started, most guides) stay fast.
SLOW = {"docs/guide/search.md", "docs/guide/doctor.md", "docs/guide/report.md", "docs/guide/tracking.md",
        "docs/guide/export.md", "docs/guide/pruning.md"}

NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>\S.*?)\s*-->")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, no-run reason or None) of every ```python block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.M | re.S):
        line = text.count("\n", 0, match.start()) + 1
        previous = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = NO_RUN.search(previous)
        blocks.append((line, match.group(1), skip.group("reason") if skip else None))
    return blocks


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _params():
    for path in DOCUMENTS:
        if not any(reason is None for _, _, reason in python_blocks(path)):
            continue
        marks = [pytest.mark.slow] if _rel(path) in SLOW else []
        yield pytest.param(path, id=_rel(path), marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_every_python_block_runs(path, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, code, reason in python_blocks(path):
        if reason is not None:
            continue
        try:
            exec(compile(code, f"{_rel(path)}:{line}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{_rel(path)}, the block at line {line} failed: "
                                 f"{type(error).__name__}: {error}") from error
        finally:
            plt.close("all")


def test_the_no_run_blocks_are_few_and_say_why():
    skipped = [(_rel(path), line, reason) for path in DOCUMENTS for line, _, reason in python_blocks(path)
               if reason is not None]
    total = sum(len(python_blocks(path)) for path in DOCUMENTS)
    assert total >= 20, total
    assert len(skipped) <= total // 5, skipped
    assert all(len(reason.split()) >= 3 for _, _, reason in skipped), skipped


def _api_page_names() -> set[str]:
    text = (DOCS / "api" / "index.md").read_text(encoding="utf-8")
    return set(re.findall(r"^   (archtune(?:\.\w+)+)$", text, flags=re.M))


def test_every_public_name_has_an_api_page():
    listed = _api_page_names()
    missing = [f"archtune.{name}" for name in archtune.__all__ if f"archtune.{name}" not in listed]
    top = {id(getattr(archtune, name)) for name in archtune.__all__}
    for module_name in archtune.PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            # a name the package shares with a module has its page under the package
            if f"{module_name}.{name}" not in listed and id(getattr(module, name)) not in top:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"add these to docs/api/index.md: {missing}"
    public = {f"archtune.{name}" for name in archtune.__all__} | {
        f"{m}.{n}" for m in archtune.PUBLIC_MODULES for n in importlib.import_module(m).__all__}
    assert listed <= public, f"not public, remove from docs/api/index.md: {sorted(listed - public)}"


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, len(lines)
    # .ci/run and a new user both start from these two commands, so they stay on top
    assert lines[2].startswith("```bash") and lines[3].startswith("scripts/demo"), lines[:5]
    assert any(line.startswith("scripts/test") for line in lines[3:8]), lines[:8]
    for target in re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)):
        assert (ROOT / target).exists(), target


def test_every_guide_is_in_the_guides_table_of_contents():
    index = (DOCS / "guide" / "index.md").read_text(encoding="utf-8")
    for page in sorted((DOCS / "guide").glob("*.md")):
        if page.name != "index.md":
            assert f"\n{page.stem}\n" in index and f"({page.name})" in index, page.name


def test_every_gallery_example_is_executed_by_the_build():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert '"abort_on_example_error": True' in conf
    pattern = re.search(r'"filename_pattern": r"(.*?)"', conf).group(1)
    examples = sorted((DOCS / "examples").glob("*.py"))
    assert len(examples) >= 4
    assert all(re.search(pattern, "/" + example.name) for example in examples)
