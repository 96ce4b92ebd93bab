#!/usr/bin/env bash
# Start (or stop) the daemons the lab tests and the demo need, as LAB.md shows:
# Open vSwitch (userspace datapath), virtlogd and libvirtd. No systemd here.
#   bash scripts/lab-daemons.sh start   # starts what is not running; records what it started
#   bash scripts/lab-daemons.sh stop    # stops only what `start` started, by pid
set -euo pipefail
state=/run/ticrypt-net-lab
mkdir -p "$state"

running() { pgrep -x "$1" >/dev/null 2>&1; }

start() {
  if ! running ovs-vswitchd; then
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor >/dev/null
    touch "$state/started-ovs"
    echo "lab-daemons: started Open vSwitch"
  fi
  if ! running virtlogd; then
    virtlogd -d
    pgrep -x virtlogd >"$state/virtlogd.pid"
    echo "lab-daemons: started virtlogd"
  fi
  if ! running libvirtd; then
    libvirtd -d
    for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    pgrep -x libvirtd >"$state/libvirtd.pid"
    echo "lab-daemons: started libvirtd"
  fi
}

stop() {
  for d in libvirtd virtlogd; do
    if [ -f "$state/$d.pid" ]; then
      kill "$(cat "$state/$d.pid")" 2>/dev/null || true
      rm -f "$state/$d.pid"
      echo "lab-daemons: stopped $d"
    fi
  done
  if [ -f "$state/started-ovs" ]; then
    /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null || true
    rm -f "$state/started-ovs"
    echo "lab-daemons: stopped Open vSwitch"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
