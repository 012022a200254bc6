"""The library's actors (connection, manager, throttler), on :mod:`networkpype.runtime`.

The runtime's names are re-exported here for code written before it had a package of its
own (``from networkpype.actors import stop_actor`` keeps working)."""

from networkpype.runtime import *  # noqa: F403
from networkpype.runtime import __all__ as __all__
