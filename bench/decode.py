"""Decoding a trade message: msgspec into a dict (the default) against straight into a typed
Struct (``decoder=Trade`` on a connection or manager), in one run.

    .venv/bin/python bench/decode.py [--messages 200000] [--reps 5]

Prints the median decodes per second of each over interleaved repetitions and the ratio
typed/dict (issue: typed about 1.7x faster for a trade message).
"""

from __future__ import annotations

import argparse
import statistics
import time

import msgspec

from networkpype.demo.market import SyntheticMarket
from networkpype.websocket.decoding import JSONOrTextDecoder, TypedDecoder


class Trade(msgspec.Struct):
    """The fields of the demo's trade event (Binance's names)."""

    e: str
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    frame = msgspec.json.encode(SyntheticMarket("BTCUSDT").trade())
    as_dict, typed = JSONOrTextDecoder(), TypedDecoder(Trade)
    assert isinstance(typed.decode_text(frame), Trade)
    rates: dict[str, list[float]] = {"dict": [], "typed": []}
    for _ in range(args.reps):
        for name, decoder in (("dict", as_dict), ("typed", typed)):
            decode = decoder.decode_text
            started = time.perf_counter()
            for _ in range(args.messages):
                decode(frame)
            rates[name].append(args.messages / (time.perf_counter() - started))
    d, t = statistics.median(rates["dict"]), statistics.median(rates["typed"])
    print(f"trade message of {len(frame)} bytes, {args.messages} decodes x {args.reps} reps")
    print(f"dict  (decoder='json'):  {d:12,.0f} /s")
    print(f"typed (decoder=Trade):   {t:12,.0f} /s")
    print(f"typed/dict: {t / d:.2f}x")


if __name__ == "__main__":
    main()
