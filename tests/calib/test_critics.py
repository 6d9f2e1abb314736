"""Critics and Lipschitz constraints."""

import torch

from driftcal.calib.critics import (
    AsinhStandardize,
    ConvCritic,
    GradientPenalty,
    MLPCritic,
    SpectralNorm,
    Standardize,
)
from driftcal.calib.critics.preprocess import make_preprocess


def test_conv_critic_handles_paper_and_tiny_geometries():
    torch.manual_seed(0)
    for shape in [(40, 16, 16), (6, 16, 16), (2, 4, 4), (3, 24, 24)]:
        critic = ConvCritic(shape, width=4)
        assert critic(torch.rand(5, *shape)).shape == (5,)


def test_preprocessing_is_fitted_on_data_and_saved_in_state_dict():
    critic = MLPCritic((3,), hidden=(8,))
    x = torch.randn(1000, 3) * torch.tensor([1.0, 10.0, 100.0]) + 5
    critic.fit_preprocess(x)
    scale = critic.state_dict()["preprocess.scale"]
    assert scale[2] / scale[0] > 50
    fresh = MLPCritic((3,), hidden=(8,))
    fresh.load_state_dict(critic.state_dict())
    assert torch.equal(fresh(x[:4]), critic(x[:4]))


def test_standardize_never_divides_by_zero_for_dead_cells():
    s = Standardize((3,)).fit(torch.tensor([[0.0, 1.0, 2.0], [0.0, 3.0, 4.0]]))
    assert torch.isfinite(s(torch.ones(1, 3))).all()


def test_gradient_penalty_is_zero_for_a_unit_slope_linear_critic():
    w = torch.tensor([0.6, 0.8])
    penalty = GradientPenalty(10.0).penalty(lambda f: f @ w, torch.randn(64, 2), torch.randn(64, 2))
    assert penalty.item() < 1e-10
    steep = GradientPenalty(10.0).penalty(lambda f: f @ (3 * w), torch.randn(64, 2), torch.randn(64, 2))
    assert steep.item() > 30


def test_spectral_norm_bounds_the_layer_gain():
    torch.manual_seed(0)
    critic = SpectralNorm().prepare(MLPCritic((4,), hidden=(16,), preprocess="none"))
    layer = critic.net[0]
    for _ in range(20):  # power iterations converge in training mode
        layer(torch.randn(8, 4))
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() < 1.05


def test_asinh_preprocessing_scales_each_cell_by_its_median_and_standardizes():
    x = torch.rand(4000, 2) * torch.tensor([1.0, 100.0])
    pre = make_preprocess("asinh:0.5", (2,))
    assert isinstance(pre, AsinhStandardize)
    pre.fit(x)
    assert torch.allclose(pre.cell_scale, 0.5 * x.median(0).values, rtol=0.02)
    out = pre(x)
    assert torch.allclose(out.mean(0), torch.zeros(2), atol=1e-4) and torch.allclose(
        out.std(0), torch.ones(2), atol=1e-3
    )
