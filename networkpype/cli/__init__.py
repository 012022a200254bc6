"""The ``networkpype`` command (also ``python -m networkpype``).

``networkpype demo [--duration S] [--topics N|LIST] [--connections N] [--seed N] [--rate R]
[--no-tui] [--quiet] [-v]``
    Hundreds of topics of a loopback exchange simulator through the sharded, supervised
    manager, behind a fault-injecting proxy; a seeded schedule resets, blackholes, refuses
    (429), closes (1008) and rotates connections; a live view (``rich``) or plain lines
    (``--no-tui``, automatic when stdout is not a terminal) show it, and a summary checks that
    no topic was lost and every gap was reported. See :mod:`networkpype.cli.demo`.

``networkpype stream URL [--subscribe JSON]... [--topic NAME]... [options]``
    A supervised subscription to a real endpoint; each message one JSON line on stdout,
    lifecycle events on stderr. See :mod:`networkpype.cli.stream`.

``networkpype bench [--quick] [--only NAMES] [options]``
    The benchmark programs under ``bench/``. See :mod:`networkpype.cli.bench`.

``networkpype collect URL --topics N|@FILE|LIST [options]`` and ``networkpype consume
[options]``
    A collector of the market-data bus on NATS JetStream, and a consumer reading it (the
    ``nats`` extra). See :mod:`networkpype.cli.collect`, :mod:`networkpype.cli.consume`.

Invalid arguments exit with status 2 and a one-line error; Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from networkpype.cli import bench, collect, consume, demo, stream
from networkpype.cli._args import ArgumentParser

__all__ = ["main"]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="networkpype",
        description="networkpype: the fault-injection demo, a streaming client, the benchmarks.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{demo,stream,bench,collect,consume}",
        parser_class=ArgumentParser,
    )
    demo.add_parser(commands)
    stream.add_parser(commands)
    bench.add_parser(commands)
    collect.add_parser(commands)
    consume.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``networkpype`` console script; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if extra and not getattr(args, "passes_options_on", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return status
