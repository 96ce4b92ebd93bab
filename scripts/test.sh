#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine, as root: set up, start the
# lab daemons (Open vSwitch, virtlogd, libvirtd), then lint, type-check and
# every test (unit and lab). This is the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/lab-daemons.sh start
  trap 'bash scripts/lab-daemons.sh stop' EXIT
fi
npm test
