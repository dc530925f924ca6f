"""Test and demo helpers that ship with nbchat: the offline stand-in server (standard
library only; it imports nothing of nbchat's runtime, so no test checks nbchat against itself)."""

import warnings

from nbchat.testing.server import STAND_IN, StandInServer

# `python -m nbchat.testing.server` imports this package, and so the server module, before
# running server.py as __main__; runpy warns of the second copy. Each copy has the whole
# route table, so they cannot diverge: the warning would only alarm the person starting it.
warnings.filterwarnings(
    "ignore", message="'nbchat.testing.server' found in sys.modules", category=RuntimeWarning
)

__all__ = ["STAND_IN", "StandInServer"]
