"""Glue that runs pykka's own test-suite on networkpype's asyncio runtime as well.

Loaded by ``run.py`` in two ways: as a pytest plugin (``-p pykka_glue``: excludes the node ids in
``EXCLUDED`` and writes every test's outcome, tagged with its runtime, to the JSON file named by
``$NETWORKPYPE_PYKKA_SUITE_REPORT``), and from the lines appended to the extracted copy of
pykka's ``tests/conftest.py``, which call :func:`install` to add the ``"asyncio"`` runtime and
re-declare the session-scoped ``runtime`` fixture over both runtimes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from networkpype.runtime import AsyncioActor, AsyncioFuture

REPORT_ENV = "NETWORKPYPE_PYKKA_SUITE_REPORT"

# Node id -> why that test cannot hold for an asyncio runtime. Every entry is reported by run.py.
# (Empty: every runtime-parametrised pykka test passes on both runtimes.)
EXCLUDED: dict[str, str] = {}

_runtime_of: dict[str, str | None] = {}
_status_of: dict[str, str] = {}


def install(runtimes: dict[str, Any], runtime_type: type[Any]) -> Any:
    """Add the asyncio runtime to pykka's ``RUNTIMES`` and return a ``runtime`` fixture over all.

    The event class and sleep function are the threading ones: pykka's tests call them from the
    test's (foreign) thread and, in callbacks, from inside actors.
    """
    runtimes["asyncio"] = pytest.param(
        runtime_type(
            name="asyncio",
            actor_class=AsyncioActor,
            event_class=threading.Event,
            future_class=AsyncioFuture,
            sleep_func=time.sleep,
        ),
        id="asyncio",
    )

    @pytest.fixture(scope="session", params=list(runtimes.values()))
    def runtime(request: pytest.FixtureRequest) -> Any:
        return request.param

    return runtime


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    removed: list[pytest.Item] = []
    for item in items:
        (removed if item.nodeid in EXCLUDED else kept).append(item)
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("runtime") if callspec is not None else None
        _runtime_of[item.nodeid] = getattr(param, "name", None)
    if removed:
        config.hook.pytest_deselected(items=removed)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    status = _status_of.get(report.nodeid)
    if report.failed:
        _status_of[report.nodeid] = "failed" if report.when == "call" else "error"
    elif status in ("failed", "error"):
        return
    elif report.skipped:
        _status_of[report.nodeid] = "skipped"
    elif report.when == "call":
        _status_of[report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    tests = {
        nodeid: {"runtime": _runtime_of.get(nodeid), "status": status}
        for nodeid, status in _status_of.items()
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"tests": tests, "excluded": EXCLUDED, "exitstatus": int(exitstatus)}, f)
