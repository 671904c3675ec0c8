"""Sphinx configuration of the sk_weightfree documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

import os
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package, when it is not installed

import sk_weightfree  # noqa: E402

# -- project ----------------------------------------------------------------
project = "sk-weightfree"
author = "the sk-weightfree developers"
copyright = "the sk-weightfree developers"
release = sk_weightfree.__version__
version = ".".join(release.split(".")[:2])

# -- extensions -------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
]
default_role = "obj"

# No network during the build: no intersphinx.
intersphinx_mapping = {}

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {}
autodoc_typehints = "none"
autoclass_content = "class"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- MyST -------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- sphinx-gallery ---------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",  # execute every plot_*.py
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sk_weightfree",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sk_weightfree": None},
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 0,
    "abort_on_example_error": False,
}

# sphinx-gallery executes the examples in this process. They fit tiny networks,
# for which extra torch threads only add contention (badly so on a busy machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass
warnings.filterwarnings(
    "ignore", category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sk-weightfree {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}


# -- hooks ------------------------------------------------------------------
def _skip_member(app, what, name, obj, skip, options):
    """Hide scikit-learn's metadata-routing helpers (their docstrings point into
    scikit-learn's own user guide, which is not part of this site)."""
    if name == "get_metadata_routing" or (name.startswith("set_") and name.endswith("_request")):
        return True
    return skip


_REF_WITH_TITLE = re.compile(r":ref:`([^`<]+?)\s*<[^`>]+>`")
_REF_BARE = re.compile(r":ref:`([^`<]+)`")


def _process_docstring(app, what, name, obj, options, lines):
    """Small fixes to docstrings before they are rendered.

    * Quote ``n_features_in_`` in "of shape (n_features_in_,)": bare, docutils reads the
      trailing underscore as a link to an undefined target (an error).
    * Methods inherited from scikit-learn (``score``, ``get_params``, ...) point into
      scikit-learn's own user guide with ``:ref:``; without intersphinx those labels do
      not exist here, so keep the link text only.
    """
    from_sklearn = (getattr(obj, "__module__", None) or "").startswith("sklearn")
    for i, line in enumerate(lines):
        line = line.replace("(n_features_in_,)", "(``n_features_in_``,)")
        if from_sklearn:
            line = _REF_BARE.sub(r"``\1``", _REF_WITH_TITLE.sub(r"\1", line))
        lines[i] = line


def _check_api_is_complete(app):
    """Every name in ``sk_weightfree.__all__`` and ``sk_weightfree.nn.__all__`` must be
    listed in api.rst; a missing one is a warning (an error under ``-W``)."""
    from sphinx.util import logging

    import sk_weightfree.nn

    api = (HERE / "api.rst").read_text()
    logger = logging.getLogger(__name__)
    for module, names in (("sk_weightfree", sk_weightfree.__all__),
                          ("sk_weightfree.nn", sk_weightfree.nn.__all__)):
        for name in names:
            if f"\n   {name}\n" not in api and f".. data:: {name}\n" not in api:
                logger.warning(f"api.rst does not list the public name {module}.{name}")


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("builder-inited", _check_api_is_complete)
