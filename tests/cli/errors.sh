#!/usr/bin/env bash
# cli.errors: bad device options get a clear message naming the problem and the documented exit
# status (2: bad arguments, caught before any VM exists; 1: a host resource vireo could not use,
# caught while building the VM, before any vCPU runs). Network cases run in a fresh network
# namespace (unshare -n), so nothing here can touch the host's interfaces.
# Usage: errors.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: errors.sh BUILD_DIR}
vireo=$build/vireo
kernel=$build/guest/cloud/vmlinuz
initrd=$build/guest/cloud/initramfs.cpio.gz
tmp=$(mktemp -d /tmp/vireo-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
passes=0

# expect STATUS PATTERN -- ARGS...: vireo exits with STATUS and its stderr matches PATTERN.
expect() {
  local want=$1 pattern=$2
  shift 3
  local out rc
  out=$(timeout 60 "$@" 2>&1 < /dev/null)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qE -- "$pattern" <<< "$out"; then
    echo "FAIL: $* -> exit $rc (want $want), output:"
    sed 's/^/    /' <<< "$out" | head -8
    echo "    (wanted the output to match: $pattern)"
    failures=$((failures + 1))
  else
    echo "ok: exit $rc: $(grep -m1 -E -- "$pattern" <<< "$out")"
    passes=$((passes + 1))
  fi
}

[ -x "$vireo" ] || { echo "no $vireo: build first"; exit 1; }
[ -f "$kernel" ] || { echo "no $kernel: run tests/guest/build first"; exit 1; }
run=("$vireo" run --kernel "$kernel" --initrd "$initrd" --memory 128M)
dd if=/dev/zero of="$tmp/disk.img" bs=1M count=4 status=none
mkdir "$tmp/dir"

expect 2 "/nonexistent/disk.img: no such file" -- "${run[@]}" --disk path=/nonexistent/disk.img
expect 2 "path=FILE is required" -- "${run[@]}" --disk readonly=on
expect 2 "unknown key 'size'" -- "${run[@]}" --disk "path=$tmp/disk.img,size=1G"
expect 2 "readonly: 'maybe' is not on or off" -- "${run[@]}" --disk "path=$tmp/disk.img,readonly=maybe"
expect 2 "longer than 20 bytes" -- "${run[@]}" --disk "path=$tmp/disk.img,serial=123456789012345678901"
expect 2 "mac" -- "${run[@]}" --net "tap=vtap0,mac=52:54:00:zz:00:01"
expect 2 "mac.*multicast" -- "${run[@]}" --net "tap=vtap0,mac=01:00:5e:00:00:01"
expect 2 "tap=NAME is required" -- "${run[@]}" --net mac=52:54:00:00:00:01
expect 2 "balloon's target of 256 MiB is more than the guest's 128 MiB of RAM" -- "${run[@]}" --balloon amount_mib=256
expect 2 "amount_mib: 16777216 is more than 16777215" -- "${run[@]}" --balloon amount_mib=16777216
expect 2 "unknown key 'size'" -- "${run[@]}" --balloon amount_mib=1,size=2
expect 2 "must be stdio, virtio or file:PATH" -- "${run[@]}" --console serial
expect 1 "disk image $tmp/dir: is a directory" -- "${run[@]}" --disk "path=$tmp/dir"
# The same image twice: the second open finds the first one's lock.
expect 1 "disk image $tmp/disk.img: in use" -- "${run[@]}" --disk "path=$tmp/disk.img" --disk "path=$tmp/disk.img"
# An interface that exists but is not a tap, and a name no interface can have.
expect 1 "interface 'lo' exists but is not a tap" -- unshare -n "${run[@]}" --net tap=lo
expect 1 "tap name '0123456789abcdefgh' is too long" -- unshare -n "${run[@]}" --net tap=0123456789abcdefgh
# The image is untouched by all of this.
[ "$(cmp "$tmp/disk.img" <(head -c 4194304 /dev/zero) && echo same)" = same ] ||
  { echo "FAIL: the disk image changed"; failures=$((failures + 1)); }
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
