"""The testing package's exports, and the purity of its timing and chaos modules."""

from __future__ import annotations

import ast
from pathlib import Path

import networkpype.testing
from networkpype.testing import _shaping, chaos

IO_MODULES = {"asyncio", "aiohttp", "socket", "selectors", "pykka"}


def test_exports() -> None:
    assert len(set(networkpype.testing.__all__)) == len(networkpype.testing.__all__)
    for name in networkpype.testing.__all__:
        assert getattr(networkpype.testing, name) is not None


def test_timing_and_chaos_modules_do_no_io() -> None:
    for module in (_shaping, chaos):
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & IO_MODULES, module.__name__
