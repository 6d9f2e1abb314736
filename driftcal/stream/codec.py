"""Event batches on the wire: schema ``driftcal.events/1`` in the safetensors layout.

A blob is ``u64 little-endian header length N`` · ``N bytes of JSON`` · raw little-endian arrays. The JSON
maps each array name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the end
of the header) and holds the batch header as string values under ``__metadata__``: ``schema``,
``detector``, ``module``, ``run``, ``first_event``, ``n_events``, ``first_time``, ``last_time`` and
``layout`` (``dense``, ``csr`` or ``hits``). Arrays by layout:

- ``dense``: ``energy`` F32 ``(n, *cells)``;
- ``csr``: ``offsets`` I64 ``(n + 1,)``, ``cell`` I32 or I64 ``(nnz,)`` (flat cell index),
  ``energy`` F32 ``(nnz,)``;
- ``hits``: ``hits`` F32 ``(n, P)``.

Decoding checks every declared size against the blob *before* touching data, then returns zero-copy
NumPy views (dense and hits) of the received bytes. Every rejection is a :class:`CodecError` whose
``reason`` is a short label (bounded set, for the ``driftcal_messages_rejected_total{reason}`` counter).
No pickle anywhere. See ``docs/wire-format.md`` for a byte-level example.

>>> batch = EventBatch(detector="calo", module="0", first_event=0, energy=np.ones((2, 1, 2, 2), np.float32))
>>> spec = DetectorSpec(cells=(1, 2, 2))
>>> decode(encode(batch), spec).energy.shape
(2, 1, 2, 2)
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np
import safetensors.numpy as st

from driftcal.errors import InputError

SCHEMA = "driftcal.events/1"
MAX_HEADER_BYTES = 1 << 20
_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}
_LAYOUT_ARRAYS = {"dense": {"energy"}, "csr": {"offsets", "cell", "energy"}, "hits": {"hits"}}
REASONS = (
    "empty", "truncated", "bad_header", "unknown_schema", "dtype", "shape", "size", "non_finite",
    "below_noise_floor", "detector",
)  # fmt: skip


class CodecError(InputError):
    """A blob that cannot be accepted; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class DetectorSpec:
    """What a batch must match: the cell shape (calorimeter) or the number of planes (tracker)."""

    cells: tuple[int, ...] | None = None
    planes: int | None = None
    noise: float | None = None  # readings below −5σ (or below 0 without σ) are rejected
    detector: str | None = None  # when set, the batch's detector must equal it


@dataclass
class EventBatch:
    """A decoded batch: header fields plus exactly one of dense ``energy``, CSR arrays or ``hits``."""

    detector: str
    module: str
    first_event: int
    run: int | None = None
    first_time: float | None = None
    last_time: float | None = None
    energy: np.ndarray | None = None
    hits: np.ndarray | None = None
    offsets: np.ndarray | None = None
    cell: np.ndarray | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def layout(self) -> str:
        if self.hits is not None:
            return "hits"
        return "csr" if self.offsets is not None else "dense"

    @property
    def n_events(self) -> int:
        if self.hits is not None:
            return int(self.hits.shape[0])
        if self.offsets is not None:
            return int(self.offsets.shape[0] - 1)
        return int(self.energy.shape[0]) if self.energy is not None else 0

    def dense(self, cells: tuple[int, ...]) -> np.ndarray:
        """Events as a dense float32 ``(n, *cells)`` array (a copy only for CSR)."""
        if self.layout != "csr":
            return self.energy if self.energy is not None else self.hits  # type: ignore[return-value]
        out = np.zeros((self.n_events, int(np.prod(cells))), dtype=np.float32)
        rows = np.repeat(np.arange(self.n_events), np.diff(self.offsets))
        out[rows, self.cell] = self.energy
        return out.reshape(self.n_events, *cells)


def encode(batch: EventBatch) -> bytes:
    """Serialize a batch (little-endian, safetensors layout)."""
    arrays = {
        "dense": {"energy": batch.energy},
        "csr": {"offsets": batch.offsets, "cell": batch.cell, "energy": batch.energy},
        "hits": {"hits": batch.hits},
    }[batch.layout]
    meta = {
        "schema": SCHEMA,
        "layout": batch.layout,
        "detector": batch.detector,
        "module": batch.module,
        "first_event": str(batch.first_event),
        "n_events": str(batch.n_events),
    }
    for key in ("run", "first_time", "last_time"):
        value = getattr(batch, key)
        if value is not None:
            meta[key] = repr(value)
    return st.save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta)


def _header(blob: bytes | memoryview) -> tuple[dict, int]:
    if len(blob) == 0:
        raise CodecError("empty", "empty message")
    if len(blob) < 8:
        raise CodecError("truncated", f"{len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", blob, 0)
    if n > MAX_HEADER_BYTES:
        raise CodecError("size", f"declared header of {n} bytes exceeds {MAX_HEADER_BYTES}")
    if 8 + n > len(blob):
        raise CodecError("truncated", f"declared header of {n} bytes but only {len(blob) - 8} follow")
    try:
        header = json.loads(bytes(blob[8 : 8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError("bad_header", f"header is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise CodecError("bad_header", "header has no __metadata__ object")
    return header, 8 + n


def _int(meta: dict, key: str, *, required: bool = True) -> int | None:
    if key not in meta:
        if required:
            raise CodecError("bad_header", f"missing header field {key!r}")
        return None
    try:
        return int(meta[key])
    except (TypeError, ValueError):
        raise CodecError("bad_header", f"header field {key!r}={meta[key]!r} is not an integer") from None


def _float(meta: dict, key: str) -> float | None:
    if key not in meta:
        return None
    try:
        return float(meta[key])
    except (TypeError, ValueError):
        raise CodecError("bad_header", f"header field {key!r}={meta[key]!r} is not a number") from None


def _arrays(blob: bytes | memoryview, header: dict, start: int, names: set[str]) -> dict[str, np.ndarray]:
    body = len(blob) - start
    out = {}
    for name in names:
        entry = header.get(name)
        if not isinstance(entry, dict):
            raise CodecError("bad_header", f"array {name!r} missing")
        dtype = _DTYPES.get(entry.get("dtype")) if isinstance(entry.get("dtype"), str) else None
        if dtype is None:
            raise CodecError("dtype", f"array {name!r} has unsupported dtype {entry.get('dtype')!r}")
        shape, offs = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)):
            raise CodecError("shape", f"array {name!r} has an invalid shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise CodecError("bad_header", f"array {name!r} has invalid data_offsets {offs!r}")
        begin, end = offs
        size = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on hostile shapes
        if not 0 <= begin <= end or end - begin != size:
            raise CodecError("size", f"array {name!r}: offsets {offs} do not hold shape {shape} of {dtype}")
        if end > body:
            raise CodecError("size", f"array {name!r} declares {end} bytes of data but the blob holds {body}")
        out[name] = np.frombuffer(blob, dtype=dtype, count=size // dtype.itemsize, offset=start + begin)
        out[name] = out[name].reshape(shape)
    return out


def _check_values(name: str, values: np.ndarray, spec: DetectorSpec, *, energies: bool) -> None:
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise CodecError("non_finite", f"{name} has {bad} NaN/Inf values")
    if energies and values.size:
        floor = -5.0 * spec.noise if spec.noise else 0.0
        low = float(values.min())
        if low < floor:
            raise CodecError(
                "below_noise_floor", f"{name} minimum {low:.4g} is below the noise floor {floor:.4g}"
            )


def decode(blob: bytes | memoryview, spec: DetectorSpec) -> EventBatch:
    """Parse and validate a blob against the configured detector; raises :class:`CodecError`."""
    header, start = _header(blob)
    meta = header["__metadata__"]
    if meta.get("schema") != SCHEMA:
        raise CodecError("unknown_schema", f"schema {meta.get('schema')!r}, expected {SCHEMA!r}")
    layout = meta.get("layout")
    if not isinstance(layout, str) or layout not in _LAYOUT_ARRAYS:
        raise CodecError("bad_header", f"unknown layout {layout!r}")
    if spec.detector is not None and meta.get("detector") != spec.detector:
        raise CodecError(
            "detector", f"batch for detector {meta.get('detector')!r}, expected {spec.detector!r}"
        )
    n = _int(meta, "n_events")
    first = _int(meta, "first_event")
    if n is None or n <= 0:
        raise CodecError("empty", "batch declares no events")
    if first is not None and not 0 <= first < 1 << 63:
        raise CodecError("bad_header", f"first_event {first} is outside [0, 2**63)")
    arrays = _arrays(blob, header, start, _LAYOUT_ARRAYS[layout])
    batch = EventBatch(
        detector=str(meta.get("detector", "")),
        module=str(meta.get("module", "")),
        first_event=int(first or 0),
        run=_int(meta, "run", required=False),
        first_time=_float(meta, "first_time"),
        last_time=_float(meta, "last_time"),
        meta={k: str(v) for k, v in meta.items()},
    )
    if layout == "hits":
        if spec.planes is None:
            raise CodecError("detector", "hits batch sent to a calorimeter")
        hits = arrays["hits"]
        if hits.ndim != 2 or hits.shape != (n, spec.planes):
            raise CodecError("shape", f"hits shape {hits.shape}, expected {(n, spec.planes)}")
        _check_values("hits", hits, spec, energies=False)
        batch.hits = hits
        return batch
    if spec.cells is None:
        raise CodecError("detector", "energy batch sent to a tracker")
    if layout == "dense":
        energy = arrays["energy"]
        if energy.shape != (n, *spec.cells):
            raise CodecError("shape", f"energy shape {energy.shape}, expected {(n, *spec.cells)}")
        _check_values("energy", energy, spec, energies=True)
        batch.energy = energy
        return batch
    offsets, cell, energy = arrays["offsets"], arrays["cell"], arrays["energy"]
    n_cells = int(np.prod(spec.cells))
    if offsets.shape != (n + 1,) or cell.ndim != 1 or energy.shape != cell.shape:
        raise CodecError(
            "shape", f"CSR arrays offsets {offsets.shape}, cell {cell.shape}, energy {energy.shape}"
        )
    if offsets[0] != 0 or offsets[-1] != cell.shape[0] or np.any(np.diff(offsets) < 0):
        raise CodecError("shape", "CSR offsets must start at 0, never decrease and end at nnz")
    if cell.size and (int(cell.min()) < 0 or int(cell.max()) >= n_cells):
        raise CodecError("shape", f"CSR cell index outside [0, {n_cells})")
    _check_values("energy", energy, spec, energies=True)
    batch.offsets, batch.cell, batch.energy = offsets, cell, energy
    return batch
