# virtio-blk: the guest formats nothing. 1) It mounts an ext4 image built on the host
# (mke2fs -d), checks a known file's sha256, writes files and syncs; after power-off the host
# reads them back with debugfs and e2fsck -fn finds the image clean. 2) A readonly=on disk shows
# ro=1, mounts and reads, rejects raw writes and rw mounts, and the image stays byte-identical.
# 3) Two raw disks at once: order, sizes and serials as given, each one's own contents, and a
# data-integrity check (a 32 MiB random pattern written with O_DIRECT, 4 MiB written buffered in
# 4 KiB blocks) compared by checksum on the host, with the bytes around them untouched.
# 4) blkdiscard in the guest punches a hole in the image (reads zeros, fewer blocks), and data
# the guest wrote and synced is in the image after the VMM is killed with SIGKILL. 5) With two
# vCPUs the disk has two request queues, and thousands of random reads in flight at once each
# return their own block (a stamped image, checked in the guest).
# VIREO_SCENARIO_VMM=qemu runs the same boots under QEMU (a check of the scenario itself).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

echo "virtio-blk: VMM $(vmm_name)"
scratch_fs 512
img=$SCRATCH/blk
mkdir -p "$img"

# ---- 1) ext4 image, read-write ----
step "build an ext4 image with mke2fs -d holding a known random file"
rm -rf /tmp/ext4src && mkdir -p /tmp/ext4src/dir
dd if=/dev/urandom of=/tmp/ext4src/known.bin bs=1M count=4 2>/dev/null || fail "dd urandom failed"
echo "hello from the host" > /tmp/ext4src/dir/hello.txt
known_sha=$(sha256sum /tmp/ext4src/known.bin | cut -d' ' -f1)
$MKE2FS -q -F -t ext4 -d /tmp/ext4src "$img/ext4.img" 64M || fail "mke2fs -d failed"
token=vireo-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')

{
  echo "KNOWN_SHA=$known_sha TOKEN=$token"
  cat <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/vda appears"
wait_path /dev/vda 10
size=$(cat /sys/block/vda/size) ro=$(cat /sys/block/vda/ro)
echo "vda: $size sectors, ro=$ro"
[ "$size" -eq $((64 * 2048)) ] || gfail "/dev/vda has $size sectors, expected $((64 * 2048)) (64 MiB)"
[ "$ro" = 0 ] || gfail "/dev/vda is read-only (ro=$ro) without readonly=on"
gstep "mount the ext4 image"
mount -t ext4 /dev/vda /mnt || gfail "mount -t ext4 /dev/vda /mnt failed"
gstep "read the known file"
[ "$(cat /mnt/dir/hello.txt)" = "hello from the host" ] || gfail "dir/hello.txt reads '$(cat /mnt/dir/hello.txt)'"
got=$(sha /mnt/known.bin)
[ "$got" = "$KNOWN_SHA" ] || gfail "known.bin sha256 $got, expected $KNOWN_SHA"
echo "known.bin sha256 matches"
gstep "write new files and sync"
echo "$TOKEN" > /mnt/newfile || gfail "cannot write /mnt/newfile"
dd if=/dev/urandom of=/mnt/big.bin bs=1M count=8 2>/dev/null || gfail "cannot write /mnt/big.bin"
echo "BIG_SHA=$(sha /mnt/big.bin)"
sync || gfail "sync failed"
gstep "unmount"
umount /mnt || gfail "umount /mnt failed"
echo "ext4 rw: done"
SCEN
} > /tmp/blk-rw.sh

step "boot with --disk ext4.img: mount, read, write, sync (guest side)"
vireo_boot blk-rw 150 /tmp/blk-rw.sh --memory 256M --disk path="$img/ext4.img"
guest_ok blk-rw $?

step "host: the guest's files are in the image (debugfs) and e2fsck -fn is clean"
got=$(debugfs -R 'cat /newfile' "$img/ext4.img" 2>/dev/null)
[ "$got" = "$token" ] || fail "debugfs cat /newfile gives '$got', expected '$token'"
big_sha=$(guest_value /tmp/blk-rw.log BIG_SHA)
[ -n "$big_sha" ] || fail "the guest did not report BIG_SHA"
rm -f /tmp/big.out
debugfs -R 'dump /big.bin /tmp/big.out' "$img/ext4.img" >/dev/null 2>&1
[ "$(sha256sum /tmp/big.out 2>/dev/null | cut -d' ' -f1)" = "$big_sha" ] ||
  fail "big.bin dumped by debugfs does not match the guest's sha256 $big_sha"
e2fsck -fn "$img/ext4.img" > /tmp/e2fsck.log 2>&1 || {
  cat /tmp/e2fsck.log
  fail "e2fsck -fn reports problems in the image the guest wrote"
}
echo "host: /newfile and /big.bin match, e2fsck clean"

# ---- 2) read-only disk ----
step "read-only disk: prepare"
$MKE2FS -q -F -t ext4 -d /tmp/ext4src "$img/ro.img" 32M || fail "mke2fs -d failed"
ro_before=$(sha256sum "$img/ro.img" | cut -d' ' -f1)
{
  echo "KNOWN_SHA=$known_sha"
  cat <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/vda appears, read-only"
wait_path /dev/vda 10
ro=$(cat /sys/block/vda/ro)
echo "vda: ro=$ro"
[ "$ro" = 1 ] || gfail "/sys/block/vda/ro is '$ro' with readonly=on, expected 1"
gstep "mount -o ro and read"
mount -t ext4 -o ro /dev/vda /mnt || gfail "mount -o ro failed"
got=$(sha /mnt/known.bin)
[ "$got" = "$KNOWN_SHA" ] || gfail "known.bin sha256 $got, expected $KNOWN_SHA"
umount /mnt || gfail "umount failed"
gstep "raw writes fail"
if dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2>/tmp/dd.err; then
  gfail "an O_DIRECT write to the read-only /dev/vda succeeded"
fi
echo "O_DIRECT write refused: $(cat /tmp/dd.err | head -1)"
if dd if=/dev/zero of=/dev/vda bs=4096 count=16 seek=100 conv=fsync 2>/tmp/dd.err; then
  gfail "a buffered write + fsync to the read-only /dev/vda succeeded"
fi
echo "buffered write refused: $(cat /tmp/dd.err | head -1)"
gstep "a read-write mount is refused or falls back to read-only"
if mount -t ext4 -o rw /dev/vda /mnt 2>/tmp/mount.err; then
  if echo x > /mnt/should-fail 2>/dev/null; then gfail "wrote a file on the read-only disk"; fi
  grep -q ' /mnt ext4 ro' /proc/mounts || gfail "rw mount of the read-only disk is not ro: $(grep ' /mnt ' /proc/mounts)"
  umount /mnt
  echo "rw mount fell back to read-only"
else
  echo "rw mount refused: $(head -1 /tmp/mount.err)"
fi
echo "read-only: done"
SCEN
} > /tmp/blk-ro.sh

step "boot with --disk ...,readonly=on (guest side)"
vireo_boot blk-ro 150 /tmp/blk-ro.sh --memory 256M --disk path="$img/ro.img",readonly=on
guest_ok blk-ro $?

step "host: the read-only image is byte-identical"
ro_after=$(sha256sum "$img/ro.img" | cut -d' ' -f1)
[ "$ro_after" = "$ro_before" ] || fail "ro.img changed: sha256 $ro_before before, $ro_after after"
echo "host: ro.img unchanged"

# ---- 3) two disks, serials, data integrity ----
step "two raw disks: prepare (distinct sizes, random 1 MiB headers, zeros after)"
mkhdr() {  # mkhdr FILE SIZE_MIB: 1 MiB random header, zeros to SIZE_MIB
  dd if=/dev/urandom of="$1" bs=1M count=1 2>/dev/null || fail "dd header failed"
  truncate -s "$2M" "$1" || fail "truncate failed"
  # Allocate the zeros for real, so both VMMs read data, not holes.
  dd if=/dev/zero of="$1" bs=1M seek=1 count=$(($2 - 1)) conv=notrunc 2>/dev/null
}
mkhdr "$img/a.raw" 64
mkhdr "$img/b.raw" 48
hdr_a=$(dd if="$img/a.raw" bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)
hdr_b=$(dd if="$img/b.raw" bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)
{
  echo "HDR_A=$hdr_a HDR_B=$hdr_b"
  cat <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/vda and /dev/vdb appear"
wait_path /dev/vda 10
wait_path /dev/vdb 10
gstep "order, sizes and serials"
for d in vda:64:vireo-disk-a vdb:48:vireo-disk-b; do
  dev=${d%%:*} rest=${d#*:}
  mib=${rest%%:*} serial=${rest#*:}
  size=$(cat /sys/block/$dev/size)
  got_serial=$(cat /sys/block/$dev/serial 2>/dev/null)
  echo "$dev: $size sectors, serial '$got_serial'"
  [ "$size" -eq $((mib * 2048)) ] || gfail "$dev has $size sectors, expected $((mib * 2048)) ($mib MiB)"
  [ "$got_serial" = "$serial" ] || gfail "$dev serial is '$got_serial', expected '$serial'"
done
gstep "each disk holds its own header"
got=$(dd if=/dev/vda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$HDR_A" ] || gfail "vda's first MiB has sha256 $got, expected $HDR_A"
got=$(dd if=/dev/vdb bs=1M count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$HDR_B" ] || gfail "vdb's first MiB has sha256 $got, expected $HDR_B"
gstep "write a 32 MiB random pattern to vdb at 1 MiB (O_DIRECT, 1 MiB blocks)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=32 2>/dev/null || gfail "cannot make the pattern"
pat=$(sha /tmp/pat)
dd if=/tmp/pat of=/dev/vdb bs=1M seek=1 oflag=direct conv=fsync 2>/tmp/dd.err ||
  gfail "O_DIRECT write to vdb failed: $(cat /tmp/dd.err)"
echo "PAT_SHA=$pat"
gstep "write 4 MiB to vda at 40 MiB (buffered, 4 KiB blocks) and sync"
dd if=/dev/urandom of=/tmp/small bs=1M count=4 2>/dev/null
small=$(sha /tmp/small)
dd if=/tmp/small of=/dev/vda bs=4k seek=10240 2>/tmp/dd.err || gfail "buffered write to vda failed: $(cat /tmp/dd.err)"
sync
echo "SMALL_SHA=$small"
gstep "read both back (O_DIRECT)"
got=$(dd if=/dev/vdb bs=1M skip=1 count=32 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$pat" ] || gfail "vdb reads back $got, wrote $pat"
echo 3 > /proc/sys/vm/drop_caches
got=$(dd if=/dev/vda bs=1M skip=40 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$small" ] || gfail "vda reads back $got at 40 MiB, wrote $small"
echo "two disks: done"
SCEN
} > /tmp/blk-two.sh

step "boot with two --disk (serial=...) (guest side)"
vireo_boot blk-two 150 /tmp/blk-two.sh --memory 256M \
  --disk path="$img/a.raw",serial=vireo-disk-a --disk path="$img/b.raw",serial=vireo-disk-b
guest_ok blk-two $?

step "host: the written data is in the images, nothing else changed"
range_sha() { dd if="$1" bs=1M skip="$2" count="$3" 2>/dev/null | sha256sum | cut -d' ' -f1; }
zeros_sha() { dd if=/dev/zero bs=1M count="$1" 2>/dev/null | sha256sum | cut -d' ' -f1; }
pat=$(guest_value /tmp/blk-two.log PAT_SHA)
small=$(guest_value /tmp/blk-two.log SMALL_SHA)
[ -n "$pat" ] && [ -n "$small" ] || fail "the guest did not report PAT_SHA/SMALL_SHA"
[ "$(range_sha "$img/b.raw" 1 32)" = "$pat" ] || fail "b.raw[1 MiB, 33 MiB) does not match the 32 MiB pattern the guest wrote"
[ "$(range_sha "$img/a.raw" 40 4)" = "$small" ] || fail "a.raw[40 MiB, 44 MiB) does not match the 4 MiB the guest wrote"
[ "$(range_sha "$img/a.raw" 0 1)" = "$hdr_a" ] || fail "a.raw's header changed"
[ "$(range_sha "$img/b.raw" 0 1)" = "$hdr_b" ] || fail "b.raw's header changed"
[ "$(range_sha "$img/a.raw" 1 39)" = "$(zeros_sha 39)" ] || fail "a.raw[1 MiB, 40 MiB) is no longer zero"
[ "$(range_sha "$img/a.raw" 44 20)" = "$(zeros_sha 20)" ] || fail "a.raw[44 MiB, 64 MiB) is no longer zero"
[ "$(range_sha "$img/b.raw" 33 15)" = "$(zeros_sha 15)" ] || fail "b.raw[33 MiB, 48 MiB) is no longer zero"
[ "$(stat -c %s "$img/a.raw")" -eq $((64 << 20)) ] || fail "a.raw changed size"
[ "$(stat -c %s "$img/b.raw")" -eq $((48 << 20)) ] || fail "b.raw changed size"
echo "host: pattern and 4 KiB writes intact, surrounding bytes untouched"

# ---- 4) discard punches a hole; data the guest synced survives kill -9 of the VMM ----
step "discard and kill -9: prepare a 64 MiB image of random data"
dd if=/dev/urandom of="$img/c.raw" bs=1M count=64 2>/dev/null || fail "cannot write c.raw"
blocks_before=$(stat -c %b "$img/c.raw")
cat > /tmp/blk-kill.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/vda appears"
wait_path /dev/vda 10
gstep "discard 8 MiB at 8 MiB (blkdiscard)"
[ "$(cat /sys/block/vda/queue/discard_max_bytes)" -gt 0 ] || gfail "vda does not advertise discard"
blkdiscard -o $((8 << 20)) -l $((8 << 20)) /dev/vda 2>/tmp/bd.err || gfail "blkdiscard failed: $(cat /tmp/bd.err)"
gstep "write 4 MiB at 40 MiB and sync"
dd if=/dev/urandom of=/tmp/d bs=1M count=4 2>/dev/null
echo "DURABLE_SHA=$(sha /tmp/d)"
dd if=/tmp/d of=/dev/vda bs=1M seek=40 2>/tmp/dd.err || gfail "write failed: $(cat /tmp/dd.err)"
sync
echo "DURABLE-READY"
sleep 120
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/blk-kill.sh /tmp/blk-kill.cpio.gz ||
  fail "add-scenario failed"
step "boot, discard, write + sync, then kill -9 the VMM"
vmm_run --kernel "$GUEST/cloud/vmlinuz" --initrd /tmp/blk-kill.cpio.gz \
  --cmdline "console=ttyS0 panic=-1 quiet" --memory 256M --disk path="$img/c.raw" \
  > /tmp/blk-kill.log 2>&1 &
n=240
while [ $n -gt 0 ] && ! tr -d '\r' < /tmp/blk-kill.log | grep -q '^DURABLE-READY'; do
  tr -d '\r' < /tmp/blk-kill.log | grep -q '^GUEST-FAIL' && break
  sleep 0.5
  n=$((n - 1))
done
case $(vmm_name) in vireo) victim='vireo run' ;; *) victim=qemu-system-x86_64 ;; esac
pkill -9 -f "$victim"
wait
_gf=$(tr -d '\r' < /tmp/blk-kill.log | grep -m1 '^GUEST-FAIL' || true)
[ -z "$_gf" ] || fail "in the guest: ${_gf#GUEST-FAIL }"
tr -d '\r' < /tmp/blk-kill.log | grep -q '^DURABLE-READY' || fail "the guest never reported its synced write"
step "host: the synced data is in the image, the discarded range reads zeros and is a hole"
want=$(guest_value /tmp/blk-kill.log DURABLE_SHA)
[ "$(range_sha "$img/c.raw" 40 4)" = "$want" ] || fail "c.raw[40 MiB, 44 MiB) lost the write the guest synced before kill -9"
[ "$(range_sha "$img/c.raw" 8 8)" = "$(zeros_sha 8)" ] || fail "c.raw[8 MiB, 16 MiB) does not read zeros after discard"
blocks_after=$(stat -c %b "$img/c.raw")
echo "c.raw: $blocks_before blocks before, $blocks_after after (512-byte blocks)"
[ "$blocks_after" -le $((blocks_before - 8 * 2048)) ] || fail "discard did not deallocate: $blocks_before -> $blocks_after blocks"
echo "host: synced data survived kill -9; discard punched an 8 MiB hole"

# ---- 5) many requests in flight on two queues return the right data ----
step "stamped image: every 8 bytes hold their 4 KiB block's index"
vireo-iotool stamp "$img/s.raw" 64M || fail "vireo-iotool stamp failed"
cat > /tmp/blk-verify.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/vda appears with one queue per vCPU"
wait_path /dev/vda 10
echo "queues: $(ls /sys/block/vda/mq | wc -l)"
[ "$(ls /sys/block/vda/mq | wc -l)" -eq 2 ] || gfail "vda has $(ls /sys/block/vda/mq | wc -l) hardware queues, expected 2 (one per vCPU)"
gstep "4 KiB random O_DIRECT reads at queue depth 32, each checked"
vireo-iotool randverify /dev/vda -b 4k -q 32 -t 5 2>&1 || gfail "randverify 4k failed"
gstep "64 KiB random O_DIRECT reads at queue depth 16, each checked"
vireo-iotool randverify /dev/vda -b 64k -q 16 -t 3 2>&1 || gfail "randverify 64k failed"
echo "verify: done"
SCEN
step "boot with 2 vCPUs: random reads in flight on both queues return their own blocks (guest side)"
vireo_boot blk-verify 150 /tmp/blk-verify.sh --memory 256M --cpus 2 --disk path="$img/s.raw",direct=on
guest_ok blk-verify $?
echo "virtio-blk: OK ($(vmm_name))"
