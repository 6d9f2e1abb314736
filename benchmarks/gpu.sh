#!/usr/bin/env bash
# The paper-scale calorimeter study on one NVIDIA GPU, within 8 minutes:
#
#     benchmarks/gpu.sh OUTDIR
#
# 1. Creates a virtual environment in OUTDIR/venv and installs the wheels named below (torch from the
#    PyTorch CUDA 12.4 index, matplotlib from PyPI) and driftcal itself with its `report` extra.
# 2. Runs benchmarks/paper.py --scale paper on the calorimeter studies of the main setting (Figs. 4, 6, 7, 8):
#    1e5 + 1e5 π⁻ events per seed, 40 layers × 16 × 16 cells, 3 seeds, batch 8192, conv critic width 64,
#    bf16 autocast; the adversarial step budget of each fit is set from the measured throughput so that the
#    whole script ends within DRIFTCAL_GPU_BUDGET_S (default 480 s).
# 3. Renders the figures and summary.md with `driftcal report` into OUTDIR and prints steps/s, events/s and
#    the share of the GPU's dense bf16 peak used by the adversarial step.
#
# Environment:
#   DRIFTCAL_PYTHON=/path/to/python   use this interpreter (with torch, numpy, matplotlib); skip installing
#   DRIFTCAL_GPU_SH_TINY=1            a CPU run at a tiny size (2 × 4 × 4 cells, 300 events), for tests
#   DRIFTCAL_GPU_BUDGET_S=480         wall-clock budget of the whole script
#   DRIFTCAL_GPU_STUDIES=...          studies to run (default: esum,rmse_vs_epoch,cellwise,esum_calibrated)
#   DRIFTCAL_TORCH_INDEX / DRIFTCAL_TORCH_VERSION   another torch wheel (default 2.5.1 from .../whl/cu124)
set -euo pipefail

OUTDIR=${1:?usage: benchmarks/gpu.sh OUTDIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_VERSION=${DRIFTCAL_TORCH_VERSION:-2.5.1}
TORCH_INDEX=${DRIFTCAL_TORCH_INDEX:-https://download.pytorch.org/whl/cu124}
MATPLOTLIB_VERSION=3.9.2
BUDGET_S=${DRIFTCAL_GPU_BUDGET_S:-480}
STUDIES=${DRIFTCAL_GPU_STUDIES:-esum,rmse_vs_epoch,cellwise,esum_calibrated}
TINY=${DRIFTCAL_GPU_SH_TINY:-0}
START=$(date +%s)

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
elapsed() { echo $(( $(date +%s) - START )); }
say() { echo "gpu.sh [$(elapsed)s]: $*" >&2; }

if command -v nvidia-smi >/dev/null 2>&1; then
    say "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
elif [ "$TINY" != 1 ]; then
    say "warning: nvidia-smi not found; the run needs an NVIDIA GPU"
fi

PYTHON=${DRIFTCAL_PYTHON:-}
if [ -z "$PYTHON" ]; then
    VENV="$OUTDIR/venv"
    say "installing torch==$TORCH_VERSION ($TORCH_INDEX), matplotlib==$MATPLOTLIB_VERSION, driftcal[report] into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
    "$VENV/bin/python" -m pip install --quiet "matplotlib==$MATPLOTLIB_VERSION" -e "$ROOT[report]"
    PYTHON="$VENV/bin/python"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda")' >&2

if [ "$TINY" = 1 ]; then
    ARGS=(--scale paper --device cpu --no-bf16 --geometry 2x4x4 --events 300 --seeds 3 --steps 6
          --batch-size 64 --width 8 --record-every 2 --sim-workers 1)
else
    # what is left after the install, less a reserve for simulating 3 × 2e5 events on the CPU cores,
    # the baselines, the data transfers and the report; the rest goes to the 3 adversarial fits
    LEFT=$(( BUDGET_S - $(elapsed) ))
    RESERVE=${DRIFTCAL_GPU_RESERVE_S:-220}
    FIT_S=$(( (LEFT - RESERVE) / 3 ))
    if [ "$FIT_S" -lt 15 ]; then FIT_S=15; fi
    say "$LEFT s left: $FIT_S s per adversarial fit"
    ARGS=(--scale paper --device cuda --fit-seconds "$FIT_S")
fi

RESULT="$OUTDIR/result.json"
LIMIT=$(( BUDGET_S - $(elapsed) - 10 ))
if [ "$LIMIT" -lt 30 ]; then LIMIT=30; fi
say "benchmarks/paper.py ${ARGS[*]} --studies $STUDIES (at most $LIMIT s)"
if ! timeout "$LIMIT" "$PYTHON" "$ROOT/benchmarks/paper.py" "${ARGS[@]}" --studies "$STUDIES" --out "$RESULT"; then
    say "error: benchmarks/paper.py failed or ran past the budget; no result"
    exit 1
fi
"$PYTHON" -m driftcal report --from "$RESULT" --out "$OUTDIR" >/dev/null

"$PYTHON" - "$RESULT" <<'EOF'
import json, sys

doc = json.load(open(sys.argv[1]))
perf = doc.get("performance", {})
run = doc.get("calorimeter_run", {})
share = perf.get("share_of_bf16_peak")
peak = perf.get("bf16_peak_tflops")
print(f"device: {perf.get('device')}")
print(f"adversarial steps per fit: {run.get('steps_from_budget') or doc['settings'].get('steps')}")
print(f"steps/s: {perf.get('steps_per_s', float('nan')):.2f} (end to end {perf.get('end_to_end_steps_per_s', float('nan')):.2f})")
print(f"events/s: {perf.get('events_per_s', float('nan')):.3g}")
print(f"TFLOPS (estimated): {perf.get('tflops', float('nan')):.3g}")
if share is None:
    print("share of the bf16 peak: unknown (no peak known for this device)")
else:
    print(f"share of the bf16 peak: {100 * share:.1f} % of {peak:g} TFLOPS")
cell = doc.get("cellwise", {}).get("methods", {})
for m in ("adversarial", "ratio_of_means", "w1_per_cell"):
    if m in cell:
        r = cell[m]["rmse"]
        print(f"RMSE {m}: {r['mean']:.4f} ± {r['std']:.4f}")
EOF
say "done: $RESULT, figures and summary.md in $OUTDIR"
