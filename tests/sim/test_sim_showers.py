import numpy as np
import pytest

from driftcal.sim import Beam, CalorimeterGeometry, iter_showers, sample_energies, simulate_showers
from driftcal.sim.lateral import lateral_pdf, sample_radii
from driftcal.sim.longitudinal import sample_em_profile

TINY = CalorimeterGeometry(layers=4, height=8, width=8)


def _sums(x):
    return x.sum(axis=(1, 2, 3), dtype=np.float64)


@pytest.mark.parametrize("particle", ["pi-", "e-"])
def test_shape_dtype_nonnegative_and_deterministic(particle):
    beam = Beam(particle=particle)
    a = simulate_showers(300, TINY, beam, rng=np.random.default_rng(7))
    b = simulate_showers(300, TINY, beam, rng=np.random.default_rng(7))
    c = simulate_showers(300, TINY, beam, rng=np.random.default_rng(8))
    assert a.shape == (300, 4, 8, 8)
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    assert (a >= 0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (_sums(a) > 0).all()


def test_deposits_are_continuous_not_quantized():
    x = simulate_showers(200, TINY, Beam(), rng=np.random.default_rng(0))
    nz = x[x > 0]
    assert np.unique(nz).size > 0.9 * nz.size


def test_iter_showers_blocks_and_chunk_bound():
    blocks = list(iter_showers(250, TINY, Beam(), rng=np.random.default_rng(0), chunk=100))
    assert [b.shape[0] for _, b in blocks] == [100, 100, 50]
    assert all(e.shape[0] == b.shape[0] for e, b in blocks)


def test_plates_per_layer_sums_plates():
    fine = CalorimeterGeometry(layers=6, height=8, width=8, plates_per_layer=1)
    coarse = CalorimeterGeometry(layers=2, height=8, width=8, plates_per_layer=3)
    xf = simulate_showers(200, fine, Beam(), rng=np.random.default_rng(3))
    xc = simulate_showers(200, coarse, Beam(), rng=np.random.default_rng(3))
    summed = xf.reshape(200, 2, 3, 8, 8).sum(axis=2)
    np.testing.assert_allclose(xc, summed, rtol=1e-4, atol=1e-5)


def test_energy_spectrum_bounds_and_mean():
    beam = Beam(mean_energy_gev=10.0, e_min_gev=1.0, e_max_gev=100.0)
    e = sample_energies(200_000, beam, np.random.default_rng(0))
    assert e.min() >= 1.0 and e.max() <= 100.0
    assert abs(e.mean() - 11.0) < 0.1  # truncation at 100 GeV is negligible: mean = e_min + 10
    assert (sample_energies(5, Beam(e_min_gev=5.0, e_max_gev=5.0), np.random.default_rng(0)) == 5.0).all()


def test_em_linearity_and_resolution_improves_with_energy():
    g = CalorimeterGeometry(layers=8, height=9, width=9)
    beam = Beam(particle="e-", impact_halfwidth_mm=0.0)
    means, res = [], []
    for i, energy in enumerate([2.0, 8.0, 32.0]):
        s = _sums(simulate_showers(800, g, beam, rng=np.random.default_rng(i), energies=np.full(800, energy)))
        means.append(s.mean() / energy)
        res.append(s.std() / s.mean())
    expected = 1e3 * g.sampling_fraction_em  # visible MeV per GeV before leakage
    assert all(0.85 * expected < m < 1.0 * expected for m in means)
    assert max(means) / min(means) < 1.12  # low-energy showers leak more through the GFlash lateral tail
    assert res[0] > res[1] > res[2]
    assert res[1] == pytest.approx(g.em_sampling_term / np.sqrt(8.0), rel=0.35)


def test_pion_linearity():
    g = CalorimeterGeometry(
        layers=60, height=12, width=12, cell_size_mm=40.0
    )  # deep and wide: little leakage
    beam = Beam(impact_halfwidth_mm=0.0)
    per_gev = []
    for i, energy in enumerate([4.0, 16.0]):
        s = _sums(simulate_showers(400, g, beam, rng=np.random.default_rng(i), energies=np.full(400, energy)))
        per_gev.append(s.mean() / energy)
    assert per_gev[1] / per_gev[0] == pytest.approx(1.0, abs=0.1)
    # response of a compensation-free model: between the e.m. scale / (e/h) and the e.m. scale
    em_scale = 1e3 * g.sampling_fraction_em
    assert em_scale / g.e_over_h * 0.85 < per_gev[1] < em_scale


def test_em_mean_depth_grows_with_log_energy():
    g = CalorimeterGeometry(layers=8, height=8, width=8)
    depths = []
    for i, energy in enumerate([1.0, 4.0, 16.0, 64.0]):
        x = simulate_showers(
            600, g, Beam(particle="e-"), rng=np.random.default_rng(i), energies=np.full(600, energy)
        )
        prof = x.sum(axis=(0, 2, 3), dtype=np.float64)
        depths.append((prof * np.arange(g.layers)).sum() / prof.sum())
    steps = np.diff(depths)
    assert (steps > 0).all()
    assert steps.max() < 3 * steps.min()  # roughly linear in ln E


def test_gflash_parameters_shift_with_energy():
    g = CalorimeterGeometry()
    a, b = sample_em_profile(np.full(5000, 1.0), g, np.random.default_rng(0))
    a2, b2 = sample_em_profile(np.full(5000, 100.0), g, np.random.default_rng(0))
    assert np.median((a2 - 1) / b2) > np.median((a - 1) / b) + 2.0  # T grows ~ ln E
    corr = np.corrcoef(np.log((a2 - 1) / b2), np.log(a2))[0, 1]
    assert corr > 0.3  # correlated ln T / ln alpha


def test_pion_fluctuates_more_than_electron():
    g = CalorimeterGeometry(layers=10, height=8, width=8)
    e = np.full(800, 10.0)
    s_e = _sums(simulate_showers(800, g, Beam(particle="e-"), rng=np.random.default_rng(0), energies=e))
    s_p = _sums(simulate_showers(800, g, Beam(particle="pi-"), rng=np.random.default_rng(0), energies=e))
    assert s_p.std() / s_p.mean() > 2.5 * s_e.std() / s_e.mean()
    # pion showers are longer: energy-weighted depth well behind the electron's
    depth = np.arange(g.layers)
    pe = simulate_showers(200, g, Beam(particle="e-"), rng=np.random.default_rng(1), energies=e[:200])
    pp = simulate_showers(200, g, Beam(particle="pi-"), rng=np.random.default_rng(1), energies=e[:200])
    d_e = (pe.sum(axis=(0, 2, 3)) * depth).sum() / pe.sum()
    d_p = (pp.sum(axis=(0, 2, 3)) * depth).sum() / pp.sum()
    assert d_p > d_e + 1.0


@pytest.mark.parametrize("particle", ["e-", "pi-"])
def test_lateral_profile_concentrated_near_impact_cell(particle):
    g = CalorimeterGeometry(layers=4, height=9, width=9)
    beam = Beam(particle=particle, impact_halfwidth_mm=0.0)  # impact at the centre of cell (4, 4)
    x = simulate_showers(400, g, beam, rng=np.random.default_rng(0), energies=np.full(400, 10.0))
    face = x.sum(axis=(0, 1), dtype=np.float64)
    assert np.unravel_index(face.argmax(), face.shape) == (4, 4)
    share_3x3 = face[3:6, 3:6].sum() / face.sum()
    assert share_3x3 > (0.8 if particle == "e-" else 0.4)
    # mean deposit decreases with distance from the impact cell
    iy, ix = np.indices(face.shape)
    ring = np.maximum(abs(iy - 4), abs(ix - 4))
    ring_mean = [face[ring == k].mean() for k in range(5)]
    assert (np.diff(ring_mean) < 0).all()


def test_lateral_sampler_matches_pdf():
    rng = np.random.default_rng(0)
    r = sample_radii(np.full(200_000, 1.5), 10.0, 80.0, rng)
    edges = np.linspace(0, 2, 21)
    hist, _ = np.histogram(r, bins=edges)
    centers = 0.5 * (edges[1:] + edges[:-1])
    expected = lateral_pdf(centers, 1.5, 10.0, 80.0) * np.diff(edges) * r.size
    np.testing.assert_allclose(hist[2:], expected[2:], rtol=0.08)


def test_spot_cap_keeps_sampling_resolution():
    g = CalorimeterGeometry(layers=8, height=9, width=9)
    beam = Beam(particle="e-", impact_halfwidth_mm=0.0)
    e = np.full(1000, 10.0)
    res = []
    for cap in (64, 1024):
        s = _sums(simulate_showers(1000, g, beam, rng=np.random.default_rng(0), energies=e, max_spots=cap))
        res.append(s.std() / s.mean())
    assert res[0] == pytest.approx(res[1], rel=0.2)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        Beam(particle="mu-")
    with pytest.raises(ValueError):
        CalorimeterGeometry(layers=0)
    with pytest.raises(ValueError):
        simulate_showers(3, TINY, Beam(), rng=np.random.default_rng(0), energies=np.ones(2))
