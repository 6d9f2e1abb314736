"""Metric families, names and label bounds of :class:`driftcal.obs.Metrics`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftcal import __version__
from driftcal.obs import METRIC_NAMES, Metrics
from driftcal.obs.metrics import MAX_OUTCOMES, MAX_REASONS, OVERFLOW_LABEL, UPDATE_BUCKETS

ALLOWED_LABELS = {
    "detector",
    "module",
    "topic",
    "partition",
    "reason",
    "outcome",
    "kind",
    "version",
    "device",
}
COUNTERS = {
    "driftcal_events_consumed_total",
    "driftcal_messages_rejected_total",
    "driftcal_updates_total",
    "driftcal_coefficients_published_total",
}


def exposed(m: Metrics) -> str:
    return m.exposition().decode()


def type_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            out[name] = kind
    return out


def filled() -> Metrics:
    m = Metrics()
    m.consumed("events", 5)
    m.rejected("truncated")
    m.update("calo", "0", "ok", 0.3)
    m.update("calo", "0", "error", None)
    m.published("calo", "0", when_s=1_700_000_000.0)
    m.set_distance("calo", "0", 0.12, 0.2, alarm=False)
    m.set_noise_floor("calo", "0", 0.02)
    m.set_rmse("calo", "0", 0.01)
    m.set_coefficients("calo", "0", [0.9, 1.0, 1.1])
    m.set_reservoir("reference", 1000)
    m.set_reservoir("window", 100)
    m.set_lag("events", 3, 42)
    m.set_queue(2)
    m.build_info("cpu")
    return m


def test_every_family_is_exposed_even_before_any_sample():
    types = type_lines(exposed(Metrics()))
    assert set(types) == set(METRIC_NAMES)
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES))


def test_filled_registry_exposes_exactly_the_contract():
    text = exposed(filled())
    assert set(type_lines(text)) == set(METRIC_NAMES)
    assert "_created" not in text
    assert "driftcal_wasserstein_distance" in text


def test_counters_are_exposed_with_total_suffix():
    types = type_lines(exposed(filled()))
    assert {name for name, kind in types.items() if kind == "counter"} == COUNTERS
    assert all(name.endswith("_total") for name in COUNTERS)
    assert not any(name.endswith("_total") for name, kind in types.items() if kind != "counter")
    assert types["driftcal_update_duration_seconds"] == "histogram"


def test_label_sets_are_bounded():
    m = filled()
    for family in text_string_to_metric_families(exposed(m)):
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, (family.name, sample.labels)


def test_reasons_and_outcomes_are_capped():
    m = Metrics()
    for i in range(3 * MAX_REASONS):
        m.rejected(f"reason {i}")
    for i in range(3 * MAX_OUTCOMES):
        m.update("calo", "0", f"outcome{i}")
    fams = {f.name: f for f in text_string_to_metric_families(exposed(m))}
    reasons = {s.labels["reason"] for s in fams["driftcal_messages_rejected"].samples}
    assert len(reasons) == MAX_REASONS + 1 and OVERFLOW_LABEL in reasons
    assert m.value("driftcal_messages_rejected_total", reason=OVERFLOW_LABEL) == 2 * MAX_REASONS
    assert "reason_0" in reasons  # normalised to [a-z0-9_]
    outcomes = {s.labels["outcome"] for s in fams["driftcal_updates"].samples}
    assert len(outcomes) == MAX_OUTCOMES + 1


def test_counter_values_and_histogram():
    m = filled()
    m.consumed("events", 7)
    assert m.value("driftcal_events_consumed_total", topic="events") == 12
    assert m.value("driftcal_updates_total", detector="calo", module="0", outcome="ok") == 1
    assert m.value("driftcal_updates_total", detector="calo", module="0", outcome="error") == 1
    assert m.value("driftcal_update_duration_seconds_count") == 1  # error had no duration
    assert m.value("driftcal_update_duration_seconds_bucket", le="0.5") == 1
    assert UPDATE_BUCKETS[0] == 0.01 and UPDATE_BUCKETS[-1] == 120.0
    assert m.value("driftcal_coefficients_published_total", detector="calo", module="0") == 1
    assert m.value("driftcal_last_publish_timestamp_seconds", detector="calo", module="0") == 1.7e9
    with pytest.raises(ValueError):
        m.consumed("events", -1)


def test_distance_alarm_and_extras():
    m = Metrics()
    m.set_distance("tracker", 2, 0.5, 0.2, alarm=True)
    assert m.value("driftcal_wasserstein_distance", detector="tracker", module="2") == 0.5
    assert m.value("driftcal_alarm_threshold", detector="tracker", module="2") == 0.2
    assert m.value("driftcal_drift_alarm", detector="tracker", module="2") == 1
    m.set_distance("tracker", 2, 0.1, 0.2, alarm=False)
    assert m.value("driftcal_drift_alarm", detector="tracker", module="2") == 0
    m.set_noise_floor("tracker", 2, 0.03)
    m.set_rmse("tracker", 2, 0.004)
    m.set_queue(7)
    assert m.value("driftcal_noise_floor", detector="tracker", module="2") == 0.03
    assert m.value("driftcal_rmse_to_truth", detector="tracker", module="2") == 0.004
    assert m.value("driftcal_queue_batches") == 7


@pytest.mark.parametrize(
    "values",
    [
        [0.5, 1.0, 1.5, 2.0],
        (0.5, 1.0, 1.5, 2.0),
        np.array([[0.5, 1.0], [1.5, 2.0]], dtype=np.float32),
        (v for v in [0.5, 1.0, 1.5, 2.0]),
        [0.5, float("nan"), 1.0, 1.5, float("inf"), 2.0, -float("inf")],
    ],
)
def test_coefficient_min_mean_max_over_finite_values(values):
    m = Metrics()
    assert m.set_coefficients("calo", "0", values) == 4
    assert m.value("driftcal_coefficient_min", detector="calo", module="0") == 0.5
    assert m.value("driftcal_coefficient_mean", detector="calo", module="0") == pytest.approx(1.25)
    assert m.value("driftcal_coefficient_max", detector="calo", module="0") == 2.0


def test_coefficients_without_finite_values_are_nan():
    m = Metrics()
    assert m.set_coefficients("calo", "0", [float("nan")]) == 0
    assert math.isnan(m.value("driftcal_coefficient_mean", detector="calo", module="0"))


def test_reservoir_lag_and_build_info():
    m = Metrics()
    m.set_reservoir("reference", 10)
    with pytest.raises(ValueError, match="kind"):
        m.set_reservoir("cells", 1)
    m.set_lag("events", 0, 5)
    assert m.value("driftcal_consumer_lag_messages", topic="events", partition="0") == 5
    m.build_info("cpu")
    m.build_info("cuda:0")
    fams = {f.name: f for f in text_string_to_metric_families(exposed(m))}
    [sample] = fams["driftcal_build_info"].samples
    assert sample.labels == {"version": __version__, "device": "cuda:0"} and sample.value == 1


def test_instances_do_not_share_a_registry():
    a, b = Metrics(), Metrics()
    a.consumed("events", 1)
    assert b.value("driftcal_events_consumed_total", topic="events") is None
