#!/usr/bin/env bash
# Build the lab guest, a Linux kernel and a gzip initramfs, from Debian's packages only (as root):
#   the cloud kernel (the version linux-image-cloud-amd64 depends on now), busybox-static, dropbear-bin
#   and the libraries dropbear links, fetched with `apt-get download`, unpacked with `dpkg-deb -x`
#   (nothing is installed on the host), plus the files under rootfs/ (init, the command agent, ...).
#
#   dir=$(bash test/lab/guest/build.sh)    # prints the directory holding vmlinuz, initrd.gz, manifest
#
# Cached in $TICRYPT_GUEST_CACHE (default /var/cache/ticrypt-net-lab/guest)/<key>, where the key hashes
# every input: the packages' names and versions, this script and rootfs/. A second run with the same inputs
# only prints the directory. Concurrent runs take a lock; a build appears under its key by one rename.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${TICRYPT_GUEST_CACHE:-/var/cache/ticrypt-net-lab/guest}
say() { echo "guest-build: $*" >&2; }

# apt-cache rebuilds its cache on every call where pkgcache is off (Docker-like images): ask twice, not per package.
deps() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
    linux-image-cloud-amd64 dropbear-bin 2>/dev/null
}
graph=$(deps)
if [ -z "$graph" ]; then
  say "no package lists know linux-image-cloud-amd64 yet: apt-get update"
  apt-get update -qq
  graph=$(deps)
fi
# The kernel package the metapackage points at today (e.g. linux-image-6.1.0-57-cloud-amd64), and every
# package dropbear-bin's dependencies pull in: dropbear is dynamically linked, and its libraries come from
# the archive, not from the host.
kernel=$(awk '$0 == "linux-image-cloud-amd64" { on = 1; next } /^[^ ]/ { on = 0 } on && /Depends: linux-image-[0-9]/ { print $2; exit }' <<<"$graph")
[ -n "$kernel" ] || { say "apt knows no linux-image-cloud-amd64 (is this Debian amd64 with main enabled?)"; exit 1; }
dropbear_closure=$(
  awk '/^[^ ]/ { pkg = $1; next } /Depends: [a-z0-9]/ { edge[pkg] = edge[pkg] " " $2 }
    END {
      queue[1] = "dropbear-bin"; seen["dropbear-bin"] = 1; n = 1
      for (i = 1; i <= n; i++) {
        k = split(edge[queue[i]], next_, " ")
        for (j = 1; j <= k; j++) if (!seen[next_[j]]++) queue[++n] = next_[j]
      }
      for (i = 2; i <= n; i++) print queue[i]
    }' <<<"$graph" | LC_ALL=C sort
)
# shellcheck disable=SC2206
packages=("$kernel" busybox-static dropbear-bin $dropbear_closure)
manifest=$(
  apt-cache policy "${packages[@]}" 2>/dev/null |
    awk '/^[^ ]/ { pkg = $1; sub(/:$/, "", pkg) } /Candidate:/ { print pkg "=" $2 }'
)$'\n'
for p in "${packages[@]}"; do
  grep -q "^$p=" <<<"$manifest" && ! grep -q "^$p=(none)" <<<"$manifest" || {
    say "apt has no candidate version of $p"
    exit 1
  }
done

key=$(
  {
    printf '%s' "$manifest"
    sha256sum "$here/build.sh"
    (cd "$here/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
)
out="$cache/$key"
if [ -f "$out/initrd.gz" ]; then
  touch "$out" # in use: not pruned
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/initrd.gz" ]; then # another build finished while this one waited
  echo "$out"
  exit 0
fi
started=$(date +%s.%N)
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs" "$tmp/pkgs" "$tmp/root" "$tmp/out"
say "building $key from: $(printf '%s' "$manifest" | tr '\n' ' ')"
# shellcheck disable=SC2046
(cd "$tmp/debs" && apt-get download -q -o APT::Sandbox::User=root $(printf '%s' "$manifest") >/dev/null)
for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/pkgs"; done
kver=$(ls "$tmp/pkgs/lib/modules")
depmod -b "$tmp/pkgs" "$kver"

root=$tmp/root
mkdir -p "$root"/{bin,dev,etc,lib/modules,proc,root,run,sys,tmp,usr/sbin,var}
ln -s bin "$root/sbin"
ln -s ../bin "$root/usr/bin"
ln -s ../run "$root/var/run"
# busybox and a link per applet.
cp "$tmp/pkgs/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# The modules the guest needs, in the order modprobe would load them: virtio over PCI, the NIC,
# the serial ports (the command channel), the entropy source.
for module in virtio_pci virtio_net virtio_console virtio_rng; do
  modprobe -d "$tmp/pkgs" -S "$kver" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$root/lib/modules/"
  basename "$ko" >>"$root/lib/modules/load"
done
# dropbear and the libraries its loader names, from the unpacked packages.
cp "$tmp/pkgs/usr/sbin/dropbear" "$root/usr/sbin/"
cp "$tmp/pkgs/usr/bin/dropbearkey" "$root/bin/"
loader=$tmp/pkgs/lib64/ld-linux-x86-64.so.2
libpath=$tmp/pkgs/lib/x86_64-linux-gnu:$tmp/pkgs/usr/lib/x86_64-linux-gnu
# What `ldd` prints, asked of the packages' own loader (ldd runs the loader with --list).
listing=$("$loader" --library-path "$libpath" --list "$root/usr/sbin/dropbear")
if grep -q 'not found' <<<"$listing"; then
  say "dropbear needs a library its packages do not hold:"$'\n'"$listing"
  exit 1
fi
# Every library from the unpacked tree: one found on the host instead would be a missing package.
if awk '$2 == "=>" && $1 !~ /^\// { print $3 }' <<<"$listing" | grep -v "^$tmp/pkgs/"; then
  say "dropbear's loader took the libraries above from the host, not from the packages:"$'\n'"$listing"
  exit 1
fi
for lib in $(awk '$2 == "=>" && $1 !~ /^\// { print $3 }' <<<"$listing"); do
  dest=$root/${lib#"$tmp/pkgs"}
  mkdir -p "$(dirname "$dest")"
  cp -L "$lib" "$dest"
done
mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu"
cp -L "$loader" "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
# This repository's files: init, the command agent, the DHCP client script, passwd.
cp -R "$here/rootfs/." "$root/"
chmod 755 "$root/init" "$root/bin/tn-agent" "$root/etc/udhcpc/default.script"
chmod 700 "$root/root"

# The archive by busybox's own cpio: no cpio needed on the host.
(cd "$root" && find . | LC_ALL=C sort | "$tmp/pkgs/bin/busybox" cpio -o -H newc -R 0:0 --ignore-devno --renumber-inodes 2>/dev/null) | gzip -9 >"$tmp/out/initrd.gz"
cp "$tmp/pkgs/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
printf '%s' "$manifest" >"$tmp/out/manifest"
chmod 755 "$tmp/out"
chmod 644 "$tmp/out"/*
mv -T "$tmp/out" "$out"
# Builds of older inputs go unless used in the last day; so do builds that died (none runs but this one).
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name '.build.*' -mtime +0 -exec rm -rf {} + || true
find "$cache" -mindepth 1 -maxdepth 1 -type d -name '.build.*' ! -path "$tmp" -exec rm -rf {} + || true
say "built $key in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s: initrd $(du -k "$out/initrd.gz" | cut -f1) KiB, kernel $kver"
echo "$out"
