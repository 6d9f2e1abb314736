"""The ``driftcal`` entry point: version, usage errors, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import driftcal
from driftcal.cli import COMMANDS, build_parser

REPO = Path(driftcal.__file__).resolve().parent.parent


def _python_m_driftcal(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("DRIFTCAL_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "driftcal", *argv], capture_output=True, text=True, env=env, timeout=120
    )


def test_version_subprocess():
    proc = _python_m_driftcal("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"driftcal {driftcal.__version__}"


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    text = tmp_path / "ref.npy"
    text.write_text("not an array\n")
    good = tmp_path / "chg.npy"
    np.save(good, np.ones((5, 2, 2), dtype=np.float32))
    proc = _python_m_driftcal(
        "fit", "--reference", str(text), "--changed", str(good), "--model", "cell-gain", "--no-progress"
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    message = f"reference file '{text}' is not a NumPy .npy array (no .npy header); save it with np.save"
    assert proc.stderr.strip().splitlines() == [f"driftcal: error: {message}"]
    assert proc.stdout == ""


def test_version_in_process(cli):
    outcome = cli("--version")
    assert outcome.code == 0
    assert outcome.out.strip() == f"driftcal {driftcal.__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "tracker", "--events", "5", "--out", "x"],
        ["fit", "--reference", "a", "--changed", "b", "--model", "cell-gain"],
    ],
)
def test_every_command_is_registered(argv):
    import importlib

    assert argv[0] in COMMANDS
    args = build_parser().parse_args(argv)
    assert args._run is importlib.import_module(f"driftcal.cli.{argv[0]}").run


def test_help(cli):
    outcome = cli("--help")
    assert outcome.code == 0
    assert "simulate" in outcome.out and "fit" in outcome.out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["calibrate"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy", "--model", "pedestal"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy", "--model", "cell-gain", "--steps", "0"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy", "--model", "cell-gain", "--noise", "-1"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy", "--model", "cell-gain", "--noise", "nan"],
        ["fit", "--reference", "a.npy", "--changed", "b.npy", "--model", "cell-gain", "--device", "tpu"],
        ["simulate", "calorimeter", "--events", "10"],
        ["simulate", "calorimeter", "--events", "-3", "--out", "d"],
        ["simulate", "tracker", "--events", "10", "--out", "d", "--planes", "4", "--z", "0,1,2"],
        ["simulate", "tracker", "--events", "10", "--out", "d", "--z", "0,a,1"],
    ],
)
def test_usage_errors_exit_2(cli, argv):
    outcome = cli(*argv)
    assert outcome.code == 2
    assert "Traceback" not in outcome.err
    assert "error:" in outcome.err_lines[-1]


def test_value_error_from_fit_is_one_line(cli, calo_pair, monkeypatch):
    from driftcal.calib import fit as fitting

    def bad_fit(*args, **kwargs):
        raise ValueError("method 'quantile' needs at least 100 events\nper cell")

    monkeypatch.setattr(fitting, "fit", bad_fit)
    outcome = cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    line = outcome.assert_input_error("needs at least 100 events per cell")
    assert line == "driftcal: error: method 'quantile' needs at least 100 events per cell"


def test_unwritable_out_is_one_line(cli, calo_pair, fake_fit, tmp_path):
    out = tmp_path / "missing-dir" / "doc.json"
    args = ("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    cli(*args, "--out", out).assert_input_error("No such file or directory", "doc.json")


def test_unexpected_error_is_one_line_exit_1(cli, calo_pair, monkeypatch):
    from driftcal.calib import fit as fitting

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fitting, "fit", broken)
    monkeypatch.delenv("DRIFTCAL_DEBUG", raising=False)
    outcome = cli("fit", "--reference", calo_pair[0], "--changed", calo_pair[1], "--model", "cell-gain")
    assert outcome.code == 1
    assert outcome.err_lines == [
        "driftcal: error: unexpected RuntimeError: boom (set DRIFTCAL_DEBUG=1 for the traceback)"
    ]


def test_debug_keeps_the_traceback(calo_pair, monkeypatch):
    from driftcal.calib import fit as fitting
    from driftcal.cli import main

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fitting, "fit", broken)
    monkeypatch.setenv("DRIFTCAL_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(
            ["fit", "--reference", str(calo_pair[0]), "--changed", str(calo_pair[1]), "--model", "cell-gain"]
        )
