"""``networkpype bench``: run the benchmark programs of a source checkout and show their tables.

The programs are ``bench/ws_throughput.py``, ``bench/decode.py`` and, when present,
``bench/fanin_memory.py``, each in a process of its own (the current interpreter), its
output passed through. ``--quick`` makes each a tiny run: a program whose ``--help`` offers
``--quick`` gets it, the others get the small sizes listed in ``QUICK_OPTIONS``.

Options ``bench`` does not know are passed on to the programs it runs; without ``--only``
they select ``ws_throughput`` alone (``networkpype bench --messages 2000 --reps 1`` works as
it always did). The exit status is the largest of the programs'.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["PROGRAMS", "QUICK_OPTIONS", "add_parser", "run"]

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
PROGRAMS = ("ws_throughput", "decode", "fanin_memory")
"""In the order they run; a program missing from the checkout is skipped."""
QUICK_OPTIONS: dict[str, tuple[str, ...]] = {
    "ws_throughput": ("--messages", "2000", "--reps", "1", "--connections", "1,10"),
    "decode": ("--messages", "20000", "--reps", "1"),
}
"""Tiny sizes for programs whose ``--help`` does not offer ``--quick``."""


def _names(text: str) -> list[str]:
    names = [n.strip().removesuffix(".py") for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROGRAMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown program {', '.join(unknown) or text!r}; choose from {', '.join(PROGRAMS)}"
        )
    return names


def add_parser(commands: Any) -> None:
    """Add ``bench`` to the ``networkpype`` sub-commands."""
    parser = commands.add_parser(
        "bench",
        help="run the benchmark programs under bench/ and print their tables",
        description="Run bench/ws_throughput.py, bench/decode.py and bench/fanin_memory.py "
        "(when present). Other options are passed on to the programs run; without --only "
        "they go to ws_throughput alone (see `python bench/ws_throughput.py --help`).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks that they work")
    parser.add_argument(
        "--only",
        type=_names,
        metavar="NAMES",
        help=f"comma-separated programs to run, of {', '.join(PROGRAMS)}",
    )
    parser.set_defaults(run=run, passes_options_on=True)


def run(args: argparse.Namespace) -> int:
    """Run the selected programs one after the other; returns the largest exit status."""
    if not BENCH_DIR.is_dir():
        print(
            f"networkpype bench: error: {BENCH_DIR} not found (bench runs from a source checkout)",
            file=sys.stderr,
        )
        return 2
    extra: list[str] = args.extra
    names = args.only or (["ws_throughput"] if extra else list(PROGRAMS))
    status = 0
    for name in names:
        script = BENCH_DIR / f"{name}.py"
        if not script.is_file():
            print(f"== {name}: not in this checkout, skipped", flush=True)
            continue
        options = [*(_quick_options(script, name) if args.quick else ()), *extra]
        print(f"== {name} {' '.join(options)}".rstrip(), flush=True)
        try:
            code = subprocess.call([sys.executable, str(script), *options])
        except KeyboardInterrupt:
            return 130
        if code < 0:  # killed by a signal
            code = 128 - code
        if code != 0:
            print(f"== {name} exited with status {code}", flush=True)
        status = max(status, code)
    return status


def _quick_options(script: Path, name: str) -> tuple[str, ...]:
    help_text = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    if "--quick" in help_text:
        return ("--quick",)
    return QUICK_OPTIONS.get(name, ())
