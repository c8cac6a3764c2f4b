# vireo-jailer with Firecracker's documented workflow: the jailer builds the jail, vireo (copied
# in with its libraries) runs in it as uid 4242:4343, PID 1 of a new PID namespace, in the cgroup
# <cgroup2>/vireo/<id> with memory.max and cpu.max set, with an API socket given by --api-sock;
# the kernel, initramfs and root drive are hard-linked into the jail and configured through the
# API with in-jail paths; the guest boots from the root drive, powers off, vireo ends and removes
# its socket. Then the refusals by name (bad id, links, missing exec file, existing jail).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

uid=4242
gid=4343
id=nested-vm-1
jailer=$(command -v vireo-jailer) || fail "vireo-jailer is not on PATH"
vireo_bin=$(command -v vireo) || fail "vireo is not on PATH"

step "scratch file system, guest files, cgroup2"
scratch_fs 384
base=$SCRATCH/jails
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/rootfs.ext4" || fail "no /guest/rootfs.ext4.gz"
cp "$GUEST/cloud/vmlinuz" "$SCRATCH/vmlinuz" || fail "cp vmlinuz"
cat > /tmp/jailer-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "the root is the jailed drive"
root=$(awk '$2 == "/" {print $1}' /proc/mounts)
[ "$root" = /dev/vda ] || gfail "/ is $root, not the root drive /dev/vda"
echo "JAILED-GUEST-UP"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/jailer-guest.sh "$SCRATCH/initrd.cpio.gz" ||
  fail "add-scenario"
cgmount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
if [ -z "$cgmount" ]; then
  mkdir -p /sys/fs/cgroup
  mount -t cgroup2 none /sys/fs/cgroup || fail "cannot mount cgroup2"
  cgmount=/sys/fs/cgroup
fi
for c in memory cpu; do
  grep -qw $c "$cgmount/cgroup.controllers" || fail "no $c controller in $cgmount"
done

step "the jailer starts vireo"
"$jailer" --id $id --exec-file "$vireo_bin" --uid $uid --gid $gid --chroot-base-dir "$base" \
  --new-pid-ns --cgroup memory.max=536870912 --cgroup "cpu.max=150000 100000" \
  --resource-limit no-file=1024 --resource-limit fsize=1073741824 \
  -- --api-sock /api.sock > /tmp/jailed-vm.log 2>&1
rc=$?
[ $rc -eq 0 ] || { cat /tmp/jailed-vm.log; fail "vireo-jailer exited with $rc"; }
root=$base/vireo/$id/root
pid=$(cat "$root/vireo.pid") || fail "no $root/vireo.pid"
sock=$root/api.sock
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat /tmp/jailed-vm.log; fail "no API socket at $sock after 10 s"; }
expect_api 200 GET /
grep -q "\"id\":\"$id\"" /tmp/api.out || fail "GET / does not name the instance: $(cat /tmp/api.out)"

step "uid/gid, PID namespace, rlimits, root"
st=/proc/$pid/status
[ "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$st")" = "$uid $uid $uid $uid" ] ||
  fail "Uid: $(grep ^Uid: "$st")"
[ "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$st")" = "$gid $gid $gid $gid" ] ||
  fail "Gid: $(grep ^Gid: "$st")"
[ "$(awk '/^NSpid:/ {print $2, $3}' "$st")" = "$pid 1" ] || fail "NSpid: $(grep ^NSpid: "$st")"
grep -qE '^Max open files +1024 +1024 ' "/proc/$pid/limits" || fail "no-file limit not 1024"
grep -qE '^Max file size +1073741824 +1073741824 ' "/proc/$pid/limits" || fail "fsize limit"
[ "$(stat -c %d:%i "/proc/$pid/root/")" = "$(stat -c %d:%i "$root/")" ] || fail "its root is not the jail"
[ ! -s "/proc/$pid/environ" ] || fail "the environment is not empty"
# The nested host's / is the initramfs (rootfs), which pivot_root cannot move: the jailer pivots
# from a bind of it; either way the old root must be gone from the jail's view.
[ "$(wc -l < "/proc/$pid/mountinfo")" = 1 ] || fail "mounts visible in the jail: $(cat "/proc/$pid/mountinfo")"

step "cgroup: placement and limits"
cg=$cgmount/vireo/$id
[ "$(cat "/proc/$pid/cgroup")" = "0::/vireo/$id" ] || fail "/proc/$pid/cgroup: $(cat "/proc/$pid/cgroup")"
grep -qx "$pid" "$cg/cgroup.procs" || fail "$pid is not in $cg/cgroup.procs"
[ "$(cat "$cg/memory.max")" = 536870912 ] || fail "memory.max reads $(cat "$cg/memory.max")"
[ "$(cat "$cg/cpu.max")" = "150000 100000" ] || fail "cpu.max reads $(cat "$cg/cpu.max")"
grep -qw memory "$cgmount/vireo/cgroup.subtree_control" || fail "memory not enabled in vireo/"

step "hard-link the kernel, initramfs and root drive into the jail; configure with jail paths"
for f in vmlinuz initrd.cpio.gz rootfs.ext4; do
  ln "$SCRATCH/$f" "$root/$f" || fail "ln $f"
done
chown $uid:$gid "$root/rootfs.ext4"
[ "$(stat -c %h "$root/rootfs.ext4")" = 2 ] || fail "rootfs.ext4 is not a hard link"
expect_api 204 PUT /boot-source '{"kernel_image_path": "/vmlinuz", "initrd_path": "/initrd.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=1 quiet"}'
expect_api 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
expect_api 204 PUT /drives/rootfs '{"drive_id": "rootfs", "path_on_host": "/rootfs.ext4", "is_root_device": true, "is_read_only": false}'
# A host path outside the jail does not exist for the jailed vireo.
expect_api 400 PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SCRATCH/rootfs.ext4\", \"is_root_device\": false, \"is_read_only\": true}"

step "InstanceStart: the guest boots from the jailed drive and powers off"
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
n=0
while [ -e "/proc/$pid" ] && [ $n -lt 2400 ]; do sleep 0.1; n=$((n + 1)); done
[ ! -e "/proc/$pid" ] || { tail -20 /tmp/jailed-vm.log; fail "vireo still runs 240 s after InstanceStart"; }
tail -5 /tmp/jailed-vm.log
gf=$(tr -d '\r' < /tmp/jailed-vm.log | grep -m1 '^GUEST-FAIL' || true)
[ -z "$gf" ] || fail "in the guest: $gf"
expect_line /tmp/jailed-vm.log '^VIREO-ROOTFS-READY'
expect_line /tmp/jailed-vm.log '^JAILED-GUEST-UP'
expect_line /tmp/jailed-vm.log '^VIREO-SCENARIO-EXIT 0'
[ ! -e "$sock" ] || fail "the API socket is still there"
[ -z "$(cat "$cg/cgroup.procs")" ] || fail "processes left in $cg"
peak=$(cat "$cg/memory.peak" 2>/dev/null || echo 0)
echo "memory.peak of the instance's cgroup: $peak"

step "refusals by name, nothing created"
refused() {  # refused NAME PATTERN ARGS...
  _name=$1 _pattern=$2
  shift 2
  _before=$(find "$base" | sort | md5sum)
  "$jailer" "$@" > /tmp/refused.log 2>&1 && fail "$_name: accepted"
  grep -q -- "$_pattern" /tmp/refused.log || fail "$_name: message '$(cat /tmp/refused.log)' lacks '$_pattern'"
  [ "$(find "$base" | sort | md5sum)" = "$_before" ] || fail "$_name: something was created"
  echo "refused ($_name): $(cat /tmp/refused.log)"
}
c="--uid $uid --gid $gid --chroot-base-dir $base"
refused "bad id" "only letters, digits and '-'" --id "../x" --exec-file "$vireo_bin" $c
ln -s "$vireo_bin" /tmp/vireo-link
refused "symlinked exec file" "is a symbolic link" --id ok-2 --exec-file /tmp/vireo-link $c
refused "missing exec file" "/tmp/no-vireo: No such file" --id ok-2 --exec-file /tmp/no-vireo $c
refused "existing jail" "already exists" --id $id --exec-file "$vireo_bin" $c
echo "jailer scenario: ok"
