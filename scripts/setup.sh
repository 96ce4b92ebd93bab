#!/usr/bin/env bash
# Install everything ticrypt-net's tests, demo and benchmarks need on Debian 12, as root:
# the lab packages (../shared/LAB.md), then the npm dependencies, then the build.
# Idempotent: a second run installs nothing new (npm ci only when package-lock.json or Node changed).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  openvswitch-switch nftables dnsmasq-base iproute2 iputils-ping ethtool
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  qemu-system-x86 qemu-utils ipxe-qemu libvirt-dev libxml2-utils
  iperf3 socat dnsutils conntrack busybox procps
  kmod openssh-client # the lab guest's build (depmod, modprobe -D) and SSH into it
  ulogd2 ulogd2-json  # flow audit (src/backend/audit/): conntrack end events and NFLOG refusals
  ansible             # the roles' test (ansible/): Debian's ansible, 33 s to install here (ansible-core alone: 12 s)
  wrk sockperf nginx-light # bench/proxy: native load (new connections, round trips) and the VM's HTTP server
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node >= 20 required, found $(node --version)" >&2
  exit 1
fi
# npm ci starts from nothing (native addons compiled again): only when the lock file or Node changed since.
stamp="$(sha256sum package-lock.json | cut -c1-64) $(node --version)"
if [ "$(cat node_modules/.ticrypt-setup 2>/dev/null)" != "$stamp" ]; then
  npm ci --no-audit --no-fund
  echo "$stamp" >node_modules/.ticrypt-setup
fi
npm run build
