"""A seeded corpus of malformed event batches, each with the reason the codec must give."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator

import numpy as np

from driftcal.stream.codec import encode
from driftcal.stream.replay import to_batch

KINDS = (
    "empty", "random", "truncated", "bad_header", "unknown_schema", "dtype", "shape", "nan", "inf",
    "negative", "huge",
)  # fmt: skip
REASON = {
    "empty": {"empty"}, "random": {"size", "truncated", "bad_header"}, "truncated": {"truncated", "size"},
    "bad_header": {"bad_header"}, "unknown_schema": {"unknown_schema"}, "dtype": {"dtype", "size"},
    "shape": {"shape"}, "nan": {"non_finite"}, "inf": {"non_finite"}, "negative": {"below_noise_floor"},
    "huge": {"size"},
}  # fmt: skip


def good_blob(events: np.ndarray, detector: str, first_event: int) -> bytes:
    return encode(to_batch(events, detector=detector, module="0", first_event=first_event, layout="dense"))


def rewrite_header(blob: bytes, edit: Callable[[dict], None]) -> bytes:
    """``blob`` with its JSON header changed by ``edit`` (the data kept), re-framed."""
    (n,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob[8 + n :]


def bad_blob(kind: str, events: np.ndarray, detector: str, rng: np.random.Generator) -> bytes:
    """One malformed blob of ``kind`` built from valid ``events``."""
    good = good_blob(events, detector, 0)
    if kind == "empty":
        return b""
    if kind == "random":
        return rng.bytes(int(rng.integers(1, 300)))
    if kind == "truncated":
        return good[: int(rng.integers(1, len(good) - 1))]
    if kind == "bad_header":
        return struct.pack("<Q", 12) + b"{not json!!}" + good[20:]
    if kind == "unknown_schema":
        return rewrite_header(good, lambda h: h["__metadata__"].__setitem__("schema", "driftcal.events/9"))
    if kind == "dtype":
        return rewrite_header(good, lambda h: h["energy"].__setitem__("dtype", "F64"))
    if kind == "shape":
        wrong = events.reshape(len(events), -1)[:, :-1].copy()
        return encode(to_batch(wrong, detector=detector, module="0", first_event=0, layout="dense"))
    if kind in ("nan", "inf", "negative"):
        bad = events.copy()
        bad.flat[int(rng.integers(bad.size))] = {"nan": np.nan, "inf": np.inf, "negative": -1e3}[kind]
        return good_blob(bad, detector, 0)
    if kind == "huge":
        shape = [10**9, *events.shape[1:]]

        def grow(h: dict) -> None:
            h["energy"]["shape"] = shape
            h["energy"]["data_offsets"] = [0, int(np.prod(shape)) * 4]

        return rewrite_header(good, grow)
    raise ValueError(kind)


def interleaved(
    good_events: np.ndarray, n_bad: int, *, detector: str, batch: int, seed: int
) -> Iterator[tuple[bytes, str | None]]:
    """Good batches of ``good_events`` with ``n_bad`` malformed blobs among them: ``(blob, kind or None)``."""
    rng = np.random.default_rng(seed)
    n_good = -(-len(good_events) // batch)
    slots = np.zeros(n_good + n_bad, dtype=bool)
    slots[rng.choice(len(slots), n_bad, replace=False)] = True
    sent = 0
    for is_bad in slots:
        if is_bad:
            kind = KINDS[int(rng.integers(len(KINDS)))]
            yield bad_blob(kind, good_events[:2], detector, rng), kind
        else:
            chunk = good_events[sent : sent + batch]
            yield good_blob(chunk, detector, sent), None
            sent += len(chunk)
