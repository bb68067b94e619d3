"""Sphinx configuration of archtune's documentation site (built by scripts/docs).

Sphinx rather than MkDocs because the parts the site needs are Sphinx's own or its
extensions', as scikit-learn and Optuna use them: numpydoc renders archtune's numpydoc
docstrings, sphinx-gallery executes the examples at build time (a failing example fails the
build), sphinx-click reads the CLI reference from the click group itself, and myst-parser keeps
the guides Markdown, readable on GitHub as they are.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The gallery's examples (each writes only into a temporary folder) train on one thread: the site
# builds on a 2-core CI runner beside other jobs, where a second thread waits more than it helps.
os.environ.setdefault("OMP_NUM_THREADS", "1")

project = "archtune"
author = "the archtune authors"
copyright = "2026, the archtune authors"
release = version = _version("archtune")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_click",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/README.txt", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]

# Guides: GitHub-flavoured Markdown; headings get anchors so that "page.md#a-heading" links work
# both on GitHub and in the site.
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# API reference: one page per public name (docs/api/index.md lists them; tests/test_docs.py
# checks the list against every public __all__).
autosummary_generate = True
autodoc_typehints = "none"          # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",        # execute every example, not only plot_*.py
    "abort_on_example_error": True,         # CI fails if an example fails
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
}

html_theme = "furo"
html_title = f"archtune {release}"
html_static_path: list[str] = []
html_show_sourcelink = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out of a class's page the members it inherits from scikit-learn, PyTorch or the
    builtins (``get_params``, ``set_fit_request``, ``with_traceback``, ...): their own sites
    document them, and their docstrings refer to those sites' labels."""
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None) or ""
    if what == "class" and not module.startswith("archtune") and callable(target):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
