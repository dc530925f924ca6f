"""Sphinx configuration: MyST pages, the shipped notebooks executed against the offline
stand-in server, and reference pages generated from nbchat's own declarations."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE / "_ext")]

import reference  # noqa: E402  (docs/_ext, put on the path just above)

from nbchat import __version__  # noqa: E402
from nbchat.testing.server import StandInServer  # noqa: E402

project = "nbchat"
author = "The nbchat maintainers"
release = __version__
extensions = ["myst_nb", "rules", "reference"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_title = "nbchat"
html_static_path: list[str] = []
# Help texts are quoted verbatim: "--key" must not become an en dash, nor quotes curly.
smartquotes = False
# nbchat's Markdown outputs have tables: render them as Jupyter does (GitHub-flavoured).
nb_render_markdown_format = "gfm"
# Only internal references are checked (the build is offline); -W turns any broken one into an error.
nitpicky = False

# Generated pages (git-ignored): the references, and copies of the shipped notebooks.
reference.write(HERE / "reference")
notebooks = HERE / "notebooks"
if notebooks.exists():
    shutil.rmtree(notebooks)
shutil.copytree(ROOT / "notebooks", notebooks)

# The notebooks run for real, offline: against the stand-in server with a placeholder key and an
# admin key the stand-in accepts, with a reply cache of their own (never the user's).
_server = StandInServer().start()
atexit.register(_server.stop)
_cache = tempfile.mkdtemp(prefix="nbchat-docs-")
atexit.register(shutil.rmtree, _cache, True)
os.environ.update(
    OPENAI_BASE_URL=_server.url,
    OPENAI_API_KEY="sk-local",
    OPENAI_ADMIN_KEY="sk-admin-docs-stand-in",
    NBCHAT_CACHE_PATH=str(Path(_cache) / "replies.sqlite3"),
)
nb_execution_mode = "force"
nb_execution_timeout = 180
nb_execution_raise_on_error = True
nb_execution_show_tb = True
