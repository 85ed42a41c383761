#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch_data.sh
# Two processes, a test file each at a time (their fixtures are per file): on two cores
# the suite takes 10 minutes instead of 14.  TEST_WORKERS=0 runs it in this process.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
