"""Compatibility: the actor runtime is :mod:`networkpype.runtime` now; import it from there."""

from networkpype.runtime import *  # noqa: F403
from networkpype.runtime import __all__ as __all__
