"""The throttler's public names, and the purity of its core."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import networkpype.limits.core as core_module

MODULES = [
    "networkpype.throttler",
    "networkpype.throttler.rate_limit",
    "networkpype.throttler.throttler",
    "networkpype.limits.core",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    for exported in module.__all__:
        obj = getattr(module, exported)
        assert obj.__doc__, f"{name}.{exported} has no docstring"


def test_package_exports_the_documented_api() -> None:
    import networkpype.throttler as package

    assert {"AsyncThrottler", "RateLimit", "LinkedLimitWeightPair", "TaskLog"} <= set(
        package.__all__
    )


def test_core_does_no_io_and_reads_no_clock() -> None:
    tree = ast.parse(Path(core_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "aiohttp", "pykka", "time", "threading", "logging"}
