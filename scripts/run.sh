#!/usr/bin/env bash
# Sets up .venv (idempotent) and serves the dashboard on http://localhost:8501.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m streamlit run app.py --server.port "${PORT:-8501}" "$@"
