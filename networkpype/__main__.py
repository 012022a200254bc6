"""``python -m networkpype``: the ``networkpype`` command (see :mod:`networkpype.cli`)."""

from __future__ import annotations

import sys

from networkpype.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
