#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine as root. For now it shows the
# foundation: the default site validated and rendered to libvirt XML, a VM NIC
# for the secure network, and libvirt's own judges accepting all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cli() { node dist/cli/main.js "$@"; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== the default site"
printf 'networks:\n  secure: { preset: secure }\n  service: { preset: service }\n  datain: { preset: datain }\n' >"$out/site.yaml"
cli validate --site "$out/site.yaml"
echo
echo "== libvirt networks (virsh net-define input)"
cli render all --out "$out"
cat "$out/networks/secure.xml"
echo "== a secure VM's NIC"
cli render interface --network secure --mac 52:54:00:12:34:56 --boot 1 | tee "$out/nic.xml"
echo "== libvirt's judges"
for f in "$out"/networks/*.xml; do virt-xml-validate "$f" network; done
virsh -q -c test:///default "net-define $out/networks/secure.xml ; net-define $out/networks/service.xml ; net-define $out/networks/datain.xml ; net-list --all"
echo "== an invalid site is refused with every error"
printf 'networks:\n  secure: { preset: secure, vlan: 5000 }\n  service: { preset: service, gateway: 10.0.0.1 }\n' >"$out/bad.yaml"
cli validate --site "$out/bad.yaml" || echo "(exit $?)"
