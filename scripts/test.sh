#!/usr/bin/env bash
# The full test suite on a fresh Debian 12 machine, as root: set up, start the
# lab daemons (Open vSwitch, virtlogd, libvirtd) that are not running, then
# lint, type-check and every test (unit and lab), then stop the daemons it
# started. This is the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
started=""
if [ "$(id -u)" -eq 0 ]; then
  started=$(bash scripts/lab-daemons.sh start | tr '\n' ' ')
  [ -n "$started" ] && echo "test: started lab daemons: $started"
  # shellcheck disable=SC2086
  trap 'bash scripts/lab-daemons.sh stop $started' EXIT
fi
npm test
