#!/usr/bin/env bash
# Start (or stop) the daemons the lab tests and the demo need, as LAB.md shows:
# Open vSwitch (userspace datapath), virtlogd and libvirtd. No systemd here.
#   started=$(bash scripts/lab-daemons.sh start)   # starts what is not running; prints what it started
#   bash scripts/lab-daemons.sh stop $started       # stops exactly those, by pid
# A daemon that was already running is never stopped by a later `stop`.
set -euo pipefail
state=/run/ticrypt-net-lab
mkdir -p "$state"

running() { pgrep -x "$1" >/dev/null 2>&1; }

start() {
  if ! running ovs-vswitchd; then
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor >/dev/null 2>&1
    echo ovs
  fi
  if ! running virtlogd; then
    virtlogd -d
    pgrep -x virtlogd >"$state/virtlogd.pid"
    echo virtlogd
  fi
  if ! running libvirtd; then
    libvirtd -d
    for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    pgrep -x libvirtd >"$state/libvirtd.pid"
    echo libvirtd
  fi
}

stop() {
  for d in "$@"; do
    case "$d" in
      libvirtd | virtlogd)
        if [ -f "$state/$d.pid" ]; then
          kill "$(cat "$state/$d.pid")" 2>/dev/null || true
          rm -f "$state/$d.pid"
        fi
        ;;
      ovs) /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true ;;
      *) echo "lab-daemons: unknown daemon $d" >&2 ;;
    esac
    echo "lab-daemons: stopped $d" >&2
  done
}

# Restart libvirtd (so it discovers hooks) only if it is the one `start` recorded: never someone else's.
restart_libvirtd() {
  local pid
  pid=$(pgrep -x libvirtd || true)
  if [ -z "$pid" ] || [ ! -f "$state/libvirtd.pid" ] || [ "$pid" != "$(cat "$state/libvirtd.pid")" ]; then
    echo "lab-daemons: libvirtd (pid ${pid:-none}) was not started by this script; restart it yourself" >&2
    return 1
  fi
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  libvirtd -d
  for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && pgrep -x libvirtd >/dev/null && break; sleep 0.1; done
  pgrep -x libvirtd >"$state/libvirtd.pid"
  echo "lab-daemons: restarted libvirtd" >&2
}

case "${1:-}" in
  start) start ;;
  restart-libvirtd) restart_libvirtd ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop [ovs] [virtlogd] [libvirtd] | restart-libvirtd" >&2; exit 2 ;;
esac
