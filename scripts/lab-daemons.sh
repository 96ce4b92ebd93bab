#!/usr/bin/env bash
# Start (or stop) the daemons the lab tests and the demo need, as LAB.md shows:
# Open vSwitch (userspace datapath), virtlogd and libvirtd. No systemd here.
#   started=$(bash scripts/lab-daemons.sh start)   # starts what is not running; prints what it started
#   bash scripts/lab-daemons.sh stop $started       # stops exactly those, by pid
# A daemon that was already running is never stopped by a later `stop`.
set -euo pipefail
state=/run/ticrypt-net-lab
mkdir -p "$state"

# Run under `flock /work/lab.lock ...`, this script inherits the lock's descriptor: a daemon started with it
# open would hold the lab lock for as long as it runs. Daemons get stdin, stdout and stderr only.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
done

# Live processes only: a zombie daemon whose parent (pid 1 here) reaps late must not count.
running() { pgrep -r R,S,D,T,I -x "$1" >/dev/null 2>&1; }

# Record the pid of daemon $1 once it is the only process of that name: right after `NAME -d`, the
# daemonizing parent may still be there, and a record of two pids matches neither.
record() {
  local pids
  for _ in $(seq 50); do
    pids=$(pgrep -r R,S,D,T,I -x "$1" || true)
    [ -n "$pids" ] && [ "$(wc -l <<<"$pids")" -eq 1 ] && break
    sleep 0.1
  done
  echo "$pids" >"$state/$1.pid"
}

# QEMU's user and group as libvirt runs it (qemu.conf, else Debian's default).
qemu_conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\\(.*\\)\"/\\1/p" /etc/libvirt/qemu.conf 2>/dev/null | tail -1; }

# Why /dev/kvm is not usable by QEMU's user (nothing printed: it is). Tried for real: open it read-write,
# KVM_GET_API_VERSION (12), KVM_CREATE_VM, as that user with its groups.
kvm_unusable() {
  local user group
  user=$(qemu_conf user)
  group=$(qemu_conf group)
  user=${user:-libvirt-qemu}
  group=${group:-libvirt-qemu}
  setpriv --reuid="${user#+}" --regid="${group#+}" --init-groups perl -e '
    open(my $kvm, "+<", "/dev/kvm") or do { print "$ARGV[0] cannot open /dev/kvm: $!"; exit };
    my $version = ioctl($kvm, 0xAE00, 0);
    ($version // -1) == 12 or do { print "KVM_GET_API_VERSION gave " . ($version // "an error: $!"); exit };
    defined(ioctl($kvm, 0xAE01, 0)) or print "KVM_CREATE_VM failed: $!";' "$user" 2>&1 || echo "the check failed to run"
}

# Whether libvirt's cached QEMU capabilities (x86_64, i686) are missing or record KVM.
caps_claim_kvm() {
  local emulator file
  for emulator in qemu-system-x86_64 qemu-system-i386; do
    [ -x "/usr/bin/$emulator" ] || continue
    file=$(grep -l "<emulator>/usr/bin/$emulator</emulator>" /var/cache/libvirt/qemu/capabilities/*.xml 2>/dev/null | head -1)
    [ -z "$file" ] || grep -q "<flag name='kvm'/>" "$file" && return 0
  done
  return 1
}

# When /dev/kvm exists but QEMU's user cannot use it, libvirt's capabilities probe (which can open it) records
# KVM and its later validity check (which cannot) throws the cache away on every lookup: ~45 s per
# `virsh create` (LAB.md). Before libvirtd starts, re-probe once in a private mount namespace in which
# /dev/kvm is covered by an unreadable file, so the cache says "no KVM" and stays valid. Only then.
fix_caps_cache() {
  [ -e /dev/kvm ] || return 0
  local why
  why=$(kvm_unusable)
  [ -n "$why" ] || return 0
  caps_claim_kvm || return 0
  local cover=$state/no-kvm t0=$SECONDS pid
  : >"$cover"
  chmod 000 "$cover"
  # shellcheck disable=SC2016
  unshare -m --propagation private sh -c 'mount --bind "$1" /dev/kvm && exec libvirtd' sh "$cover" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    virsh -q -c qemu:///system domcapabilities --virttype qemu >/dev/null 2>&1 && break
    sleep 0.2
  done
  virsh -q -c qemu:///system domcapabilities --virttype qemu --arch i686 >/dev/null 2>&1 || true
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  if caps_claim_kvm; then
    echo "lab-daemons: /dev/kvm is unusable ($why), and re-probing QEMU without it did not take: expect ~45 s per virsh create" >&2
  else
    echo "lab-daemons: /dev/kvm is unusable ($why): QEMU's capabilities re-probed without it ($((SECONDS - t0)) s)" >&2
  fi
}

start() {
  if ! running ovs-vswitchd; then
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor >/dev/null 2>&1
    echo ovs
  fi
  if ! running virtlogd; then
    virtlogd -d
    record virtlogd
    echo virtlogd
  fi
  if ! running libvirtd; then
    fix_caps_cache
    libvirtd -d
    for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    record libvirtd
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
  pid=$(pgrep -r R,S,D,T,I -x libvirtd || true)
  if [ -z "$pid" ] || [ ! -f "$state/libvirtd.pid" ] || [ "$pid" != "$(cat "$state/libvirtd.pid")" ]; then
    echo "lab-daemons: libvirtd (pid ${pid:-none}) was not started by this script; restart it yourself" >&2
    return 1
  fi
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fix_caps_cache
  libvirtd -d
  for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && pgrep -r R,S,D,T,I -x libvirtd >/dev/null && break; sleep 0.1; done
  record libvirtd
  echo "lab-daemons: restarted libvirtd" >&2
}

case "${1:-}" in
  start) start ;;
  restart-libvirtd) restart_libvirtd ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop [ovs] [virtlogd] [libvirtd] | restart-libvirtd" >&2; exit 2 ;;
esac
