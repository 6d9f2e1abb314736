"""PublishPolicy (when to publish) and coefficient_message (what is published)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftcal.coefficients import SCHEMA, CoefficientDocument
from driftcal.stream.publisher import PublishPolicy, coefficient_message


def test_policy_reasons_in_order_of_precedence() -> None:
    p = PublishPolicy(min_change=0.01, heartbeat_s=10.0)
    ones = np.ones((2, 3))
    assert p.due(ones, "tracking", now=0.0) == "first"
    assert p.due(ones, "tracking", now=0.0) == "first"  # due() alone changes nothing
    assert p.sequence == 0
    assert p.mark(ones, "tracking", now=0.0) == 1
    assert p.due(ones, "tracking", now=1.0) is None
    assert p.due(ones + 0.009, "tracking", now=1.0) is None  # below min_change
    moved = ones.copy()
    moved[1, 2] = 0.98
    assert p.due(moved, "tracking", now=1.0) == "change"  # one coefficient is enough
    assert p.due(ones, "alarm", now=1.0) == "status"
    assert p.due(moved, "converged", now=1.0) == "status"  # status wins over change
    assert p.due(ones, "tracking", now=9.99) is None
    assert p.due(ones, "tracking", now=10.0) == "heartbeat"
    assert p.due(moved, "tracking", now=10.0) == "change"  # change wins over heartbeat


def test_policy_sequence_and_reference_point_move_with_each_publication() -> None:
    p = PublishPolicy(min_change=0.05, heartbeat_s=5.0, sequence=41)
    coeffs = np.array([1.0, 1.0])
    assert p.mark(coeffs, "tracking", now=0.0) == 42
    coeffs[0] = 0.9  # the policy keeps its own copy of what was published
    assert p.due(coeffs, "tracking", now=1.0) == "change"
    assert p.mark(coeffs, "tracking", now=1.0) == 43
    assert p.due(coeffs, "tracking", now=2.0) is None  # measured against the last publication
    assert p.due(coeffs, "tracking", now=6.0) == "heartbeat"  # heartbeat counts from the last one
    assert p.mark(coeffs, "alarm", now=6.0) == 44
    assert p.due(coeffs, "alarm", now=7.0) is None and p.due(coeffs, "tracking", now=7.0) == "status"
    assert p.sequence == 44


def test_min_change_zero_publishes_any_change() -> None:
    p = PublishPolicy(min_change=0.0, heartbeat_s=60.0)
    p.mark(np.ones(2), "tracking", now=0.0)
    assert p.due(np.ones(2), "tracking", now=1.0) is None
    assert p.due(np.array([1.0, 1.0 + 1e-9]), "tracking", now=1.0) == "change"


def _message(**overrides: object) -> tuple[CoefficientDocument, object]:
    coeffs = np.array([[0.8, 1.0], [1.2, 0.95]])
    fields: dict = dict(
        topic="out", model="cell-gain", detector="calo", module="m3", sequence=7, status="tracking",
        distance_before=0.4, distance_after=0.05, iov={"first_event": 100, "last_event": 199, "run": 3},
        instance="host-1", metrics={"noise_floor": 0.01, "updates": 2},
    )  # fmt: skip
    fields.update(overrides)
    return coefficient_message(coeffs, **fields)


def test_coefficient_message_round_trips_and_is_keyed_detector_module() -> None:
    doc, message = _message()
    assert message.topic == "out" and message.key == b"calo/m3" and doc.key == "calo/m3"
    parsed = CoefficientDocument.from_json(message.value)
    assert json.loads(message.value)["schema"] == SCHEMA
    np.testing.assert_allclose(parsed.array(), [[0.8, 1.0], [1.2, 0.95]])
    assert parsed.shape == [2, 2] and parsed.model == "cell-gain" and parsed.method == "adversarial"
    assert (parsed.detector, parsed.module, parsed.sequence, parsed.status) == ("calo", "m3", 7, "tracking")
    assert (parsed.distance.before, parsed.distance.after) == (0.4, 0.05)
    assert (parsed.iov.first_event, parsed.iov.last_event, parsed.iov.run) == (100, 199, 3)
    assert parsed.iov.first_time is None
    assert parsed.instance == "host-1" and parsed.metrics == {"noise_floor": 0.01, "updates": 2.0}
    assert parsed == doc


@pytest.mark.parametrize("status", ["converged", "tracking", "alarm"])
def test_every_status_is_accepted(status: str) -> None:
    _, message = _message(status=status)
    assert CoefficientDocument.from_json(message.value).status == status


def test_missing_and_non_finite_values_still_give_a_readable_document() -> None:
    _, message = _message(distance_before=None, distance_after=float("nan"), iov={},
                          metrics={"noise_floor": float("nan"), "updates": 1})  # fmt: skip
    payload = json.loads(message.value)  # strict JSON: no NaN tokens
    assert payload["distance"] == {"before": None, "after": None}
    parsed = CoefficientDocument.from_json(message.value)  # a non-finite metric must not make it unreadable
    assert parsed.distance.before is None and parsed.iov.first_event is None
    assert parsed.metrics == {"updates": 1.0}


def test_plane_shift_and_unknown_status_or_iov_fields() -> None:
    doc, message = coefficient_message(
        np.array([0.0, 0.1, -0.2]), topic="o", model="plane-shift", detector="trk", module="0", sequence=1,
        status="converged", distance_before=None, distance_after=None, iov={}, instance="",
    )  # fmt: skip
    assert CoefficientDocument.from_json(message.value).model == "plane-shift" and doc.metrics is None
    with pytest.raises(ValueError):
        _message(status="broken")
    with pytest.raises(ValueError):
        _message(iov={"first_evnt": 1})
