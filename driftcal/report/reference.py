"""The source paper's published numbers, printed beside ours (calorimeter, Geant4, ε = 0.01 unless stated).

S. Ali et al., *Correcting Sensor-Induced Distribution Drift with Wasserstein Adversarial Learning* (2026).
"""

from __future__ import annotations

from typing import Any

#: name → {value, std (None when the paper gives none), what}
PAPER: dict[str, dict[str, Any]] = {
    "rmse": {"value": 0.0176, "std": 0.0005, "what": "RMSE(learned A, injected A), ε = 0.01"},
    "r2": {"value": 0.896, "std": 0.007, "what": "mean R², ε = 0.01"},
    "ratio_of_means_rmse": {"value": 0.0562, "std": 0.0008, "what": "ratio of per-cell means, RMSE"},
    "rmse_eps0": {"value": 0.01573, "std": None, "what": "RMSE at ε = 0"},
    "rmse_eps005": {"value": 0.047, "std": None, "what": "RMSE at ε = 0.05"},
    "tracker_abs_error": {"value": 1e-3, "std": None, "what": "tracker |error| bound at low and moderate σ"},
}

#: (ε, RMSE) points of the paper's Fig. 9 that the text states
PAPER_EPSILON = [(0.0, 0.01573), (0.01, 0.0176), (0.05, 0.047)]
