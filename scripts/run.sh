#!/usr/bin/env bash
# Sets up .venv (idempotent) and serves the dashboard on http://localhost:8501.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# ui.serve is `streamlit run app.py` plus a warm-up at server start (workers, the default model and page).
exec "$VENV/bin/python" -m ui.serve --server.port "${PORT:-8501}" "$@"
