"""Test and demo helpers that ship with nbchat: the offline stand-in server."""

import warnings

from nbchat.testing import batches as _batches  # noqa: F401  (registers /files and /batches)
from nbchat.testing import completions as _completions  # noqa: F401  (registers its endpoint)
from nbchat.testing import images as _images  # noqa: F401
from nbchat.testing import organization as _organization  # noqa: F401
from nbchat.testing import responses as _responses  # noqa: F401
from nbchat.testing.server import STAND_IN, StandInServer

# `python -m nbchat.testing.server` imports this package, which imports the server module
# to register every endpoint's route, before running server.py as __main__; runpy warns of
# the second copy. That __main__ only calls the package copy's main(), so the copies never
# diverge: the warning would only alarm the person starting the server.
warnings.filterwarnings(
    "ignore", message="'nbchat.testing.server' found in sys.modules", category=RuntimeWarning
)


__all__ = ["STAND_IN", "StandInServer"]
