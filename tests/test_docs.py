"""The guide in docs/ is checked against the code.

Every fenced block of every page is one of:

* ```python: compiled (top-level ``await`` allowed) and its imports executed. When the line
  before the fence is ``<!-- run -->`` it is also executed, as the body of an async function,
  against a ``DemoServer`` started for it: the block reads the server's address from ``URL``
  and its port from ``PORT``. ``<!-- run: thread -->`` executes a synchronous block in a
  worker thread instead (a host program that runs no event loop). A run must finish within
  ``RUN_TIMEOUT`` and leave no actor running (but throttler actors, which live as long as
  their event loop by design).
* ```sh: every command names a dev.py command, an existing script or an importable module,
  and every ``--option`` it uses appears in that command's ``--help``.

Besides the blocks: every table whose header starts ``| Setting | Default |`` is compared with
the defaults in the code, every ``examples/*.py`` named exists, and every relative link
resolves to a page and a heading.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pykka import ActorRegistry

from networkpype.actors import stop_actor
from networkpype.actors.throttler import ThrottlerActor
from networkpype.books import BinanceSpotRules, BookSettings
from networkpype.bus import (
    BusConsumer,
    CollectorSettings,
    LeaseSettings,
    PublishSettings,
    StreamSettings,
)
from networkpype.demo import DemoServer
from networkpype.facade import NetworkPype
from networkpype.factory import ConnectionManagersFactory, ConnectionsFactory
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.supervisor.supervisor import SupervisorActor
from networkpype.testing import FaultProxy
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.sharded import ShardedWebSocketManager

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = (
    "index.md",
    "websocket.md",
    "supervision.md",
    "throttling.md",
    "sharding.md",
    "books.md",
    "embedding.md",
    "migrating.md",
    "testing.md",
    "performance.md",
    "deployment.md",
    "architecture.md",
)
RUN_TIMEOUT = 20.0  # seconds for one runnable block; most take well under one
DEMO_RATE = 100.0  # events per second per topic of the demo server the blocks run against

# The names a "Setting" cell of a defaults table may start with.
SETTING_OWNERS: dict[str, Any] = {
    obj.__name__: obj
    for obj in (
        AsyncThrottler,
        BackoffPolicy,
        BinanceCodec,
        BinanceSpotRules,
        BookSettings,
        BusConsumer,
        CollectorSettings,
        ConnectionManagersFactory,
        ConnectionsFactory,
        DemoServer,
        FaultProxy,
        LeaseSettings,
        LinkedLimitWeightPair,
        NetworkPype,
        PublishSettings,
        RateLimit,
        RestartPolicy,
        ShardedWebSocketManager,
        StreamSettings,
        SupervisorActor,
        WebSocketConnection,
        WebSocketManager,
    )
}


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    marker: str | None  # the HTML comment on the line before the fence, if any
    text: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^`\s]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<marker>.*?)\s*-->\s*$")


def parse_blocks(page: str) -> list[Block]:
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = len(opening["indent"])
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{page}:{i + 1}: unclosed code block")
        previous = lines[i - 1] if i > 0 else ""
        found = _MARKER.match(previous)
        body = "\n".join(line[indent:] for line in lines[i + 1 : end])
        blocks.append(Block(page, i + 1, opening["lang"], found and found["marker"], body))
        i = end + 1
    return blocks


EXISTING = [page for page in PAGES if (DOCS / page).is_file()]  # all of them, once written
ALL_BLOCKS = [block for page in EXISTING for block in parse_blocks(page)]
PYTHON = [b for b in ALL_BLOCKS if b.lang == "python"]
RUNNABLE = [b for b in PYTHON if b.marker in ("run", "run: thread")]
SHELL = [b for b in ALL_BLOCKS if b.lang == "sh"]


def _ids(blocks: list[Block]) -> list[str]:
    return [b.name for b in blocks]


def compile_block(block: Block) -> Any:
    # Line numbers in tracebacks point into the page.
    source = "\n" * block.line + block.text
    return compile(source, str(DOCS / block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


# -- the pages and their blocks ----------------------------------------------------------------


def test_every_page_is_there() -> None:
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(PAGES)


def test_every_block_is_checked() -> None:
    unchecked = [
        f"{b.name}: ```{b.lang or '(no language)'}"
        for b in ALL_BLOCKS
        if b.lang not in ("python", "sh", "text")  # text: a picture, nothing to run
        or (b.lang == "python" and b.marker not in (None, "run", "run: thread"))
        or (b.lang == "sh" and b.marker is not None)
    ]
    assert not unchecked, "blocks this test does not know how to check: " + ", ".join(unchecked)


def test_enough_blocks_run() -> None:
    per_page = {page: sum(b.page == page for b in RUNNABLE) for page in PAGES}
    required = {
        "websocket.md": 3,  # the quickstart, sending, decoding, ...
        "supervision.md": 5,  # events, escalation, replay, liveness, the arithmetic, ...
        "throttling.md": 3,
        "sharding.md": 1,
        "books.md": 2,
        "embedding.md": 2,
        "migrating.md": 1,
        "testing.md": 2,
    }
    short = {page: n for page, n in required.items() if per_page[page] < n}
    assert not short, f"too few runnable blocks (page: required): {short}; have {per_page}"


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_compiles_and_imports(block: Block) -> None:
    compile_block(block)
    imports: list[ast.stmt] = [
        node for node in ast.parse(block.text).body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=imports, type_ignores=[]), block.name, "exec"), namespace)


@pytest.fixture
async def demo_server() -> Any:
    async with DemoServer(rate=DEMO_RATE, lifetime=120.0) as server:
        yield server


@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
async def test_runnable_block(block: Block, demo_server: DemoServer) -> None:
    code = compile_block(block)
    namespace: dict[str, Any] = {
        "__name__": f"docs.{block.page.removesuffix('.md')}",
        "URL": demo_server.url,
        "PORT": demo_server.port,
    }
    before = set(ActorRegistry.get_all())
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            if block.marker == "run: thread":
                await asyncio.to_thread(exec, code, namespace)
            else:
                result = eval(code, namespace)
                if inspect.iscoroutine(result):
                    await result
        left = {
            ref
            for ref in set(ActorRegistry.get_all()) - before
            if ref.actor_class is not ThrottlerActor
        }
        assert not left, f"{block.name} left actors running: {left}"
    finally:
        for ref in set(ActorRegistry.get_all()) - before:
            await stop_actor(ref)


# -- shell commands ----------------------------------------------------------------------------


def _dev_commands() -> dict[str, Callable[..., Any]]:
    spec = importlib.util.spec_from_file_location("networkpype_dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.COMMANDS)


@cache
def _help(*command: str) -> str:
    proc = subprocess.run(
        [*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"{' '.join(command)} --help failed:\n{proc.stderr}"
    return proc.stdout


def _positional(tokens: list[str]) -> list[str]:
    """The leading tokens that are not options (sub-commands)."""
    words = []
    for token in tokens:
        if token.startswith("-"):
            break
        words.append(token)
    return words


def check_command(line: str) -> None:
    tokens = shlex.split(line, comments=True)
    if not tokens:
        return
    program, args = tokens[0], tokens[1:]
    help_command: tuple[str, ...] | None = None
    if program in ("python3", "python") and args[:1] == ["dev.py"]:
        command = args[1]
        assert command in _dev_commands(), f"dev.py has no command {command!r}"
        options = args[2:]
        if command == "demo":
            help_command = (sys.executable, "-m", "networkpype", "demo")
        elif command == "bench":
            help_command = (sys.executable, str(ROOT / "bench" / "ws_throughput.py"))
        elif command == "test":
            help_command = (sys.executable, "-m", "pytest")
    elif program.endswith(("python", "python3")) and args[:1] == ["-m"]:
        module = args[1]
        assert importlib.util.find_spec(module) is not None, f"no module {module!r}"
        words = _positional(args[2:])
        options = args[2 + len(words) :]
        help_command = (sys.executable, "-m", module, *words)
    elif program.endswith(("python", "python3")) and args and args[0].endswith(".py"):
        assert (ROOT / args[0]).is_file(), f"no script {args[0]!r}"
        options = args[1:]
        help_command = (sys.executable, str(ROOT / args[0]))
    elif program.endswith(("pytest", "ruff", "mypy")):
        paths = [a for a in args if not a.startswith("-") and "/" in a]
        for path in paths:
            assert (ROOT / path.split("::")[0]).exists(), f"no path {path!r}"
        options = []
    else:
        raise AssertionError(f"unknown command {program!r} in {line!r}")
    long_options = [o.split("=", 1)[0] for o in options if o.startswith("--")]
    if long_options:
        assert help_command is not None
        text = _help(*help_command)
        for option in long_options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
                f"{option} is not an option of {' '.join(help_command)}"
            )


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_block_commands_exist(block: Block) -> None:
    for line in block.text.splitlines():
        check_command(line)


# -- defaults tables ---------------------------------------------------------------------------


def _default_of(setting: str) -> Any:
    """The value in the code of a "Setting" cell: ``Owner.attr``, ``Owner(param)`` or
    ``Owner.method(param)``."""
    call = re.fullmatch(r"(?P<target>[\w.]+)\((?P<param>\w+)\)", setting)
    if call is not None:
        owner_name, _, method = call["target"].partition(".")
        target = SETTING_OWNERS[owner_name]
        if method:
            target = getattr(target, method)
        parameter = inspect.signature(target).parameters[call["param"]]
        assert parameter.default is not inspect.Parameter.empty, f"{setting} has no default"
        return parameter.default
    attribute = re.fullmatch(r"(?P<owner>\w+)\.(?P<attr>\w+)", setting)
    assert attribute is not None, f"cannot resolve setting {setting!r}"
    return getattr(SETTING_OWNERS[attribute["owner"]](), attribute["attr"])


def _matches(literal: str, value: Any) -> bool:
    """``literal`` is a Python literal of the same type and value, ``Owner()`` for an object
    equal to a default-constructed one, or the name of an enum member or function."""
    if literal.endswith("()") and literal[:-2] in SETTING_OWNERS:
        return bool(value == SETTING_OWNERS[literal[:-2]]())
    try:
        expected = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return literal in (getattr(value, "name", None), getattr(value, "__name__", None))
    return type(expected) is type(value) and bool(expected == value)


def _default_tables() -> list[tuple[str, int, str, str]]:
    """(page, line, setting, default literal) for every row of every defaults table."""
    rows = []
    for page in EXISTING:
        lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
        in_table = False
        for number, line in enumerate(lines, start=1):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|"):
                in_table = False
                continue
            if cells[:2] == ["Setting", "Default"]:
                in_table = True
                continue
            if not in_table or set(cells[0]) <= {"-", ":"}:
                continue
            setting = re.match(r"`([^`]+)`", cells[0])
            default = re.match(r"`([^`]+)`", cells[1])
            assert setting and default, f"{page}:{number}: write `setting` | `default`"
            rows.append((page, number, setting[1], default[1]))
    return rows


DEFAULT_ROWS = _default_tables()


def test_defaults_tables_exist() -> None:
    assert {page for page, *_ in DEFAULT_ROWS} >= {"supervision.md", "throttling.md"}


@pytest.mark.parametrize(
    ("page", "line", "setting", "literal"),
    DEFAULT_ROWS,
    ids=[f"{page}:{line}:{setting}" for page, line, setting, _ in DEFAULT_ROWS],
)
def test_documented_default_is_the_code_default(
    page: str, line: int, setting: str, literal: str
) -> None:
    value = _default_of(setting)
    assert _matches(literal, value), f"{page}:{line}: {setting} is {value!r}, not {literal}"


# -- references ----------------------------------------------------------------------------


def _all_text() -> str:
    return "\n".join((DOCS / page).read_text(encoding="utf-8") for page in EXISTING)


def test_examples_named_exist() -> None:
    named = set(re.findall(r"examples/(\w+\.py)", _all_text()))
    present = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert named, "the guide refers to no example"
    assert named <= present, f"no such examples: {sorted(named - present)}"


def _anchors(page: str) -> set[str]:
    anchors = set()
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            text = heading[1].strip().lower().replace("`", "")
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return anchors


def test_relative_links_resolve() -> None:
    broken = []
    for page in EXISTING:
        text = (DOCS / page).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            file, _, anchor = target.partition("#")
            file = file or page
            if not (DOCS / file).is_file():
                broken.append(f"{page}: {target}")
            elif anchor and anchor not in _anchors(file):
                broken.append(f"{page}: {target} (no such heading)")
    assert not broken, broken
