"""The REST stack's public names, plus auth and the time synchronizer."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "networkpype.rest",
    "networkpype.rest.method",
    "networkpype.rest.request",
    "networkpype.rest.response",
    "networkpype.rest.errors",
    "networkpype.rest.connection",
    "networkpype.rest.manager",
    "networkpype.rest.processor",
    "networkpype.rest.processor.base",
    "networkpype.rest.processor.time_synchronizer",
    "networkpype.auth",
    "networkpype.time_synchronizer",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    assert module.__all__
    for exported in module.__all__:
        obj = getattr(module, exported)
        assert obj.__doc__, f"{name}.{exported} has no docstring"


def test_auth_imports_first_without_a_cycle() -> None:
    import subprocess
    import sys

    # auth imports the REST request type, which loads networkpype.rest, whose manager
    # refers to Auth: a fresh interpreter importing auth first would expose a cycle.
    subprocess.run([sys.executable, "-c", "import networkpype.auth"], check=True)
