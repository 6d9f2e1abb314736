"""The daemon's parts built from its settings: the calibrator, what a batch must match, file references."""

from __future__ import annotations

import logging

from driftcal.calib.online import OnlineCalibrator
from driftcal.calib.recipes import cold_start_recipe
from driftcal.config import Settings
from driftcal.io.arrays import load_array
from driftcal.stream.codec import DetectorSpec
from driftcal.stream.reservoir import Reservoir

log = logging.getLogger(__name__)


def make_calibrator(settings: Settings) -> OnlineCalibrator:
    """The calibrator the settings describe."""
    det, upd = settings.detector, settings.update
    recipe = cold_start_recipe(det.model, det.shape)
    if upd.critic != "auto":
        recipe.critic = upd.critic
    if upd.lr_theta is not None:
        recipe.engine.lr_theta = upd.lr_theta
    return OnlineCalibrator(
        det.model,
        det.shape,
        noise=det.noise,
        threshold=det.threshold,
        device=upd.device,
        bf16=upd.bf16,
        seed=upd.seed,
        initial_steps=upd.initial_steps,
        tracking_lr=upd.tracking_lr,
        recipe=recipe,
    )


def detector_spec(settings: Settings) -> DetectorSpec:
    """What every batch must match: cell shape and noise floor, or the number of planes; the detector."""
    det = settings.detector
    if det.model == "plane-shift":
        return DetectorSpec(planes=det.shape[0], detector=det.name)
    return DetectorSpec(cells=tuple(det.shape), noise=det.noise, detector=det.name)


def load_reference_files(settings: Settings, reservoir: Reservoir) -> None:
    """Offer the events of every ``reference.files`` entry to ``reservoir`` (``.npy``, no pickle)."""
    for path in settings.reference.files:
        events = load_array(path, name="reference")
        if events.shape[1:] != tuple(settings.detector.shape):
            raise ValueError(f"reference file {path}: events of shape {events.shape[1:]} do not match")
        reservoir.add(events)
    log.info("reference: %d events from %d file(s)", reservoir.size, len(settings.reference.files))
