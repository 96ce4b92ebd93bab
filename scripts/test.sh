#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine, as root: set up, then lint,
# type-check and every test (unit and lab). This is the README's test command,
# and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
