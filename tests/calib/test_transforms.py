"""Transforms: the readout-aware forward model, the inverse direction, the tracker frame."""

import pytest
import torch

from driftcal.calib.readout import forward_readout
from driftcal.calib.transforms import CellGain, PlaneShift


def test_forward_readout_restores_the_noise_the_gain_removed():
    g = torch.Generator().manual_seed(0)
    sigma, gain = 0.1, 0.6
    deposit = torch.full((200_000, 1), 2.0)
    reference = deposit + sigma * torch.randn(deposit.shape, generator=g)
    aged_truth = gain * deposit + sigma * torch.randn(deposit.shape, generator=g)
    modelled = forward_readout(reference, torch.tensor([gain]), noise=sigma)
    assert modelled.std().item() == pytest.approx(aged_truth.std().item(), rel=0.02)
    assert modelled.mean().item() == pytest.approx(aged_truth.mean().item(), abs=2e-3)
    # without restoration the noise would be gain * sigma: the test can tell the difference
    assert (gain * reference).std().item() < 0.8 * aged_truth.std().item()


def test_forward_readout_applies_threshold_and_keeps_suppressed_zeros():
    reference = torch.tensor([[0.0, 0.5, 1.0, 3.0]])
    out = forward_readout(
        reference, torch.full((4,), 0.5), noise=0.01, threshold=0.4, z=torch.zeros_like(reference)
    )
    assert out.tolist() == [[0.0, 0.0, 0.5, 1.5]]


def test_straight_through_threshold_keeps_values_and_passes_gradient():
    reference = torch.tensor([[0.9, 2.0]])
    gain = torch.tensor([1.0, 1.0], requires_grad=True)
    out = forward_readout(reference, gain, threshold=1.0, sharpness=0.1)
    assert out.tolist() == [[0.0, 2.0]]  # exact zero suppression
    out.sum().backward()
    assert gain.grad[0] > 0  # the suppressed reading still tells θ which way to move


def test_cell_gain_clamps_to_bounds_and_round_trips_coefficients():
    t = CellGain((2, 2), bounds=(0.5, 1.0), init=torch.tensor([[0.1, 0.7], [1.2, 0.9]]))
    assert torch.allclose(t.coefficients(), torch.tensor([[0.5, 0.7], [1.0, 0.9]]))
    t.set_coefficients(torch.full((2, 2), 0.8))
    assert torch.allclose(t.coefficients(), torch.full((2, 2), 0.8))
    with pytest.raises(ValueError):
        CellGain((2,), bounds=(0.0, 1.0))


def test_cell_gain_directions_are_inverse_of_each_other():
    x = torch.rand(10, 3) + 0.5
    gains = torch.tensor([0.7, 0.9, 1.1])
    fwd, inv = CellGain((3,), init=gains), CellGain((3,), direction="inverse", init=gains)
    assert torch.allclose(inv(fwd(x)), x)
    assert fwd.source == "reference" and inv.source == "changed"


def test_plane_shift_keeps_first_and_last_plane_fixed():
    t = PlaneShift(5, init=torch.tensor([0.1, -0.2, 0.3]))
    out = t(torch.zeros(2, 5))
    assert out[:, 0].abs().max() == 0 and out[:, -1].abs().max() == 0
    assert t.coefficients().tolist() == pytest.approx([0.0, 0.1, -0.2, 0.3, 0.0])
    assert torch.allclose(PlaneShift(5, direction="inverse", init=t.shift.detach())(out), torch.zeros(2, 5))
    with pytest.raises(ValueError):
        PlaneShift(2)
