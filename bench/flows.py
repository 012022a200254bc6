"""Which modules three flows pass through, and how often they switch module (issue 12).

    .venv/bin/python bench/flows.py                 # 5 measured rounds (+1 warm-up), a table
    .venv/bin/python bench/flows.py --json          # the same figures, machine-readable
    .venv/bin/python bench/flows.py --path          # ... and each flow's module path
    .venv/bin/python bench/flows.py --rounds 1      # quick

Everything runs in this process on 127.0.0.1: a loopback aiohttp WebSocket server (plain
aiohttp, no networkpype code) and the seed's client: ``ConnectionManagersFactory(throttler)``
with one pass-through post-processor (defined here, so not counted), ``get_ws_manager()``
(a plain ``WebSocketManager``, default settings), ``connect()``, one ``subscribe()`` and one
consumer task in ``async for item in manager.iter_messages(events=True)``.

**What is traced.** While a flow runs, ``sys.setprofile`` (and ``threading.setprofile`` for
threads started meanwhile) sees every Python function call; those whose code lives in the
imported ``networkpype`` package (its file is under the package's directory) are recorded and
mapped to their module by file path: no module name is written here, so the figures survive a
reorganisation of the package (run it against another tree with ``PYTHONPATH=...``).
``sys.setprofile`` reports the resumption of a suspended coroutine or generator as a call
too; here it is not a call, it is counted apart. Per flow:

- *modules*: distinct networkpype modules whose code ran (called or resumed), listed in
  first-seen order;
- *switches*: consecutive calls (in the order they happened, across every task on the
  loop) whose modules differ; *calls*: how many calls;
- *+resumes*: switches over calls **and** resumptions (an ``await`` chain that crosses
  modules costs switches at every wake-up);
- *+returns*: every move of control from one networkpype module to another: calls,
  resumptions, and returns into a networkpype caller (what stepping through it shows);
- *actor hops*: messages handled by a pykka actor (pykka's ``_handle_receive``, or an
  ``on_receive`` a runtime calls without it, once per message), stops (``on_stop``) included,
  listed as ``Actor<-Message``;
- *tasks*: tasks created on behalf of networkpype code (``loop.create_task``, whether called
  directly or through ``asyncio.create_task``, ``ensure_future``, ``wait_for``..., whose
  nearest caller outside asyncio is a networkpype function), listed by creator.

Only calls on the event loop's thread count; calls on another thread are reported apart
(``off-loop``, 0 expected: the library runs its actors on the caller's loop).

**The flows**, each round on a fresh manager (connect, subscribe, consumer started, one
untraced warm-up frame), in this order:

1. *frame*: from just before the server writes one text frame (the consumer task is waiting
   in ``iter_messages()``) until the consumer's ``async for`` body has the message, i.e.
   receive, decode, post-process, deliver.
2. *subscribe*: from just before ``await manager.subscribe(request)`` (a second topic) until
   both that call has returned **and** the server has received the SUBSCRIBE frame,
   whichever comes later. (Then, untraced, it is unsubscribed again: one subscription left.)
3. *replay*: from just before the server resets the connection (``SO_LINGER`` 0, then
   ``transport.abort()``: a TCP RST) until the server has received, on a new connection,
   a SUBSCRIBE for every recorded subscription (one). Detection, supervision, restart,
   reconnection, replay; the consumer sees the ``Disconnected``/``Reconnected`` events
   meanwhile, as a real consumer would.

The server never answers a SUBSCRIBE, so no other frame crosses a flow. The garbage
collector is off while a flow is traced. One warm-up round (not reported) goes first; then
``--rounds`` rounds, reported as the median, with min-max and ``stable`` when every round
gave the same figures. The module list is the most frequent one among the rounds.

To compare before and after a refactor, run it at both commits (``--json`` keeps the module
lists and paths); ``git`` names the commit and whether the package's files differ from it.
An older commit's package, without touching the checkout::

    mkdir /tmp/before && git archive COMMIT networkpype | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python bench/flows.py --json

Exit status: 0 on success, 1 when a flow did not complete in time, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dis
import gc
import inspect
import itertools
import json
import logging
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any, NoReturn

import pykka
from aiohttp import WSMsgType, web

import networkpype
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse

FLOWS = ("frame", "subscribe", "replay")
DEFINITIONS = {
    "frame": "server writes one text frame -> the consumer's async-for body has it",
    "subscribe": "await manager.subscribe(req) -> it returned and the server has the frame",
    "replay": "server resets the connection (RST) -> server has every SUBSCRIBE on a new one",
}
WAIT_TIMEOUT = 10.0  # seconds for any one step of a round
SETTLE = 0.02  # seconds of quiet before a flow starts (timers, teardown of the last step)
TOPIC = "flowusdt@trade"
EXTRA_TOPIC = "flowusdt@depth"

_GENERATOR_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ITERABLE_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
)
_CREATE_TASK_CODE = asyncio.BaseEventLoop.create_task.__code__
_ASYNCIO_DIR = os.path.dirname(os.path.realpath(asyncio.__file__)) + os.sep
_HOP_NAMES = frozenset({"_handle_receive", "on_receive", "on_stop"})
_STOP = object()  # what an actor's on_stop handles, for the hop count


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument on one line instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


# -- the tracer ---------------------------------------------------------------------------------


@dataclass
class Trace:
    """What one traced flow did: its calls, in order, and the rest."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (module, qualified name)
    entries: list[str] = field(default_factory=list)  # modules of calls and resumptions
    control: list[str] = field(default_factory=list)  # ... and of returns to networkpype
    hops: list[str] = field(default_factory=list)  # "Actor<-Message"
    tasks: list[str] = field(default_factory=list)  # "module:function" that created one
    off_loop: int = 0  # networkpype calls on another thread

    def figures(self) -> dict[str, Any]:
        modules = [module for module, _ in self.calls]
        return {
            "modules": len(set(self.entries)),
            "switches": _switches(modules),
            "resume_switches": _switches(self.entries),
            "control_switches": _switches(self.control),
            "calls": len(modules),
            "actor_hops": len(self.hops),
            "tasks": len(self.tasks),
            "off_loop": self.off_loop,
        }

    def module_list(self) -> list[str]:
        """Every module whose code ran (called or resumed), in first-seen order."""
        return list(dict.fromkeys(self.entries))

    def path(self) -> list[str]:
        """The modules in call order, runs of one module collapsed (switches + 1 items)."""
        return _collapse(module for module, _ in self.calls)

    def resume_path(self) -> list[str]:
        """The same with resumptions (+resumes + 1 items)."""
        return _collapse(self.entries)


def _collapse(modules: Iterable[str]) -> list[str]:
    path: list[str] = []
    for module in modules:
        if not path or path[-1] != module:
            path.append(module)
    return path


def _switches(modules: list[str]) -> int:
    return sum(1 for a, b in itertools.pairwise(modules) if a != b)


class Tracer:
    """``sys.setprofile`` around one flow at a time, on the event loop's thread."""

    def __init__(self) -> None:
        package_dir = os.path.dirname(os.path.realpath(networkpype.__file__))
        self._package_dir = package_dir + os.sep
        self._package_root = os.path.dirname(package_dir)
        self._module_of: dict[CodeType, str | None] = {}
        self._first_resume: dict[CodeType, int] = {}
        self._thread = 0
        self._handled: dict[tuple[int, int], Any] = {}
        self.active = False
        self.trace = Trace()

    def start(self) -> None:
        assert not self.active, "one flow at a time"
        self.trace = Trace()
        self._handled = {}
        self._thread = threading.get_ident()
        gc.collect()
        gc.disable()
        self.active = True
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)

    def stop(self) -> None:
        if not self.active:
            return
        sys.setprofile(None)
        threading.setprofile(None)
        self.active = False
        self._handled = {}
        gc.enable()

    def _module(self, code: CodeType) -> str | None:
        filename = os.path.realpath(code.co_filename)
        if not filename.startswith(self._package_dir) or not filename.endswith(".py"):
            return None
        relative = os.path.relpath(filename[:-3], self._package_root).split(os.sep)
        if relative[-1] == "__init__":
            relative.pop()
        return ".".join(relative)

    def _is_fresh(self, frame: FrameType, code: CodeType) -> bool:
        """False when the 'call' event resumes a suspended generator or coroutine."""
        if not code.co_flags & _GENERATOR_FLAGS:
            return True
        first = self._first_resume.get(code)
        if first is None:
            # 3.11+: a frame starts at its first RESUME; a resumption is past it. (Before
            # 3.11, a frame that never ran has f_lasti -1.)
            first = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), -1)
            self._first_resume[code] = first
        return frame.f_lasti <= first

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            if event == "return" and self.active:
                self._returned(frame)
            return
        if not self.active:
            sys.setprofile(None)  # a thread started during a flow, running after it
            return
        code = frame.f_code
        try:
            module = self._module_of[code]
        except KeyError:
            module = self._module_of[code] = self._module(code)
        if code is _CREATE_TASK_CODE:
            self._task_created(frame)
        elif code.co_name in _HOP_NAMES and self._is_fresh(frame, code):
            self._maybe_hop(frame, code.co_name)
        if module is None:
            return
        if threading.get_ident() != self._thread:
            self.trace.off_loop += 1
            return
        self.trace.entries.append(module)
        self.trace.control.append(module)
        if self._is_fresh(frame, code):
            self.trace.calls.append((module, code.co_qualname))

    def _returned(self, frame: FrameType) -> None:
        """Control goes back to the caller (or, for a suspending coroutine, the awaiter)."""
        back = frame.f_back
        if back is None:
            return
        code = back.f_code
        try:
            module = self._module_of[code]
        except KeyError:
            module = self._module_of[code] = self._module(code)
        if module is not None and threading.get_ident() == self._thread:
            self.trace.control.append(module)

    def _task_created(self, frame: FrameType) -> None:
        caller = frame.f_back
        while caller is not None and os.path.realpath(caller.f_code.co_filename).startswith(
            _ASYNCIO_DIR
        ):
            caller = caller.f_back
        if caller is None:
            return
        module = self._module_of.get(caller.f_code) or self._module(caller.f_code)
        if module is not None:
            self.trace.tasks.append(f"{module}:{caller.f_code.co_qualname}")

    def _maybe_hop(self, frame: FrameType, name: str) -> None:
        """One message handled: ``_handle_receive`` (pykka's dispatch) or, when a runtime calls
        it directly, ``on_receive``, counted once per message object; ``on_stop``, a stop."""
        actor = frame.f_locals.get("self")
        if not isinstance(actor, pykka.Actor):
            return
        if name == "on_stop":
            message: Any = _STOP
        else:
            message = frame.f_locals.get("message")
        key = (id(actor), id(message))
        if key in self._handled:
            return  # on_receive under _handle_receive, super().on_receive(message), ...
        self._handled[key] = (actor, message)  # held: their ids are not reused in the flow
        what = "stop" if message is _STOP else type(message).__name__
        self.trace.hops.append(f"{type(actor).__name__}<-{what}")


class Finish:
    """Stops the tracer when ``needed`` conditions have arrived, at the last one's moment."""

    def __init__(self, tracer: Tracer, needed: int) -> None:
        self._tracer = tracer
        self._left = needed
        self.done = asyncio.get_running_loop().create_future()

    def arrive(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._tracer.stop()
            if not self.done.done():
                self.done.set_result(None)


# -- the loopback server ------------------------------------------------------------------------


@dataclass
class ServerConnection:
    index: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    received: list[dict[str, Any]] = field(default_factory=list)


class LoopbackServer:
    """A plain aiohttp WebSocket server on 127.0.0.1 that records what it receives and never
    answers; ``expect(predicate, then)`` calls ``then`` in the handler, synchronously, at the
    first received text frame ``predicate(connection, message)`` accepts."""

    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self._expectations: list[tuple[Callable[[ServerConnection, dict[str, Any]], bool], Any]]
        self._expectations = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expect(
        self,
        predicate: Callable[[ServerConnection, dict[str, Any]], bool],
        then: Callable[[], None],
    ) -> None:
        self._expectations.append((predicate, then))

    async def wait_for(self, predicate: Callable[[ServerConnection, dict[str, Any]], bool]) -> None:
        """Until a text frame ``predicate`` accepts has arrived (already, or from now on)."""
        if any(predicate(conn, m) for conn in self.connections for m in conn.received):
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def arrived() -> None:
            if not done.done():
                done.set_result(None)

        self.expect(predicate, arrived)
        await asyncio.wait_for(done, WAIT_TIMEOUT)

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        transport = request.transport
        assert isinstance(transport, asyncio.Transport)
        conn = ServerConnection(len(self.connections), ws, transport)
        self.connections.append(conn)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            message = json.loads(msg.data)
            conn.received.append(message)
            for entry in list(self._expectations):
                predicate, then = entry
                if predicate(conn, message):
                    self._expectations.remove(entry)
                    then()
        return ws

    @staticmethod
    def reset(conn: ServerConnection) -> None:
        """A TCP RST: linger 0, then abort."""
        sock = conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.transport.abort()


# -- one round ----------------------------------------------------------------------------------


class PassThrough(WebSocketPostProcessor):
    """A post-processor that changes nothing (so the frame flow passes post-processing)."""

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        return response


def _request(method: str, topic: str, request_id: int) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(payload={"method": method, "params": [topic], "id": request_id})


def _is(method: str, topic: str) -> Callable[[ServerConnection, dict[str, Any]], bool]:
    def predicate(_conn: ServerConnection, message: dict[str, Any]) -> bool:
        return message.get("method") == method and message.get("params") == [topic]

    return predicate


class Consumer:
    """``async for item in manager.iter_messages(events=True)``; calls ``on_item`` for each."""

    def __init__(self, manager: Any) -> None:
        self.items: list[Any] = []
        self.on_item: Callable[[Any], None] | None = None
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(manager))

    async def _run(self, manager: Any) -> None:
        async for item in manager.iter_messages(events=True):
            if self.on_item is not None:
                self.on_item(item)
            self.items.append(item)
            self.changed.set()

    async def wait_for(self, predicate: Callable[[Any], bool]) -> Any:
        async with asyncio.timeout(WAIT_TIMEOUT):
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                self.changed.clear()
                await self.changed.wait()


def _data_seq(item: Any) -> Any:
    data = getattr(item, "data", None)
    return data.get("seq") if isinstance(data, dict) else None


async def _send_frame(server: LoopbackServer, seq: int) -> None:
    conn = server.connections[-1]
    await conn.ws.send_str(
        json.dumps({"stream": TOPIC, "data": {"p": "1.5", "q": "2"}, "seq": seq})
    )


async def run_round(factory: ConnectionManagersFactory, server: LoopbackServer) -> dict[str, Trace]:
    tracer = Tracer()
    traces: dict[str, Trace] = {}
    manager = await factory.get_ws_manager()
    await manager.connect(server.url)
    consumer: Consumer | None = None
    try:
        await manager.subscribe(_request("SUBSCRIBE", TOPIC, 1))
        await server.wait_for(_is("SUBSCRIBE", TOPIC))
        consumer = Consumer(manager)
        await _send_frame(server, 0)  # warm-up: the consumer's path has run once
        await consumer.wait_for(lambda item: _data_seq(item) == 0)

        # 1. a frame: the server writes it -> the consumer has it
        await asyncio.sleep(SETTLE)
        finish = Finish(tracer, 1)

        def on_item(item: Any) -> None:
            if _data_seq(item) == 1:
                finish.arrive()

        consumer.on_item = on_item
        tracer.start()
        await _send_frame(server, 1)
        await asyncio.wait_for(finish.done, WAIT_TIMEOUT)
        consumer.on_item = None
        traces["frame"] = tracer.trace

        # 2. a subscribe: subscribe() called -> it returned and the server has the frame
        await asyncio.sleep(SETTLE)
        extra = _request("SUBSCRIBE", EXTRA_TOPIC, 2)
        finish = Finish(tracer, 2)
        server.expect(_is("SUBSCRIBE", EXTRA_TOPIC), finish.arrive)
        tracer.start()
        await manager.subscribe(extra)
        finish.arrive()
        await asyncio.wait_for(finish.done, WAIT_TIMEOUT)
        traces["subscribe"] = tracer.trace
        await manager.unsubscribe(extra, _request("UNSUBSCRIBE", EXTRA_TOPIC, 3))
        await server.wait_for(_is("UNSUBSCRIBE", EXTRA_TOPIC))

        # 3. failure -> replay: a reset -> the server has every SUBSCRIBE on a new connection
        await asyncio.sleep(SETTLE)
        old = server.connections[-1]
        wanted = {json.dumps(r.payload, sort_keys=True) for r in await manager.subscriptions()}
        finish = Finish(tracer, 1)

        def replayed(conn: ServerConnection, _message: dict[str, Any]) -> bool:
            if conn.index <= old.index:
                return False
            got = {json.dumps(m, sort_keys=True) for m in conn.received}
            return wanted <= got

        server.expect(replayed, finish.arrive)
        tracer.start()
        server.reset(old)
        await asyncio.wait_for(finish.done, WAIT_TIMEOUT)
        traces["replay"] = tracer.trace
        # Untraced: the consumer hears of the reconnection before the manager goes.
        await consumer.wait_for(lambda item: type(item).__name__ == "Reconnected")
    finally:
        tracer.stop()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await manager.disconnect()
            if consumer is not None:
                await consumer.task
    return traces


# -- the report ---------------------------------------------------------------------------------


FIGURES = (
    "modules",
    "switches",
    "resume_switches",
    "control_switches",
    "calls",
    "actor_hops",
    "tasks",
    "off_loop",
)


def summarise(rounds: list[dict[str, Trace]]) -> dict[str, Any]:
    flows: dict[str, Any] = {}
    for flow in FLOWS:
        traces = [r[flow] for r in rounds]
        per_round = [t.figures() for t in traces]
        lists = collections.Counter(tuple(t.module_list()) for t in traces)
        modal = list(lists.most_common(1)[0][0])
        # The path, hops and tasks of a round whose module list is the modal one and whose
        # switch count is nearest the median.
        median_switches = statistics.median(f["switches"] for f in per_round)
        typical = min(
            (t for t in traces if t.module_list() == modal),
            key=lambda t: abs(_switches([m for m, _ in t.calls]) - median_switches),
        )
        flows[flow] = {
            "definition": DEFINITIONS[flow],
            **{name: statistics.median(f[name] for f in per_round) for name in FIGURES},
            "range": {
                name: [min(f[name] for f in per_round), max(f[name] for f in per_round)]
                for name in FIGURES
            },
            "stable": all(f == per_round[0] for f in per_round) and len(lists) == 1,
            "module_lists_seen": len(lists),
            "module_list": modal,
            "path": typical.path(),
            "resume_path": typical.resume_path(),
            "hops": typical.hops,
            "tasks_by": dict(collections.Counter(typical.tasks)),
            "rounds": per_round,
        }
    return flows


def _git() -> dict[str, Any]:
    root = os.path.dirname(os.path.dirname(os.path.realpath(networkpype.__file__)))
    info: dict[str, Any] = {"package": os.path.dirname(os.path.realpath(networkpype.__file__))}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "networkpype"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        info.update(commit=head, package_modified=bool(dirty))
    return info


def _cell(value: float, low: float, high: float) -> str:
    text = f"{value:g}"
    return text if low == high else f"{text} ({low:g}-{high:g})"


def print_table(result: dict[str, Any], show_path: bool) -> None:
    git = result["git"]
    where = git.get("commit", "not a git checkout")
    if git.get("package_modified"):
        where += " + local changes"
    print(
        f"networkpype at {git['package']} ({where}); Python {result['python']}; "
        f"{result['rounds']} rounds (+1 warm-up), median (min-max when they differ)"
    )
    print()
    header = (
        "flow",
        "modules",
        "switches",
        "+resumes",
        "+returns",
        "calls",
        "actor hops",
        "tasks",
        "",
    )
    rows = [header]
    for flow, f in result["flows"].items():
        rows.append(
            (
                flow,
                *(_cell(f[n], *f["range"][n]) for n in FIGURES[:7]),
                "stable" if f["stable"] else f"VARIES ({f['module_lists_seen']} module lists)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print(
        "switches: between consecutive calls; +resumes: calls and resumed coroutines;"
        " +returns: every move of control between modules"
    )
    print()
    for flow, f in result["flows"].items():
        print(f"{flow}: {f['definition']}")
        print(f"  modules ({len(f['module_list'])}): {', '.join(f['module_list'])}")
        if f["hops"]:
            print(f"  actor hops: {', '.join(f['hops'])}")
        if f["tasks_by"]:
            print("  tasks by: " + ", ".join(f"{k} x{v}" for k, v in f["tasks_by"].items()))
        if f["off_loop"]:
            print(f"  calls on other threads: {f['off_loop']:g}")
        if show_path:
            print(f"  path of calls ({len(f['path'])}): {' > '.join(f['path'])}")
            resumes = f["resume_path"]
            print(f"  path with resumptions ({len(resumes)}): {' > '.join(resumes)}")
        print()


async def main_async(rounds: int, deadline: float) -> dict[str, Any]:
    logging.getLogger().addHandler(logging.NullHandler())  # records still made, not printed
    server = LoopbackServer()
    await server.start()
    factory = ConnectionManagersFactory(
        throttler=AsyncThrottler([RateLimit("default", 100, 1.0)]),
        ws_post_processors=[PassThrough()],
    )
    try:
        async with asyncio.timeout(deadline):
            await run_round(factory, server)  # warm-up: first-use paths, not reported
            measured = [await run_round(factory, server) for _ in range(rounds)]
    finally:
        await factory.close()
        await server.close()
    return {
        "python": sys.version.split()[0],
        "git": _git(),
        "rounds": rounds,
        "flows": summarise(measured),
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=_positive_int, default=5, help="measured rounds")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds for the run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--path", action="store_true", help="print each flow's module path")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(main_async(args.rounds, args.deadline))
    except TimeoutError:
        print("a flow did not complete in time", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
