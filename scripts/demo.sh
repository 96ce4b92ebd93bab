#!/usr/bin/env bash
# The whole architecture on one machine, as root, with the real programs:
# a KVM host (Open vSwitch bridges on VLAN uplinks, libvirt networks, the hooks),
# the "physical switch", the backend (table inet ticrypt, dnsmasq, the API) and
# the internet, each in its own network namespace; then a real VM booted by
# libvirt on the secure network, whose iPXE gets its reserved address and
# fetches a file from the internet only because its allow-list says so.
#
#   bash scripts/demo.sh      (about 2-3 minutes; a TCG VM starts slowly here)
#
# Everything it creates is removed at the end, also on failure; daemons it
# started are stopped; hook files it replaced are put back.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cli() { node "$root/dist/cli/main.js" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates namespaces, bridges and a VM)" >&2; exit 1; }
say "set-up: packages, npm dependencies, build"
bash scripts/setup.sh >/dev/null
started=$(bash scripts/lab-daemons.sh start | tr '\n' ' ')
[ -n "$started" ] && echo "started lab daemons: $started"

work=$(mktemp -d /tmp/ticrypt-demo.XXXXXX)
chmod 755 "$work" # dnsmasq reads its host entries as an unprivileged user
BK=tnd-backend   # the backend server
NET=tnd-inet     # the internet
SW=tnd-switch    # the physical switch
VM=tnd-vm
VM_UUID=$(node -e 'console.log(crypto.randomUUID())')
VM_MAC=52:54:00:d3:e0:01
API=http://198.18.0.1:8443
pids=()
backup=()
hooked=""


cleanup() {
  set +e
  say "clean-up"
  virsh -q -c qemu:///system destroy "$VM" >/dev/null 2>&1
  virsh -q -c qemu:///system undefine "$VM" >/dev/null 2>&1
  for n in secure service datain; do
    virsh -q -c qemu:///system net-destroy "$n" >/dev/null 2>&1
    virsh -q -c qemu:///system net-undefine "$n" >/dev/null 2>&1
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for br in br-secure br-service br-datain "$SW"; do ovs-vsctl --if-exists del-br "$br"; done
  for v in 1081 1082 1083; do ip link del "bond0.$v" 2>/dev/null; ip link del "tnd-gw$v" 2>/dev/null; done
  ip link del tnd-mgmt 2>/dev/null
  ip netns del "$BK" 2>/dev/null
  ip netns del "$NET" 2>/dev/null
  rm -f /etc/libvirt/hooks/qemu.d/ticrypt-net /etc/libvirt/hooks/network.d/ticrypt-net
  for f in "${backup[@]}"; do mv -f "$f.tnd-demo" "$f"; done
  rmdir /etc/libvirt/hooks/qemu.d /etc/libvirt/hooks/network.d /etc/ticrypt-net 2>/dev/null
  [ -f /etc/ticrypt-net/hook.yaml.tnd-demo-new ] && rm -f /etc/ticrypt-net/hook.yaml /etc/ticrypt-net/hook.yaml.tnd-demo-new
  # libvirtd forgets the hook only when it restarts (unless it is about to be stopped anyway).
  [ -n "$hooked" ] && [[ " $started " != *" libvirtd "* ]] && bash scripts/lab-daemons.sh restart-libvirtd 2>/dev/null
  # shellcheck disable=SC2086
  [ -n "$started" ] && bash scripts/lab-daemons.sh stop $started 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

say "the site: the three preset networks; the backend's interfaces named for this lab; iPXE told to fetch a file"
cat >"$work/site.yaml" <<EOF
name: demo
backend:
  management: { address: 198.18.0.1, port: 8443 }
  uplink: wan0
hosts:
  demo-host: {}
networks:
  secure: { preset: secure, gatewayInterface: gw-secure, dhcp: { bootFile: "http://198.51.100.10/boot.ipxe" } }
  service: { preset: service, gatewayInterface: gw-service }
  datain: { preset: datain, gatewayInterface: gw-datain }
EOF
cat "$work/site.yaml"
run cli validate --site "$work/site.yaml"

say "the physical switch, the backend and the internet (namespaces; VLAN sub-interfaces stood in by veths: no 8021q here)"
ip netns add "$BK"
ip netns add "$NET"
ip -n "$BK" link set lo up
ip -n "$NET" link set lo up
ovs-vsctl add-br "$SW" -- set bridge "$SW" datapath_type=netdev
declare -A NAME=([1081]=secure [1082]=service [1083]=datain)
declare -A GW=([1081]=192.168.128.1/17 [1082]=192.168.122.1/24 [1083]=192.168.123.1/24)
for v in 1081 1082 1083; do
  # The host's uplink bond0.VLAN (an access port of br-NAME once `host apply` ran) ...
  ip link add "bond0.$v" type veth peer name "tnd-up$v"
  ovs-vsctl add-port "$SW" "tnd-up$v" tag="$v"
  # ... and the backend's interface on that VLAN.
  ip link add "tnd-gw$v" type veth peer name "gw-${NAME[$v]}" netns "$BK"
  ovs-vsctl add-port "$SW" "tnd-gw$v" tag="$v"
  ip -n "$BK" addr add "${GW[$v]}" dev "gw-${NAME[$v]}"
  for i in "bond0.$v" "tnd-up$v" "tnd-gw$v"; do ip link set "$i" up; ethtool -K "$i" tx off >/dev/null 2>&1 || true; done
  ip -n "$BK" link set "gw-${NAME[$v]}" up
  ip netns exec "$BK" ethtool -K "gw-${NAME[$v]}" tx off >/dev/null 2>&1 || true
done
ip link add wan0 netns "$BK" type veth peer name wan1 netns "$NET"
ip -n "$BK" addr add 203.0.113.1/24 dev wan0
ip -n "$NET" addr add 203.0.113.2/24 dev wan1
ip -n "$NET" addr add 198.51.100.10/32 dev lo
ip -n "$BK" link set wan0 up
ip -n "$NET" link set wan1 up
ip -n "$BK" route add 198.51.100.0/24 via 203.0.113.2
ip netns exec "$BK" sysctl -qw net.ipv4.ip_forward=1
ip link add tnd-mgmt type veth peer name mgmt0 netns "$BK"
ip addr add 198.18.0.2/24 dev tnd-mgmt
ip -n "$BK" addr add 198.18.0.1/24 dev mgmt0
ip link set tnd-mgmt up
ip -n "$BK" link set mgmt0 up
echo "backend: gw-secure 192.168.128.1, gw-service 192.168.122.1, gw-datain 192.168.123.1, wan0 203.0.113.1, mgmt0 198.18.0.1"

say "an HTTP server on the internet, 198.51.100.10 ports 80 and 8080, that logs who asks"
# boot.ipxe (port 80, allowed) tells iPXE to fetch a second file from port 8080, which the allow-list does not name.
ip netns exec "$NET" node -e '
  const serve = (port) => require("http").createServer((q, r) => {
    console.log(`GET ${q.url} on port ${port} from ${q.socket.remoteAddress}`);
    r.end("#!ipxe\necho hello from the internet\nchain http://198.51.100.10:8080/denied.ipxe\n");
  }).listen(port, "198.51.100.10");
  serve(80);
  serve(8080);' >"$work/http.log" 2>&1 &
pids+=($!)

say "the host: OVS bridges on their VLAN uplinks and the libvirt networks, from the site"
run cli host plan --site "$work/site.yaml" --host demo-host --datapath netdev
run cli host apply --site "$work/site.yaml" --host demo-host --datapath netdev
run cli host apply --site "$work/site.yaml" --host demo-host --datapath netdev
ovs-vsctl --columns=name,tag list Port bond0.1081 bond0.1082 bond0.1083 | grep -E 'name|tag'

say "the backend: tokens, then the service in its namespace (rebuilds table inet ticrypt and dnsmasq from its store)"
cli backend token add demo-host --store "$work/backend.db" >"$work/host.token"
cli backend token add ops --admin --store "$work/backend.db" >"$work/admin.token"
chmod 600 "$work"/*.token
ip netns exec "$BK" node "$root/dist/cli/main.js" backend serve --site "$work/site.yaml" --store "$work/backend.db" \
  --state-dir "$work/state" --insecure-http >"$work/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do node -e "fetch('$API/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.2; done
echo "listening on $API"
ip netns exec "$BK" nft list chain inet ticrypt from_vm

say "the hooks: installed beside any others (qemu.d), configured, and libvirtd restarted to load them"
for f in /etc/ticrypt-net/hook.yaml; do [ -e "$f" ] && cp -p "$f" "$f.tnd-demo" && backup+=("$f"); done
[ -e /etc/ticrypt-net/hook.yaml ] || { mkdir -p /etc/ticrypt-net; touch /etc/ticrypt-net/hook.yaml.tnd-demo-new; }
run cli hook install --qemu-d
cat >/etc/ticrypt-net/hook.yaml <<EOF
hostId: demo-host
backend:
  url: $API
  tokenFile: $work/host.token
networks:
  - { name: secure, bridge: br-secure }
  - { name: service, bridge: br-service }
  - { name: datain, bridge: br-datain }
spoolDir: $work/spool
EOF
run cli hook check
bash scripts/lab-daemons.sh restart-libvirtd
hooked=yes

say "the admin allows the VM exactly one destination: tcp 198.51.100.10:80"
run cli allow set "$VM_UUID" tcp:198.51.100.10:80 --backend "$API" --token-file "$work/admin.token"

say "the VM launcher: a diskless VM whose NIC is on the secure network (rendered by ticrypt-net)"
nic=$(cli render interface --network secure --mac "$VM_MAC" --boot 1 --site "$work/site.yaml")
printf '%s\n' "$nic"
cat >"$work/vm.xml" <<EOF
<domain type='qemu'>
  <name>$VM</name>
  <uuid>$VM_UUID</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
$nic
    <serial type='pty'/>
  </devices>
</domain>
EOF
run virsh -q -c qemu:///system define "$work/vm.xml"
run virsh -q -c qemu:///system start "$VM"

say "the hook registered the NIC before the guest ran"
admin() { node -e "fetch('$API$1',{headers:{authorization:'Bearer '+require('fs').readFileSync('$work/admin.token','utf8').trim()}}).then(r=>r.json()).then(j=>console.log(JSON.stringify(j)))"; }
admin /v1/registrations
ip netns exec "$BK" nft list set inet ticrypt registered | grep -A1 elements || true
ovs-vsctl --columns=name,tag find Port "external_ids:iface-id!=\"\"" 2>/dev/null | grep -E 'name|tag' || true

say "waiting for the guest's iPXE: its DHCP lease, then its HTTP request through the backend"
ok=""
for _ in $(seq 120); do
  if grep -q "GET /boot.ipxe" "$work/http.log"; then ok=yes; break; fi
  sleep 1
done
echo "lease (dnsmasq):"
cat "$work/state/dnsmasq/secure/leases" || true
echo "internet server log:"
cat "$work/http.log"
[ -n "$ok" ] || { echo "demo: the VM's request did not arrive" >&2; tail -20 "$work/backend.log" >&2; exit 1; }
echo "the request came from the backend's uplink (masqueraded), allowed by the VM's allow-list"

say "the same VM asking port 8080, which its allow-list does not name: dropped at the backend"
sleep 15
if grep -q "port 8080" "$work/http.log"; then
  echo "demo: a request to port 8080 got through" >&2
  exit 1
fi
echo "no request arrived on port 8080; the backend's counter of dropped secure egress:"
ip netns exec "$BK" nft list counter inet ticrypt dropped_egress | grep packets

say "virsh destroy: the hook deregisters"
run virsh -q -c qemu:///system destroy "$VM"
sleep 1
admin /v1/registrations
say "done: every part ran for real; cleaning up"
