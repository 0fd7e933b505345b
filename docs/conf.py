"""Sphinx configuration for the Flask-Token-Vault docs (``make docs``)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

project = "Flask-Token-Vault"
author = "Flask-Token-Vault contributors"
copyright = "Flask-Token-Vault contributors"
release = importlib.metadata.version("Flask-Token-Vault")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "myst_parser",
]

# Built offline (CI has no internet): no intersphinx, nothing fetched at build time.
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_samples", "Thumbs.db", ".DS_Store"]

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "both"

myst_heading_anchors = 3

html_theme = "furo"
html_title = f"Flask-Token-Vault {release}"
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["custom.css"]


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Leave private helper classes (``_JsonRecord``...) out of a class's listed bases."""
    bases[:] = [base for base in bases if not base.__name__.startswith("_")] or [object]


def setup(app: Any) -> None:
    """Connect the base-class filter to autodoc."""
    app.connect("autodoc-process-bases", _public_bases)
