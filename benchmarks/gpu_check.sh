#!/usr/bin/env bash
# The GPU check, in one go on a machine with a CUDA device (a few minutes on one GPU):
#   1. the `cuda` tests: FC and Conv2 lottery stacks and a learned supermask on CUDA against the CPU;
#   2. the throughput benchmark on CUDA (one FC run and a stack of nine against a plain PyTorch loop);
#   3. the figure and learned-row benchmark on CUDA (--quick), which extrapolates the RQ1 figure's and
#      the Table 1 learned row's full times at the paper's schedule.
# Usage: benchmarks/gpu_check.sh [PYTHON]   (default: .venv/bin/python, else python3)
# Needs MNIST under $LT_DATA_DIR (default ../shared/datasets). Exits non-zero at the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export LT_DATA_DIR="${LT_DATA_DIR:-$(cd .. && pwd)/shared/datasets}"

"$PY" - <<'PYEOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing to check here")
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF

echo "== 1/3 cuda tests"
"$PY" -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py
echo "== 2/3 throughput (cuda)"
"$PY" benchmarks/throughput.py --device cuda --quick
echo "== 3/3 figure and learned row (cuda, --quick)"
"$PY" benchmarks/figure_time.py --device cuda --quick
