# Nested scenario (tests/nested/run tests/guest/check-rootfs.sh): the guest side of the API
# scenarios, checked under QEMU (-M q35 -accel kvm, whose i8042 is the reference) so that a failure
# later under vireo is vireo's. Boots the cloud kernel + initramfs with build/guest/rootfs.ext4 as
# virtio-blk vda and root= on the command line:
#   root=/dev/vda rw        the rootfs's /sbin/init runs /scenario.sh from the disk; writes persist
#   root=/dev/vda ro        read-only root; a scenario appended to the initramfs is handed over
#   root=PARTUUID=          MBR and GPT images from tests/guest/mkpartimg (root is vda1)
#   vireo.boot_timer        devmem writes 123 to 0xe8000000 without error (nothing there in QEMU)
#   Ctrl-Alt-Del            QEMU's `sendkey ctrl-alt-delete`: init prints VIREO-CTRL-ALT-DEL, powers off
# and the std kernel once (ext4 as a module). Needs /guest/rootfs.ext4.gz and mkpartimg in the host.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

[ -f "$GUEST/rootfs.ext4.gz" ] ||
  fail "no $GUEST/rootfs.ext4.gz in the test host (tests/guest/build, tests/nested/build-host)"
scratch_fs 768
ROOTFS=$SCRATCH/rootfs.ext4
gunzip -c "$GUEST/rootfs.ext4.gz" > "$ROOTFS" || fail "cannot unpack the root file system image"
DEBUGFS=/usr/sbin/debugfs

# qemu_guest NAME FLAVOUR INITRD DISK CMDLINE [QEMU_ARGS...]: boots and waits (240 s).
qemu_guest() {
  _n=$1 _f=$2 _i=$3 _d=$4 _c=$5
  shift 5
  run_timed 240 "/tmp/$_n.log" qemu-system-x86_64 -accel kvm -M q35 -smp 1 -m 256 \
    -display none -vga none -serial stdio -nic none -no-reboot \
    -kernel "$GUEST/$_f/vmlinuz" -initrd "$_i" \
    -drive "file=$_d,format=raw,if=none,id=root" -device virtio-blk-pci,drive=root \
    -append "$_c" "$@"
}

# with_scenario IMAGE SCRIPT OUT: a copy of IMAGE (an ext4 file system) with SCRIPT as /scenario.sh.
with_scenario() {
  cp "$1" "$3" || fail "cannot copy $1"
  $DEBUGFS -w -R "write $2 scenario.sh" "$3" >/dev/null 2>&1 || fail "debugfs write into $3 failed"
}

no_fail_lines() {
  ! tr -d '\r' < "$1" | grep -E 'VIREO-ROOT-FAIL|boot timer write failed|GUEST-FAIL' ||
    fail "failure lines in $1"
}

step "root=/dev/vda rw, scenario on the root file system, boot timer"
cat > /tmp/rw.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep checks
[ "$(cat /etc/vireo-guest)" = rootfs ] || gfail "not on the rootfs"
echo "persist $(cat /proc/sys/kernel/random/boot_id)" > /written || gfail "cannot write to /"
sync
grep -q '^rootfs' /proc/mounts && gfail "the initramfs is still mounted"
[ "$(cat /proc/sys/kernel/ctrl-alt-del)" = 0 ] || gfail "ctrl-alt-del still restarts the kernel"
grep -i -E 'e8000000' /proc/iomem && gfail "something claims the boot timer address"
echo "iomem around the boot timer:"
grep -E '^ *(c|d|e|f)[0-9a-f]{7}-' /proc/iomem
exit 3
SCEN
with_scenario "$ROOTFS" /tmp/rw.sh "$SCRATCH/rw.ext4"
qemu_guest rw cloud "$GUEST/cloud/initramfs.cpio.gz" "$SCRATCH/rw.ext4" \
  "console=ttyS0 panic=-1 quiet root=/dev/vda rw vireo.boot_timer" || fail "QEMU failed or hung"
no_fail_lines /tmp/rw.log
expect_line /tmp/rw.log '^VIREO-ROOTFS-READY$'
expect_line /tmp/rw.log '^ROOT=/dev/vda$'
expect_line /tmp/rw.log '^ROOT-MODE=rw$'
expect_line /tmp/rw.log '^VIREO-SCENARIO-EXIT 3$'
$DEBUGFS -R "cat /written" "$SCRATCH/rw.ext4" 2>/dev/null | grep -q '^persist ' ||
  fail "/written did not reach the disk"

step "root=/dev/vda ro, scenario handed over from the initramfs"
cat > /tmp/ro.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep checks
[ "$0" = /run/vireo/scenario.sh ] || gfail "scenario runs as $0"
[ -f /run/vireo/scenario/extra.txt ] || gfail "the scenario's files were not handed over"
touch /x 2>/dev/null && gfail "the root is writable"
touch /tmp/x /run/x || gfail "no writable /tmp or /run"
echo "ro checks passed"
SCEN
echo extra > /tmp/extra.txt
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/ro.sh /tmp/ro.cpio.gz /tmp/extra.txt ||
  fail "add-scenario failed"
cp "$ROOTFS" "$SCRATCH/ro.ext4"
qemu_guest ro cloud /tmp/ro.cpio.gz "$SCRATCH/ro.ext4" \
  "console=ttyS0 panic=-1 quiet root=/dev/vda ro" || fail "QEMU failed or hung"
no_fail_lines /tmp/ro.log
expect_line /tmp/ro.log '^ROOT=/dev/vda$'
expect_line /tmp/ro.log '^ROOT-MODE=ro$'
expect_line /tmp/ro.log '^ro checks passed$'
expect_line /tmp/ro.log '^VIREO-SCENARIO-EXIT 0$'

for table in mbr gpt; do
  step "root=PARTUUID= on a $table disk"
  cat > /tmp/pu.sh <<'SCEN'
echo "partitions: $(ls /sys/block/vda | grep vda)"
SCEN
  with_scenario "$ROOTFS" /tmp/pu.sh "$SCRATCH/pu.ext4"
  uuid=$(mkpartimg $table "$SCRATCH/pu.ext4" "$SCRATCH/pu-$table.img") || fail "mkpartimg $table failed"
  echo "PARTUUID=$uuid"
  # Upper case on the command line: the kernel compares PARTUUIDs case-insensitively.
  qemu_guest pu-$table cloud "$GUEST/cloud/initramfs.cpio.gz" "$SCRATCH/pu-$table.img" \
    "console=ttyS0 panic=-1 quiet root=PARTUUID=$(echo "$uuid" | tr a-f A-F) rw" ||
    fail "QEMU failed or hung"
  no_fail_lines /tmp/pu-$table.log
  expect_line /tmp/pu-$table.log '^ROOT=/dev/vda1$'
  expect_line /tmp/pu-$table.log '^VIREO-SCENARIO-EXIT 0$'
  rm -f "$SCRATCH/pu-$table.img"
done

step "root= that does not exist fails clearly"
qemu_guest noroot cloud "$GUEST/cloud/initramfs.cpio.gz" "$ROOTFS" \
  "console=ttyS0 panic=-1 quiet root=PARTUUID=00000000-01 ro" || fail "QEMU failed or hung"
expect_line /tmp/noroot.log '^VIREO-ROOT-FAIL: root=PARTUUID=00000000-01: no such block device'

step "std kernel, root=/dev/vda rw"
printf 'grep -q "^ext4 " /proc/modules && echo "ext4 is a module here"\n' > /tmp/std.sh
with_scenario "$ROOTFS" /tmp/std.sh "$SCRATCH/std.ext4"
qemu_guest std std "$GUEST/std/initramfs.cpio.gz" "$SCRATCH/std.ext4" \
  "console=ttyS0 panic=-1 quiet root=/dev/vda rw" || fail "QEMU failed or hung"
no_fail_lines /tmp/std.log
expect_line /tmp/std.log '^ROOT=/dev/vda$'
expect_line /tmp/std.log '^VIREO-SCENARIO-EXIT 0$'

cat > /tmp/cad.sh <<'SCEN'
dmesg | grep -i -E 'i8042|serio|atkbd|input:' | sed 's/^/dmesg: /'
echo CAD-WAITING
sleep 200
echo "CAD did not arrive"
SCEN
with_scenario "$ROOTFS" /tmp/cad.sh "$SCRATCH/cad.ext4"
# QEMU's q35 describes its i8042 in the DSDT (PNP0303), so Linux finds it as is; the second run
# has Firecracker's i8042 options, which vireo's guests use (no 8042 in vireo's ACPI tables).
for opts in "" "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"; do
  step "Ctrl-Alt-Del through QEMU's i8042 (${opts:-no i8042 options})"
  rm -f /tmp/mon.sock /tmp/cad.log
  qemu_guest cad cloud "$GUEST/cloud/initramfs.cpio.gz" "$SCRATCH/cad.ext4" \
    "console=ttyS0 panic=-1 quiet root=/dev/vda ro $opts" \
    -monitor unix:/tmp/mon.sock,server=on,wait=off &
  cad_pid=$!
  n=0
  until tr -d '\r' < /tmp/cad.log 2>/dev/null | grep -q '^CAD-WAITING$'; do
    n=$((n + 1))
    [ $n -lt 1200 ] || fail "the guest never reached CAD-WAITING"
    kill -0 $cad_pid 2>/dev/null || fail "QEMU ended before CAD-WAITING"
    sleep 0.1
  done
  echo "sendkey ctrl-alt-delete" | socat - UNIX-CONNECT:/tmp/mon.sock >/dev/null ||
    fail "cannot reach QEMU's monitor"
  wait $cad_pid || fail "QEMU failed or hung after Ctrl-Alt-Del"
  expect_line /tmp/cad.log '^VIREO-CTRL-ALT-DEL$'
  tr -d '\r' < /tmp/cad.log | grep -q '^CAD did not arrive$' && fail "the scenario outlived Ctrl-Alt-Del"
done
echo "check-rootfs: OK"
