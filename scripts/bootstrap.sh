#!/usr/bin/env bash
# Creates .venv and installs robotui into it (editable). `--dev` adds the test tools.
# Installs torch==2.13.0 first where that pin is available (a CPU build on the dev machines), so
# nothing later pulls a multi-GB CUDA torch; a venv that already has torch keeps its own.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    "${pip[@]}" install "torch==2.13.0" || echo "bootstrap: torch==2.13.0 not available here; pip will choose a torch"
fi
"${pip[@]}" install -e ".${extras}"
