"""Sphinx configuration for rocket's documentation."""

from __future__ import annotations

project = "rocket"
author = "rocket developers"
copyright = "2026, rocket developers"  # noqa: A001

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "rocket"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_type_aliases = {"FiberBody": "rocket.FiberBody"}
# Type hints name standard-library classes and type variables that no local page
# documents (there is no network for intersphinx at build time): don't flag those.
nitpick_ignore_regex = [(r"py:.*", r"(?!rocket\.).*"), (r"py:.*", r"rocket\..*\.(R|T|T_co)")]
