#!/usr/bin/env bash
# Builds .venv-shapiq (gitignored) for bench/shapiq_accuracy.py: shapiq 1.8 needs Python >= 3.12, the app's
# .venv is 3.11. Usage: bash bench/shapiq_env.sh   (then: .venv-shapiq/bin/python bench/shapiq_accuracy.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${SHAPIQ_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in /root/.pyenv/versions/3.12*/bin/python python3.12 \
      python3.13 /root/.pyenv/versions/3.13*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
      PY="$candidate"
      break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "shapiq_env.sh: no Python >= 3.12 found (tried /root/.pyenv/versions/3.12*, python3.12, python3.13);" >&2
  echo "install one or set SHAPIQ_PYTHON=/path/to/python3.12" >&2
  exit 1
fi
echo "using $PY ($("$PY" --version))"
# xgboost (RegressionMSR's default proxy) and lightgbm oversubscribe the 2 shared cores otherwise
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
[ -x .venv-shapiq/bin/python ] || "$PY" -m venv .venv-shapiq
.venv-shapiq/bin/python -m pip install --quiet --upgrade pip
.venv-shapiq/bin/python -m pip install --quiet "shapiq==1.8.*" numpy scikit-learn xgboost
.venv-shapiq/bin/python -c 'import shapiq, xgboost, sklearn; print("shapiq", shapiq.__version__)'
