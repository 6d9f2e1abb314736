"""The event-batch codec: round trips and a rejection for every kind of bad blob."""

import json
import struct

import numpy as np
import pytest

from driftcal.stream.codec import REASONS, CodecError, DetectorSpec, EventBatch, decode, encode

CALO = DetectorSpec(cells=(2, 3, 3), noise=0.1)
TRACKER = DetectorSpec(planes=3)


def _dense(n=4, seed=0):
    rng = np.random.default_rng(seed)
    energy = (rng.exponential(1.0, (n, 2, 3, 3)) * (rng.random((n, 2, 3, 3)) < 0.4)).astype(np.float32)
    return EventBatch(detector="calo", module="m1", first_event=100, run=7, first_time=1.5, energy=energy)


def _csr_of(batch):
    flat = batch.energy.reshape(batch.n_events, -1)
    rows, cols = np.nonzero(flat)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=batch.n_events))]).astype(np.int64)
    return EventBatch(
        detector="calo",
        module="m1",
        first_event=100,
        offsets=offsets,
        cell=cols.astype(np.int32),
        energy=flat[rows, cols],
    )


def _rewrite(blob, edit):
    """Edit a valid blob's JSON header (keeping the data) and re-frame it."""
    (n,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob[8 + n :]


def test_dense_round_trip_is_zero_copy_and_keeps_the_header():
    batch = _dense()
    blob = encode(batch)
    out = decode(blob, CALO)
    assert np.array_equal(out.energy, batch.energy)
    assert (out.detector, out.module, out.first_event, out.run, out.first_time) == ("calo", "m1", 100, 7, 1.5)
    assert out.energy.base is not None and not out.energy.flags.owndata  # a view on the received bytes


def test_csr_round_trip_gives_the_same_dense_events():
    batch = _dense(6, seed=1)
    out = decode(encode(_csr_of(batch)), CALO)
    assert out.layout == "csr" and out.n_events == 6
    assert np.array_equal(out.dense((2, 3, 3)), batch.energy)


def test_tracker_hits_round_trip():
    hits = np.random.default_rng(2).random((5, 3)).astype(np.float32)
    out = decode(encode(EventBatch(detector="trk", module="0", first_event=0, hits=hits)), TRACKER)
    assert np.array_equal(out.hits, hits)


def _bad_cases():
    good = encode(_dense())
    nan = _dense()
    nan.energy[0, 0, 0, 0] = np.nan
    neg = _dense()
    neg.energy[1, 1, 1, 1] = -1.0
    wrong_shape = EventBatch(
        detector="calo", module="m1", first_event=0, energy=np.ones((2, 3, 3, 2), np.float32)
    )

    def set_meta(key, value):
        return lambda h: h["__metadata__"].__setitem__(key, value)

    def huge(h):
        h["energy"]["shape"] = [10**9, 2, 3, 3]
        h["energy"]["data_offsets"] = [0, 10**9 * 18 * 4]

    return {
        "empty": (b"", "empty"),
        "truncated length": (good[:5], "truncated"),
        "truncated header": (good[:20], "truncated"),
        "truncated data": (good[:-8], "size"),
        "random bytes": (np.random.default_rng(0).bytes(200), None),
        "header not json": (struct.pack("<Q", 4) + b"{{{{", "bad_header"),
        "huge header length": (struct.pack("<Q", 1 << 40) + b"{}", "size"),
        "unknown schema": (_rewrite(good, set_meta("schema", "driftcal.events/9")), "unknown_schema"),
        "missing n_events": (_rewrite(good, lambda h: h["__metadata__"].pop("n_events")), "bad_header"),
        "wrong dtype": (_rewrite(good, lambda h: h["energy"].__setitem__("dtype", "F16")), "dtype"),
        "huge declared size": (_rewrite(good, huge), "size"),
        "wrong shape": (encode(wrong_shape), "shape"),
        "nan": (encode(nan), "non_finite"),
        "negative energy": (encode(neg), "below_noise_floor"),
        "tracker batch to calorimeter": (
            encode(EventBatch(detector="t", module="0", first_event=0, hits=np.ones((2, 4), np.float32))),
            "detector",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_every_bad_blob_is_rejected_with_a_reason(case):
    blob, reason = _bad_cases()[case]
    with pytest.raises(CodecError) as info:
        decode(blob, CALO)
    assert info.value.reason in REASONS
    if reason is not None:
        assert info.value.reason == reason, str(info.value)


def test_csr_with_out_of_range_cell_is_rejected():
    batch = _csr_of(_dense())
    batch.cell = batch.cell.copy()
    batch.cell[0] = 99
    with pytest.raises(CodecError, match="cell index"):
        decode(encode(batch), CALO)


def test_detector_name_is_checked_when_configured():
    with pytest.raises(CodecError) as info:
        decode(encode(_dense()), DetectorSpec(cells=(2, 3, 3), detector="other"))
    assert info.value.reason == "detector"
