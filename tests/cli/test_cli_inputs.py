"""Every kind of bad input to ``driftcal fit`` ends in exit 2 and one readable stderr line."""

from __future__ import annotations

import numpy as np
import pytest

from driftcal.errors import InputError
from driftcal.io import load_array, validate_pair, validate_truth


def fit_args(ref, chg, model="cell-gain", *extra):
    return ("fit", "--reference", ref, "--changed", chg, "--model", model, "--no-progress", *extra)


@pytest.fixture
def good(save):
    return save("good.npy", np.ones((20, 2, 3), dtype=np.float32))


# --- unreadable files -------------------------------------------------------------------------


def test_missing_file(cli, good, tmp_path, fake_fit):
    missing = tmp_path / "nope.npy"
    line = cli(*fit_args(missing, good)).assert_input_error("reference file", "nope.npy", "does not exist")
    assert not fake_fit.calls, line


def test_directory(cli, good, tmp_path, fake_fit):
    cli(*fit_args(good, tmp_path)).assert_input_error("changed file", "directory")


def test_text_file(cli, good, tmp_path, fake_fit):
    text = tmp_path / "energies.npy"
    text.write_text("1.0 2.0 3.0\n4.0 5.0 6.0\n")
    cli(*fit_args(text, good)).assert_input_error("energies.npy", "not a NumPy .npy array")


def test_random_bytes(cli, good, tmp_path, fake_fit):
    junk = tmp_path / "junk.npy"
    junk.write_bytes(np.random.default_rng(0).bytes(256))
    cli(*fit_args(good, junk)).assert_input_error("changed file", "junk.npy", "not a NumPy .npy array")


def test_pickle_is_never_loaded(cli, good, tmp_path, fake_fit):
    import pickle

    evil = tmp_path / "evil.npy"
    evil.write_bytes(pickle.dumps(np.ones((3, 3))))
    cli(*fit_args(evil, good)).assert_input_error("evil.npy", "not a NumPy .npy array")


def test_npz_archive(cli, good, tmp_path, fake_fit):
    archive = tmp_path / "both.npz"
    np.savez(archive, reference=np.ones((5, 2, 3)))
    cli(*fit_args(archive, good)).assert_input_error("both.npz", ".npz archive")


def test_object_array(cli, good, save, fake_fit):
    obj = save("obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    cli(*fit_args(obj, good)).assert_input_error("obj.npy", "object array")


def test_truncated_npy(cli, good, tmp_path, fake_fit):
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:-40])
    cli(*fit_args(cut, good)).assert_input_error("cut.npy", "not a readable .npy array")


# --- contents ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "needle"), [((0, 2, 3), "0 events"), ((10, 0), "0 cells"), ((0,), "0 events")]
)
def test_empty(cli, good, save, fake_fit, shape, needle):
    empty = save("empty.npy", np.zeros(shape, dtype=np.float32))
    cli(*fit_args(empty, good)).assert_input_error("empty.npy", "empty", needle)


def test_nan(cli, good, save, fake_fit):
    data = np.ones((20, 2, 3), dtype=np.float32)
    data[3, 1, 2] = np.nan
    data[5, 0, 0] = np.nan
    bad = save("nan.npy", data)
    cli(*fit_args(good, bad)).assert_input_error("nan.npy", "2 non-finite", "2 NaN", "(3, 1, 2)")


def test_inf(cli, good, save, fake_fit):
    data = np.ones((20, 2, 3))
    data[0, 0, 1] = -np.inf
    bad = save("inf.npy", data)
    cli(*fit_args(bad, good)).assert_input_error("inf.npy", "1 non-finite", "1 Inf", "(0, 0, 1)")


def test_cell_gain_needs_two_dims(cli, save, fake_fit):
    flat = save("flat.npy", np.ones(50, dtype=np.float32))
    cli(*fit_args(flat, flat)).assert_input_error("flat.npy", "(50,)", "cell-gain needs (N, *cells)")


@pytest.mark.parametrize("shape", [(30, 2), (30, 4, 2), (30,)])
def test_plane_shift_needs_n_by_p(cli, save, fake_fit, shape):
    bad = save("hits.npy", np.zeros(shape, dtype=np.float32))
    cli(*fit_args(bad, bad, "plane-shift")).assert_input_error("hits.npy", str(shape), "(N, P)", "P ≥ 3")


def test_mismatched_cells(cli, good, save, fake_fit):
    other = save("other.npy", np.ones((20, 2, 4), dtype=np.float32))
    cli(*fit_args(good, other)).assert_input_error("other.npy", "good.npy", "(2, 4)", "(2, 3)", "must match")


def test_mismatched_planes(cli, tracker_pair, save, fake_fit):
    five = save("five.npy", np.zeros((30, 5), dtype=np.float32))
    cli(*fit_args(tracker_pair[0], five, "plane-shift")).assert_input_error("planes 5", "has 4", "must match")


def test_truth_shape_cell_gain(cli, calo_pair, save, fake_fit):
    truth = save("truth.npy", np.ones((2, 3), dtype=np.float32))
    outcome = cli(*fit_args(*calo_pair, "cell-gain", "--truth", truth))
    outcome.assert_input_error("truth file", "truth.npy", "(2, 3)", "(2, 3, 3)")
    assert not fake_fit.calls


def test_truth_shape_plane_shift(cli, tracker_pair, save, fake_fit):
    truth = save("truth.npy", np.zeros(3, dtype=np.float32))
    cli(*fit_args(*tracker_pair, "plane-shift", "--truth", truth)).assert_input_error(
        "truth.npy", "(3,)", "(4,)"
    )


def test_groups_reach_fit_and_bad_groups_are_input_errors(cli, calo_pair, save, fake_fit):
    labels = np.arange(18).reshape(2, 3, 3) // 4
    good = save("groups.npy", labels.astype(np.int16))
    assert cli(*fit_args(*calo_pair, "cell-gain", "--groups", good)).code == 0
    (call,) = fake_fit.calls
    np.testing.assert_array_equal(call["groups"], labels)
    assert call["groups"].dtype == np.int64
    channels = save("channels.npy", labels * 1_000_003 + 10**12)  # ids beyond float32's 2**24: kept exact
    assert cli(*fit_args(*calo_pair, "cell-gain", "--groups", channels)).code == 0
    np.testing.assert_array_equal(fake_fit.calls[1]["groups"], labels * 1_000_003 + 10**12)
    shape = save("shape.npy", labels[0])
    cli(*fit_args(*calo_pair, "cell-gain", "--groups", shape)).assert_input_error(
        "groups file", "shape.npy", "(3, 3)", "(2, 3, 3)"
    )
    halves = save("halves.npy", labels + 0.5)
    cli(*fit_args(*calo_pair, "cell-gain", "--groups", halves)).assert_input_error(
        "halves.npy", "whole numbers"
    )
    assert len(fake_fit.calls) == 2  # the bad maps never reached the fit


def test_truth_nan(cli, tracker_pair, save, fake_fit):
    truth = save("truth.npy", np.array([0.0, np.nan, 0.1, 0.0]))
    cli(*fit_args(*tracker_pair, "plane-shift", "--truth", truth)).assert_input_error("truth.npy", "NaN")


def test_below_noise_floor(cli, good, save, fake_fit):
    data = np.ones((20, 2, 3), dtype=np.float32)
    data[1, 1, 1] = -0.5
    low = save("low.npy", data)
    line = cli(*fit_args(good, low, "cell-gain", "--noise", "0.05")).assert_input_error(
        "low.npy", "below the noise floor", "-0.5", "-0.25"
    )
    assert "--noise 0.05" in line


def test_negative_without_noise(cli, good, save, fake_fit):
    data = np.ones((20, 2, 3), dtype=np.float32)
    data[0, 0, 0] = -0.01
    low = save("low.npy", data)
    cli(*fit_args(low, good)).assert_input_error(
        "low.npy", "below the noise floor", "-0.01", "< 0", "--noise"
    )


def test_small_dips_within_five_sigma_are_fine(cli, good, save, fake_fit):
    data = np.ones((20, 2, 3), dtype=np.float32)
    data[0, 0, 0] = -0.2
    dips = save("dips.npy", data)
    outcome = cli(*fit_args(dips, good, "cell-gain", "--noise", "0.05"))
    assert outcome.code == 0, outcome.err
    assert len(fake_fit.calls) == 1


def test_plane_shift_allows_negative_coordinates(cli, tracker_pair, fake_fit):
    assert cli(*fit_args(*tracker_pair, "plane-shift")).code == 0


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.ones((10, 2, 3), dtype=np.complex64), "complex"),
        (np.ones((10, 2, 3), dtype=bool), "boolean"),
        (np.full((10, 2, 3), "x"), "string"),
        (np.zeros((10, 2), dtype=[("e", "f4"), ("t", "f4")]), "structured"),
    ],
)
def test_rejected_dtypes(cli, good, save, fake_fit, array, needle):
    bad = save("typed.npy", array)
    cli(*fit_args(bad, good)).assert_input_error("typed.npy", needle, "dtype")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.float64, np.float16])
def test_numeric_dtypes_become_float32(cli, save, fake_fit, dtype):
    ref = save("ref.npy", np.ones((10, 2, 3), dtype=dtype))
    chg = save("chg.npy", np.full((12, 2, 3), 2, dtype=dtype))
    assert cli(*fit_args(ref, chg)).code == 0
    (call,) = fake_fit.calls
    assert call["reference"].dtype == np.float32 and call["changed"].dtype == np.float32
    assert call["changed"].shape == (12, 2, 3)


# --- the functions themselves -----------------------------------------------------------------


def test_load_array_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"^truth file '.*x\.npy' does not exist$"):
        load_array(tmp_path / "x.npy", name="truth")


def test_validate_pair_in_memory():
    ref = np.ones((4, 3), dtype=np.float32)
    validate_pair(ref, ref + 1, model="plane-shift")
    bad = ref.copy()
    bad[2, 1] = np.inf
    with pytest.raises(InputError, match=r"^changed contains 1 non-finite .* index \(2, 1\)$"):
        validate_pair(ref, bad, model="plane-shift")
    with pytest.raises(InputError, match="unknown model"):
        validate_pair(ref, ref, model="pedestal")


def test_validate_truth_plane_shift():
    validate_truth(np.zeros(4), model="plane-shift", cell_shape=(4,))
    with pytest.raises(InputError, match="one shift per plane"):
        validate_truth(np.zeros(5), model="plane-shift", cell_shape=(4,))
