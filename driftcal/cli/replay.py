"""``driftcal replay``: a DAQ-like producer that sends the events of a ``.npy`` file to a Kafka topic."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from driftcal.cli.options import positive_float, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``replay``."""
    parser = subparsers.add_parser(
        "replay",
        help="send the events of a .npy file to a Kafka topic as event batches",
        description="Send (N, *cells) energies or (N, P) tracker hits to a topic as driftcal.events/1.",
    )
    parser.add_argument("--input", type=Path, required=True, metavar="FILE.npy", help="events to send")
    parser.add_argument("--topic", required=True, metavar="T", help="destination topic")
    parser.add_argument("--bootstrap", default="localhost:9092", metavar="B", help="default localhost:9092")
    parser.add_argument(
        "--batch-size", type=positive_int, default=500, metavar="N", help="events per message"
    )
    parser.add_argument(
        "--rate", type=positive_float, metavar="EV_PER_S", help="events/s (default: no limit)"
    )
    parser.add_argument("--detector", default="calo", help="detector name in the header (default calo)")
    parser.add_argument("--module", default="0", help="module in the header (default 0)")
    parser.add_argument("--first-event", type=int, default=0, metavar="N", help="number of the first event")
    parser.add_argument("--run", type=int, metavar="R", help="run number in the header")
    parser.add_argument(
        "--layout", choices=("auto", "dense", "csr", "hits"), default="auto",
        help="auto: hits for (N, P) arrays, CSR when mostly zeros, else dense",
    )  # fmt: skip
    return parser


async def _send(args: argparse.Namespace, events) -> int:  # noqa: ANN001
    from driftcal.stream.kafka import KafkaSink
    from driftcal.stream.replay import replay

    sink = KafkaSink(args.bootstrap)
    await sink.start()
    try:
        return await replay(
            events, sink, args.topic, detector=args.detector, module=args.module, batch_size=args.batch_size,
            rate=args.rate, layout=args.layout, first_event=args.first_event, run=args.run,
        )  # fmt: skip
    finally:
        await sink.stop()


def run(args: argparse.Namespace) -> int:
    """Load, validate and send."""
    import logging

    from driftcal.io import load_array

    # aiokafka logs connection failures itself; the CLI reports them in its one error line
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    events = load_array(args.input, name="input")
    if events.ndim < 2:
        raise ValueError(f"input file '{args.input}' must hold (N, ...) events, got shape {events.shape}")
    if args.layout == "auto" and events.ndim == 2:
        args.layout = "hits"
    sent = asyncio.run(_send(args, events))
    print(f"driftcal replay: sent {sent} events to {args.topic} at {args.bootstrap}", file=sys.stderr)
    return 0
