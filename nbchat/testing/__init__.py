"""Test and demo helpers that ship with nbchat: the offline stand-in server."""

from nbchat.testing import batches as _batches  # noqa: F401  (registers /files and /batches)
from nbchat.testing import completions as _completions  # noqa: F401  (registers its endpoint)
from nbchat.testing import images as _images  # noqa: F401
from nbchat.testing import organization as _organization  # noqa: F401
from nbchat.testing import responses as _responses  # noqa: F401
from nbchat.testing.server import STAND_IN, StandInServer

__all__ = ["STAND_IN", "StandInServer"]
