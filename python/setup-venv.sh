#!/usr/bin/env bash
# Creates .venv at the workspace root with what the Python tests and the
# example need (python/requirements-dev.txt), from PyPI. The tests in
# tests/tests/python.rs use it; .ci/run calls this before the test command.
# torch from PyPI brings its CUDA libraries: about 5.6 GB and 1-2 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r python/requirements-dev.txt
.venv/bin/python -c "import numpy, torch, sklearn, maturin; print('python/setup-venv.sh: .venv ready (numpy', numpy.__version__ + ', torch', torch.__version__ + ')')"
