#!/usr/bin/env bash
# The whole architecture on one machine, as root, with the real programs:
# a KVM host (Open vSwitch bridges on VLAN uplinks, libvirt networks, the hooks),
# the "physical switch", the backend (table inet ticrypt, dnsmasq, the DNS front,
# the API) and the internet (web servers, a resolver), each in its own network
# namespace; only the cables are made by hand: `backend apply` and `host apply`
# build the rest from the site file; then
# two real Linux guests booted by libvirt (their OVS ports pinned by the hook: port
# security), one per network, whose console shows
# what each may reach: the secure one resolves an allowed name (answered by the
# backend's DNS front, which opens the answer for that VM) and fetches from it,
# and is refused another name and another port; the service one goes where
# it likes. Then an SSH login from the internet into the secure guest, through a
# port of the backend forwarded (nftables DNAT) to the guest's port 22.
#
#   bash scripts/demo.sh           about 1-3 minutes; removes everything at the end
#   bash scripts/demo.sh --keep    leaves it all running, and says how to look around
#   bash scripts/demo.sh --down    removes what --keep left
#
# Ctrl-C or a failure midway also removes everything: daemons it started are
# stopped, hook files it replaced are put back.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
keep=""
case "${1:-}" in
  --keep) keep=yes ;;
  --down) ;;
  "") ;;
  *) echo "usage: $0 [--keep | --down]" >&2; exit 2 ;;
esac

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cli() { node "$root/dist/cli/main.js" "$@"; }
virsh() { command virsh -q -c qemu:///system "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates namespaces, bridges and VMs)" >&2; exit 1; }
BK=tnd-backend   # the backend server
NET=tnd-inet     # the internet
SW=tnd-switch    # the physical switch
SECURE_VM=tnd-secure
SERVICE_VM=tnd-service
API=http://198.18.0.1:8443
# What --keep leaves for --down: the work directory, the daemons and processes started, the hook state.
statefile=/run/ticrypt-net-demo.state

cleanup() {
  set +e
  say "clean-up"
  virsh destroy "$SECURE_VM" >/dev/null 2>&1
  virsh destroy "$SERVICE_VM" >/dev/null 2>&1
  for n in secure service datain; do
    virsh net-destroy "$n" >/dev/null 2>&1
    virsh net-undefine "$n" >/dev/null 2>&1
  done
  for p in $pids; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for br in br-secure br-service br-datain "$SW"; do ovs-vsctl --if-exists del-br "$br"; done
  for v in 1081 1082 1083; do ip link del "bond0.$v" 2>/dev/null; ip link del "tnd-gw$v" 2>/dev/null; done
  ip link del tnd-mgmt 2>/dev/null
  ip netns del "$BK" 2>/dev/null
  ip netns del "$NET" 2>/dev/null
  rm -f /etc/libvirt/hooks/qemu.d/ticrypt-net /etc/libvirt/hooks/network.d/ticrypt-net
  [ -n "$newlib" ] && rm -rf /usr/local/lib/ticrypt-net
  for f in $backup; do mv -f "$f.tnd-demo" "$f"; done
  [ -f /etc/ticrypt-net/hook.yaml.tnd-demo-new ] && rm -f /etc/ticrypt-net/hook.yaml /etc/ticrypt-net/hook.yaml.tnd-demo-new
  rmdir /etc/libvirt/hooks/qemu.d /etc/libvirt/hooks/network.d /etc/ticrypt-net 2>/dev/null
  # libvirtd forgets the hook only when it restarts (unless it is about to be stopped anyway).
  [ -n "$hooked" ] && [[ " $started " != *" libvirtd "* ]] && bash scripts/lab-daemons.sh restart-libvirtd 2>/dev/null
  # shellcheck disable=SC2086
  [ -n "$started" ] && bash scripts/lab-daemons.sh stop $started 2>/dev/null
  [ -n "$work" ] && rm -rf "$work"
  rm -f "$statefile"
}

if [ "${1:-}" = --down ]; then
  [ -f "$statefile" ] || { echo "demo: nothing left running by --keep ($statefile absent)" >&2; exit 1; }
  # shellcheck disable=SC1090
  source "$statefile"
  cleanup
  exit 0
fi
[ -f "$statefile" ] && { echo "demo: a kept demo is still running; remove it first: bash scripts/demo.sh --down" >&2; exit 1; }

work="" pids="" backup="" hooked="" started="" finished="" newlib=""
save_state() {
  printf 'work=%q\npids=%q\nbackup=%q\nhooked=%q\nstarted=%q\nnewlib=%q\n' "$work" "$pids" "$backup" "$hooked" "$started" "$newlib" >"$statefile"
}
on_exit() {
  local status=$?
  if [ -n "$keep" ] && [ -n "$finished" ]; then
    save_state
    say "left running (--keep); look around:"
    cat <<EOF
  virsh -c qemu:///system console $SECURE_VM      # a root shell in the secure guest (Ctrl-] leaves)
  virsh -c qemu:///system console $SERVICE_VM     # the same in the service guest
  cat $work/$SECURE_VM.console      # everything the secure guest printed
  ip netns exec $BK nft list table inet ticrypt   # the backend's firewall
  ip netns exec $NET ssh -i $work/id_ed25519 -p \$PORT root@203.0.113.1   # PORT from: node dist/cli/main.js ssh ls --backend $API --token-file $work/admin.token
  cat $work/state/dnsmasq/secure/leases      # the secure network's DHCP leases
  tail $work/backend.log      # the backend service's log (audit lines)
tear down:
  bash scripts/demo.sh --down
EOF
    exit "$status"
  fi
  cleanup
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

say "set-up: packages, npm dependencies, build; the lab daemons; the guest (kernel + initramfs from Debian's packages, cached)"
t0=$SECONDS
bash scripts/setup.sh >/dev/null
started=$(bash scripts/lab-daemons.sh start | tr '\n' ' ')
[ -n "$started" ] && echo "started lab daemons: $started"
guest=$(bash test/lab/guest/build.sh)
echo "guest: $guest ($(sed -n 1p "$guest/manifest"))"
setup_s=$((SECONDS - t0))
echo "set-up took $setup_s s"
work=$(mktemp -d /tmp/ticrypt-demo.XXXXXX)
chmod 755 "$work" # dnsmasq reads its host entries as an unprivileged user; libvirt writes the consoles here
save_state

say "the site: the three preset networks; the backend's interfaces named for this lab; a resolver on the internet"
cat >"$work/site.yaml" <<EOF
name: demo
backend:
  management: { address: 198.18.0.1, port: 8443 }
  uplink: wan0
  upstreamDns: [198.51.100.53]
hosts:
  demo-host: {}
networks:
  secure: { preset: secure, gatewayInterface: gw-secure }
  service: { preset: service, gatewayInterface: gw-service }
  datain: { preset: datain, gatewayInterface: gw-datain }
EOF
cat "$work/site.yaml"
run cli validate --site "$work/site.yaml"

say "the cables: the physical switch, the backend and the internet (namespaces; VLAN sub-interfaces stood in by veths: no 8021q here)"
ip netns add "$BK"
ip netns add "$NET"
ip -n "$BK" link set lo up
ip -n "$NET" link set lo up
ovs-vsctl add-br "$SW" -- set bridge "$SW" datapath_type=netdev
declare -A NAME=([1081]=secure [1082]=service [1083]=datain)
for v in 1081 1082 1083; do
  # The host's uplink bond0.VLAN (an access port of br-NAME once `host apply` ran) ...
  ip link add "bond0.$v" type veth peer name "tnd-up$v"
  ovs-vsctl add-port "$SW" "tnd-up$v" tag="$v"
  # ... and the backend's interface on that VLAN.
  ip link add "tnd-gw$v" type veth peer name "gw-${NAME[$v]}" netns "$BK"
  ovs-vsctl add-port "$SW" "tnd-gw$v" tag="$v"
  for i in "bond0.$v" "tnd-up$v" "tnd-gw$v"; do ip link set "$i" up; ethtool -K "$i" tx off >/dev/null 2>&1 || true; done
  ip netns exec "$BK" ethtool -K "gw-${NAME[$v]}" tx off >/dev/null 2>&1 || true
done
# The backend machine's own configuration (not ticrypt-net's): its uplink and its management link.
ip link add wan0 netns "$BK" type veth peer name wan1 netns "$NET"
ip -n "$BK" addr add 203.0.113.1/24 dev wan0
ip -n "$NET" addr add 203.0.113.2/24 dev wan1
for a in 198.51.100.10 198.51.100.20 198.51.100.53; do ip -n "$NET" addr add "$a/32" dev lo; done
ip -n "$BK" link set wan0 up
ip -n "$NET" link set wan1 up
ip -n "$BK" route add 198.51.100.0/24 via 203.0.113.2
ip link add tnd-mgmt type veth peer name mgmt0 netns "$BK"
ip addr add 198.18.0.2/24 dev tnd-mgmt
ip -n "$BK" addr add 198.18.0.1/24 dev mgmt0
ip link set tnd-mgmt up
ip -n "$BK" link set mgmt0 up
echo "backend: gw-secure, gw-service, gw-datain (down, no address), wan0 203.0.113.1, mgmt0 198.18.0.1"

say "the internet: web servers files.example (198.51.100.10, ports 80 and 8080) and other.example (198.51.100.20), a resolver (198.51.100.53)"
ip netns exec "$NET" node -e '
  const serve = (host, port) => require("http").createServer((q, r) => {
    console.log(`GET ${q.url} on ${host}:${port} from ${q.socket.remoteAddress}`);
    r.end(`hello from ${host}:${port}, you came from ${q.socket.remoteAddress}\n`);
  }).listen(port, host);
  serve("198.51.100.10", 80);
  serve("198.51.100.10", 8080);
  serve("198.51.100.20", 80);' >"$work/http.log" 2>&1 &
pids+=" $!"
ip netns exec "$NET" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
  --listen-address=198.51.100.53 --address=/files.example/198.51.100.10 --address=/other.example/198.51.100.20 \
  --pid-file="$work/resolver.pid" >/dev/null 2>&1 &
pids+=" $!"
save_state

say "the backend: its gateway interfaces, addresses, forwarding and sysctls, from the site (in its namespace)"
run cli backend apply --site "$work/site.yaml" --netns "$BK" --root "$work/backend-root"
run cli backend apply --site "$work/site.yaml" --netns "$BK" --root "$work/backend-root"
ip -n "$BK" -br addr show | grep gw-

say "the host: OVS bridges on their VLAN uplinks and the libvirt networks, from the site"
run cli host plan --site "$work/site.yaml" --host demo-host --datapath netdev
run cli host apply --site "$work/site.yaml" --host demo-host --datapath netdev
run cli host apply --site "$work/site.yaml" --host demo-host --datapath netdev
ovs-vsctl --columns=name,tag list Port bond0.1081 bond0.1082 bond0.1083 | grep -E 'name|tag'

say "the backend: tokens, then the service in its namespace (rebuilds table inet ticrypt and dnsmasq from its store; its DNS front answers the secure network)"
cli backend token add demo-host --store "$work/backend.db" >"$work/host.token"
cli backend token add ops --admin --store "$work/backend.db" >"$work/admin.token"
chmod 600 "$work"/*.token
ip netns exec "$BK" node "$root/dist/cli/main.js" backend serve --site "$work/site.yaml" --store "$work/backend.db" \
  --state-dir "$work/state" --insecure-http >"$work/backend.log" 2>&1 &
pids+=" $!"
save_state
for _ in $(seq 100); do node -e "fetch('$API/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.2; done
echo "listening on $API"
ip netns exec "$BK" nft list chain inet ticrypt from_vm

say "the hooks: installed beside any others (qemu.d), configured, and libvirtd restarted to load them"
for f in /etc/ticrypt-net/hook.yaml /usr/local/lib/ticrypt-net/hook/hook.cjs /usr/local/lib/ticrypt-net/hook/hook-config.cjs; do
  [ -e "$f" ] && cp -p "$f" "$f.tnd-demo" && backup+=" $f"
done
[ -e /usr/local/lib/ticrypt-net ] || newlib=yes
[ -e /etc/ticrypt-net/hook.yaml ] || { mkdir -p /etc/ticrypt-net; touch /etc/ticrypt-net/hook.yaml.tnd-demo-new; }
save_state
run cli hook install --qemu-d
cat >/etc/ticrypt-net/hook.yaml <<EOF
hostId: demo-host
backend:
  url: $API
  insecure: true # the demo's management link is plain http
  tokenFile: $work/host.token
networks:
  - { name: secure, bridge: br-secure }
  - { name: service, bridge: br-service }
  - { name: datain, bridge: br-datain }
spoolDir: $work/spool
EOF
run cli hook check
# Port security: host apply made the bridges fail_mode=secure (nothing passes unpinned); the flow sync installs
# each bridge's program now that it can ask the backend (the gateway's MAC); the hooks pin each VM's port.
run cli host flows
hooked=yes
save_state
bash scripts/lab-daemons.sh restart-libvirtd

# What each guest does once it has its lease (the kernel command line carries it, base64): every step
# printed with its output and exit code, prefixed with the guest's name; a TN:STEP line for this script.
guest_script() {
  local vm=$1
  shift
  cat <<EOF
step() {
  n=\$1; shift; echo "[$vm] \\\$ \$*"; out=\$("\$@" 2>&1); rc=\$?
  [ -n "\$out" ] && echo "\$out" | sed 's/^/[$vm]   /'; echo "[$vm]   (exit \$rc)"; echo "TN:STEP \$n \$rc"
}
echo "[$vm] \\\$ ip -4 addr show dev eth0 | grep inet; cat /etc/resolv.conf"
ip -4 addr show dev eth0 | grep inet | sed 's/^ */[$vm]   /'
sed 's/^/[$vm]   /' /etc/resolv.conf
EOF
  for s in "$@"; do printf '%s\n' "step $s"; done
}
boot_guest() { # name network mac uuid script [authorized ssh key]
  local nic
  nic=$(cli render interface --network "$2" --mac "$3" --site "$work/site.yaml" |
    sed "s|</interface>|  <driver><host csum='off'/></driver>\n</interface>|")
  cat >"$work/$1.xml" <<EOF
<domain type='qemu'>
  <name>$1</name>
  <uuid>$4</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$guest/vmlinuz</kernel>
    <initrd>$guest/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet loglevel=3 cryptomgr.notests panic=-1 tn.name=$1 tn.run=$(printf '%s' "$5" | base64 -w 0)${6:+ tn.ssh=$(printf '%s' "$6" | base64 -w 0)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_reboot>destroy</on_reboot>
  <devices>
$nic
    <serial type='pty'><log file='$work/$1.console' append='off'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
EOF
  run virsh create "$work/$1.xml"
}

SECURE_UUID=$(node -e 'console.log(crypto.randomUUID())')
SERVICE_UUID=$(node -e 'console.log(crypto.randomUUID())')
say "the admin allows the secure VM exactly one destination: tcp port 80 of files.example (by name)"
# files.example answers from TEST-NET-2, a special-use range: the entry names that range, or its answers open nothing.
cat >"$work/secure-allow.yaml" <<EOF
- { domain: files.example, protocol: tcp, ports: 80, specialRanges: [198.51.100.0/24] }
EOF
cat "$work/secure-allow.yaml"
run cli allow set "$SECURE_UUID" --file "$work/secure-allow.yaml" --backend "$API" --token-file "$work/admin.token"
say "the VM launcher places both VMs on this host: only its hook may register their NICs"
run cli placement set "$SECURE_UUID" demo-host --backend "$API" --token-file "$work/admin.token"
run cli placement set "$SERVICE_UUID" demo-host --backend "$API" --token-file "$work/admin.token"

ssh-keygen -q -t ed25519 -N '' -C ticrypt-net-demo -f "$work/id_ed25519"
say "the VM launcher: one guest per network (a Linux kernel and a busybox initramfs), NICs rendered by ticrypt-net"
cli render interface --network secure --mac 52:54:00:d3:e0:01 --site "$work/site.yaml"
boot_guest "$SECURE_VM" secure 52:54:00:d3:e0:01 "$SECURE_UUID" "$(guest_script secure-vm \
  'resolve nslookup -type=a files.example' \
  'fetch wget -q -O- http://files.example/hello.txt' \
  'resolve-other nslookup -type=a other.example' \
  'other-port timeout 3 wget -q -O- http://files.example:8080/' \
  'other-address timeout 3 wget -q -O- http://198.51.100.20/')" "$(cat "$work/id_ed25519.pub")"
boot_guest "$SERVICE_VM" service 52:54:00:d3:e0:02 "$SERVICE_UUID" "$(guest_script service-vm \
  'resolve nslookup -type=a other.example' \
  'fetch wget -q -O- http://other.example/' \
  'other-port wget -q -O- http://files.example:8080/')"

say "the hooks registered both NICs before the guests ran, and pinned their ports (port security)"
admin() { node -e "fetch('$API$1',{headers:{authorization:'Bearer '+require('fs').readFileSync('$work/admin.token','utf8').trim()}}).then(r=>r.json()).then(j=>console.log(JSON.stringify(j)))"; }
admin /v1/registrations
ovs-vsctl --columns=name,tag find Port "external_ids:iface-id!=\"\"" 2>/dev/null | grep -E 'name|tag' || true
# Each port's program (anti-spoofing, then the network's peers policy) and each bridge's, installed by the
# hook at start; the flow sync (host flows: run when Open vSwitch starts, and by the minute's timer) finds
# nothing to change.
for br in br-secure br-service; do
  echo "$br: fail_mode=$(ovs-vsctl get bridge "$br" fail_mode), $(ovs-ofctl -O OpenFlow14 --no-names dump-flows "$br" cookie=0x7c4e000000000000/0xffff000000000000 | grep -c cookie=) flows of ticrypt-net's"
done
run cli host flows --dry-run

say "what the guests did, from their consoles (each got its address by DHCP, then ran its steps)"
for _ in $(seq 120); do
  grep -qs '^TN:RUN-EXIT' "$work/$SECURE_VM.console" && grep -qs '^TN:RUN-EXIT' "$work/$SERVICE_VM.console" && break
  sleep 0.5
done
for vm in "$SECURE_VM" "$SERVICE_VM"; do
  echo
  grep -a '^\[[a-z]*-vm\]' "$work/$vm.console" | tr -d '\r' || true
done
# The verdicts, from the guests' own step lines: what must work worked, what must not did not.
step() { grep -a "^TN:STEP $2 " "$work/$1.console" | tr -d '\r' | awk '{ print $3 }'; }
expect() { # vm step ok|refused
  local rc
  rc=$(step "$1" "$2")
  if [ -z "$rc" ] || { [ "$3" = ok ] && [ "$rc" != 0 ]; } || { [ "$3" = refused ] && [ "$rc" = 0 ]; }; then
    echo "demo: $1 $2: expected $3, got exit ${rc:-nothing}" >&2
    exit 1
  fi
}
expect "$SECURE_VM" resolve ok
expect "$SECURE_VM" fetch ok
expect "$SECURE_VM" resolve-other refused
expect "$SECURE_VM" other-port refused
expect "$SECURE_VM" other-address refused
expect "$SERVICE_VM" resolve ok
expect "$SERVICE_VM" fetch ok
expect "$SERVICE_VM" other-port ok
echo
echo "secure-vm: files.example resolved and fetched; other.example not resolved; port 8080 and another address never answered"
echo "service-vm: every name resolved, every destination reached (masqueraded through the backend)"
echo "the backend's counter of dropped secure egress:"
ip netns exec "$BK" nft list counter inet ticrypt_counters dropped_egress | grep packets
echo "what the DNS front's answer opened for the secure VM (its NIC id . address . protocol . port, for a while):"
ip netns exec "$BK" nft list set inet ticrypt dns_p16 | grep -E '^\s+elements' || true

say "SSH into the secure VM from the internet, through the backend: its NIC's backend port, forwarded to its port 22"
run cli ssh ls --backend "$API" --token-file "$work/admin.token"
ssh_port=$(cli ssh ls --vm "$SECURE_UUID" --backend "$API" --token-file "$work/admin.token" | sed -n 's/.*:\([0-9]*\) -> .*/\1/p')
[ -n "$ssh_port" ] || { echo "demo: the secure VM has no SSH forward" >&2; exit 1; }
ssh_opts=(-i "$work/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
login=$(run ip netns exec "$NET" ssh "${ssh_opts[@]}" -p "$ssh_port" root@203.0.113.1 \
  'echo "logged in to $(hostname) as $(id -un), from ${SSH_CLIENT%% *}"; ip -4 addr show dev eth0 | grep inet')
echo "$login"
grep -q "^logged in to $SECURE_VM as root, from 203.0.113.2" <<<"$login" || { echo "demo: the SSH login failed" >&2; exit 1; }

if [ -n "$keep" ]; then
  echo "ready in $((SECONDS - t0)) s (set-up $setup_s s)"
  finished=yes
  exit 0
fi
say "virsh destroy: the hook deregisters"
run virsh destroy "$SECURE_VM"
run virsh destroy "$SERVICE_VM"
sleep 1
admin /v1/registrations
say "done in $((SECONDS - t0)) s (set-up $setup_s s): every part ran for real; cleaning up"
