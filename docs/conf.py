"""Sphinx configuration: the pages are Markdown (MyST), the API reference comes from the
docstrings of the built package, and every warning fails the build (scripts/docs.sh runs
sphinx-build -W --keep-going)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the in-place build, when the package is not installed

project = "cutmix_ext"
author = "the cutmix_ext authors"
copyright = "the cutmix_ext authors, MIT license"
release = version = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",  # the Args: sections of some docstrings
    "sphinx_copybutton",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "requirements.txt"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3  # links to sections as page.md#heading, as GitHub renders them

# `name` in a docstring links to that name where it is documented, and is code where it is not.
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": False, "undoc-members": False}
# Intersphinx needs the network: without it, torch's names in signatures are plain text.
intersphinx_mapping = {}
suppress_warnings = ["myst.strikethrough"]

html_theme = "pydata_sphinx_theme"
html_title = "cutmix_ext"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
# Only the guides are a section with pages of its own to navigate; elsewhere the sidebar would be
# an empty box.
html_sidebars = {page: [] for page in ["index", "install", "quickstart", "semantics", "performance",
                                       "how-it-works", "development", "api"]}
copybutton_prompt_text = r"\$ "
copybutton_prompt_is_regexp = True
