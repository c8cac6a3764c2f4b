# The Firecracker-compatible API, driven with curl --unix-socket like Firecracker's getting-started
# guide: 1) logger, metrics, boot-source, a root drive (the guest's / is an ext4 image: the
# initramfs loads the virtio modules and switch_roots into it), a second drive, a network
# interface on a tap, InstanceStart: the guest boots from the drive with its NIC (it pings the
# host), powers off, vireo exits 0 and the socket is gone; bad requests after boot answer 400 and
# do not disturb the guest; PATCH /drives after boot swaps the data drive's image and the guest
# sees the new capacity and contents. 4) SendCtrlAltDel makes the guest power off and vireo exit 0;
# --boot-timer logs the guest's boot time. 2) Pause and
# resume while the guest prints a counter every 100 ms: no lines while paused, then the count goes
# on from where it stopped (no restart), and the guest's clock did not jump. 3) --config-file with
# --no-api boots the same guest without any API call.
# Link-local addresses only (DESIGN.md §5).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

sock=/tmp/vireo-api.sock
kernel=$GUEST/cloud/vmlinuz
cleanup() {
  pkill -f "vireo --api-sock" 2>/dev/null
  $IP link del vtap0 2>/dev/null
}
trap cleanup EXIT

# ---- 1) getting started ----
step "scratch disks (the root file system image, a data disk) and tap"
scratch_fs 256
dd if=/dev/urandom of="$SCRATCH/data.raw" bs=1M count=8 2>/dev/null || fail "dd"
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/rootfs.ext4" || fail "no /guest/rootfs.ext4.gz"
tap_up vtap0 169.254.100.1/24
cat > /tmp/api-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "the root is the drive; the second drive and the NIC are there"
root=$(awk '$2 == "/" {print $1}' /proc/mounts)
echo "root $root"
[ "$root" = /dev/vda ] || gfail "/ is $root, not the root drive /dev/vda"
wait_path /dev/vdb 10
echo "vdb serial $(cat /sys/block/vdb/serial)"
[ "$(cat /sys/block/vdb/serial)" = data ] || gfail "vdb's serial is not the drive_id"
for _ in $(seq 1 100); do eth=$(iface_by_mac 52:54:00:76:69:42) && break; sleep 0.1; done
[ -n "$eth" ] || gfail "no NIC with the guest_mac given"
ip link set "$eth" up && ip addr add 169.254.100.2/24 dev "$eth" || gfail "ip"
ok=0
for _ in $(seq 1 15); do ping -c 1 -W 2 169.254.100.1 > /dev/null 2>&1 && { ok=1; break; }; done
[ $ok -eq 1 ] || gfail "the host does not answer pings"
echo "API-GUEST-UP"
gstep "PATCH /drives after boot: vdb becomes the new 16 MiB image"
for _ in $(seq 1 600); do [ "$(cat /sys/block/vdb/size)" = 32768 ] && break; sleep 0.2; done
[ "$(cat /sys/block/vdb/size)" = 32768 ] || gfail "vdb still has $(cat /sys/block/vdb/size) sectors"
head=$(dd if=/dev/vdb bs=512 count=1 iflag=direct 2>/dev/null | head -c 7)
[ "$head" = NEWDISK ] || gfail "vdb reads '$head', not the new image"
echo "VDB-SWAPPED"
# Wait for the host's bad requests, then power off.
for _ in $(seq 1 300); do [ -e /tmp/go ] && break; ping -c 1 -W 1 169.254.100.1 > /dev/null 2>&1 || true; nc -z 169.254.100.1 5300 2>/dev/null && break; sleep 0.2; done
echo "api guest: done"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/api-guest.sh /tmp/api.cpio.gz || fail "add-scenario"

step "start vireo --api-sock; the socket accepts"
rm -f "$sock"
vireo --api-sock "$sock" --id api-test --metrics-path /tmp/api-metrics.json > /tmp/api.log 2>&1 &
vpid=$!
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "no API socket after 5 s"
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode is $(stat -c %a "$sock"), expected 600"
expect_api 200 GET /
grep -q '"state":"Not started"' /tmp/api.out || fail "GET / says $(cat /tmp/api.out)"

step "configure: logger, boot-source, machine-config, drive, network interface"
expect_api 204 PUT /logger '{"log_path": "/tmp/api-vireo.log", "level": "Info"}'
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/api.cpio.gz\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 quiet\"}"
expect_api 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
expect_api 204 PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$SCRATCH/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
expect_api 204 PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SCRATCH/data.raw\", \"is_root_device\": false, \"is_read_only\": true}"
expect_api 400 PUT /drives/data2 "{\"drive_id\": \"data2\", \"path_on_host\": \"$SCRATCH/data.raw\", \"is_root_device\": true, \"is_read_only\": true}"
expect_api 204 PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "vtap0", "guest_mac": "52:54:00:76:69:42"}'
step "bad requests before boot answer 400 and change nothing"
expect_api 400 PUT /machine-config '{"vcpu_count": 0, "mem_size_mib": 256}'
expect_api 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 1099511627776}'
expect_api 400 PUT /drives/x '{"drive_id": "x", "path_on_host": "/nonexistent", "is_root_device": false, "is_read_only": false}'
expect_api 400 PUT /boot-source '{"kernel_image_path": 7}'
expect_api 400 PATCH /vm '{"state": "Paused"}'
expect_api 200 GET /machine-config
grep -q '"vcpu_count":2' /tmp/api.out || fail "a refused PUT changed the machine config: $(cat /tmp/api.out)"

step "InstanceStart: the guest boots with the drive and the NIC"
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
expect_api 200 GET /
grep -q '"state":"Running"' /tmp/api.out || fail "GET / after InstanceStart says $(cat /tmp/api.out)"
wait_for /tmp/api.log '^API-GUEST-UP' 120 || { cat /tmp/api.log; fail "the guest did not come up"; }

step "bad requests after boot: 400, the guest carries on"
expect_api 400 PUT /machine-config '{"vcpu_count": 4, "mem_size_mib": 256}'
expect_api 400 PUT /actions '{"action_type": "InstanceStart"}'
expect_api 400 PUT /boot-source "{\"kernel_image_path\": \"$kernel\"}"
expect_api 400 PUT /actions '{"action_type": "Explode"}'
expect_api 400 GET /no/such/endpoint
expect_api 204 PUT /actions '{"action_type": "FlushMetrics"}'
grep -q '"devices"' /tmp/api-metrics.json || fail "no metrics line after FlushMetrics"
expect_api 200 GET /vm/config
grep -q '"host_dev_name":"vtap0"' /tmp/api.out || fail "GET /vm/config lacks the NIC: $(cat /tmp/api.out)"
ping -c 1 -W 5 169.254.100.2 > /dev/null || fail "the guest stopped answering pings after the bad requests"

step "PATCH /drives after boot swaps the image; the guest sees the new capacity"
printf NEWDISK > "$SCRATCH/data2.raw"
truncate -s 16M "$SCRATCH/data2.raw"
expect_api 400 PATCH /drives/nosuch "{\"drive_id\": \"nosuch\", \"path_on_host\": \"$SCRATCH/data2.raw\"}"
expect_api 204 PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SCRATCH/data2.raw\"}"
wait_for /tmp/api.log '^VDB-SWAPPED' 60 || { tail -20 /tmp/api.log; fail "the guest did not see the new image"; }

step "the guest powers off: vireo exits 0, the socket is gone"
nc -l -p 5300 < /dev/null > /dev/null 2>&1 &
wait $vpid
rc=$?
cat /tmp/api.log | tail -5
[ $rc -eq 0 ] || fail "vireo exited with $rc"
[ ! -e "$sock" ] || fail "the socket is still there"
grep -q 'api guest: done' /tmp/api.log || fail "the guest's scenario did not finish"
grep -q '^VIREO-ROOTFS-READY' /tmp/api.log || fail "the guest did not switch to the root drive"
[ -s /tmp/api-vireo.log ] || fail "PUT /logger's file is empty"

# ---- 2) pause / resume ----
cat > /tmp/tick.sh <<'SCEN'
i=0
start=$(cut -d' ' -f1 /proc/uptime)
while [ $i -lt 150 ]; do
  i=$((i + 1))
  echo "TICK $i $(cut -d' ' -f1 /proc/uptime)"
  usleep 100000
done
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/tick.sh /tmp/tick.cpio.gz || fail "add-scenario"
step "pause and resume while the guest counts"
rm -f "$sock"
vireo --api-sock "$sock" > /tmp/tick.log 2>&1 &
vpid=$!
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/tick.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=1 quiet\"}"
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
wait_for /tmp/tick.log '^TICK 20 ' 120 || fail "the guest never counted to 20"
expect_api 204 PATCH /vm '{"state": "Paused"}'
expect_api 200 GET /
grep -q '"state":"Paused"' /tmp/api.out || fail "GET / while paused says $(cat /tmp/api.out)"
# A kernel message can land in the middle of a TICK line on the shared console: take the
# "TICK n uptime" records wherever they are.
ticks() { tr -d '\r' < /tmp/tick.log | grep -oE 'TICK [0-9]+ [0-9]+\.[0-9]+'; }
sleep 0.5
before=$(ticks | wc -l)
sleep 3
during=$(ticks | wc -l)
echo "ticks at pause+0.5s: $before, 3 s later: $during"
[ "$during" -eq "$before" ] || fail "the guest printed $((during - before)) lines while paused"
expect_api 204 PATCH /vm '{"state": "Resumed"}'
wait_for /tmp/tick.log "TICK $((before + 10)) " 30 || fail "the count did not go on after resume"
last_before=$(ticks | sed -n "${before}p")
first_after=$(ticks | sed -n "$((before + 1))p")
tr -d '\r' < /tmp/tick.log | grep -v '^TICK ' | grep -vE '^(VIREO-|$)' | head -5
echo "around the pause: '$last_before' then '$first_after'"
n1=$(echo "$last_before" | cut -d' ' -f2)
n2=$(echo "$first_after" | cut -d' ' -f2)
[ "$n2" -eq $((n1 + 1)) ] || fail "the counter went from $n1 to $n2 across the pause (a restart?)"
# kvmclock was put back: the guest's uptime moved about one tick, not the 3.5 s of the pause.
t1=$(echo "$last_before" | cut -d' ' -f3 | tr -d .)
t2=$(echo "$first_after" | cut -d' ' -f3 | tr -d .)
echo "guest uptime across the pause: +$((t2 - t1))0 ms"
[ $((t2 - t1)) -lt 150 ] || fail "the guest's clock jumped by $((t2 - t1))0 ms across the pause"
wait $vpid
rc=$?
[ $rc -eq 0 ] || fail "vireo exited with $rc after the counting guest powered off"

# ---- 3) --config-file, no API ----
step "--config-file --no-api boots without API calls"
# The data drive is the 16 MiB image from the PATCH step, which the guest script expects.
cat > /tmp/vm.json <<JSON
{
  "boot-source": {"kernel_image_path": "$kernel", "initrd_path": "/tmp/api.cpio.gz",
                  "boot_args": "console=ttyS0 panic=1 quiet"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "drives": [{"drive_id": "data", "path_on_host": "$SCRATCH/data2.raw", "is_root_device": false,
              "is_read_only": true},
             {"drive_id": "rootfs", "path_on_host": "$SCRATCH/rootfs.ext4", "is_root_device": true,
              "is_read_only": false}],
  "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "vtap0",
                          "guest_mac": "52:54:00:76:69:42"}]
}
JSON
nc -l -p 5300 < /dev/null > /dev/null 2>&1 &
run_timed 180 /tmp/cfg.log vireo --no-api --config-file /tmp/vm.json
rc=$?
[ $rc -eq 0 ] || fail "vireo --config-file exited with $rc"
expect_line /tmp/cfg.log '^API-GUEST-UP'
expect_line /tmp/cfg.log 'api guest: done'
step "a broken config file is refused with a message"
echo '{"boot-source": {"kernel_image_path": 3}}' > /tmp/bad.json
vireo --no-api --config-file /tmp/bad.json > /tmp/bad.log 2>&1
rc=$?
cat /tmp/bad.log
[ $rc -eq 2 ] || fail "a broken config file gave exit $rc, expected 2"
grep -q kernel_image_path /tmp/bad.log || fail "the message does not name the field"

# ---- 4) SendCtrlAltDel and the boot timer ----
step "SendCtrlAltDel powers the guest off; --boot-timer logs the boot time"
echo 'echo CAD-WAITING; sleep 120' > /tmp/cad.sh
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/cad.sh /tmp/cad.cpio.gz || fail "add-scenario"
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/rootfs2.ext4"
rm -f "$sock"
vireo --api-sock "$sock" --boot-timer > /tmp/cad.log 2>&1 &
vpid=$!
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/cad.cpio.gz\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd\"}"
expect_api 204 PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$SCRATCH/rootfs2.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
expect_api 400 PUT /actions '{"action_type": "SendCtrlAltDel"}'
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
wait_for /tmp/cad.log '^CAD-WAITING' 120 || { cat /tmp/cad.log; fail "the guest did not come up"; }
expect_api 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
n=300
while [ $n -gt 0 ] && kill -0 $vpid 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
kill -0 $vpid 2>/dev/null && { kill -9 $vpid; fail "vireo still runs 30 s after SendCtrlAltDel"; }
wait $vpid
rc=$?
tr -d '\r' < /tmp/cad.log | grep -E 'CTRL-ALT-DEL|Guest-boot-time|nopnp' | head -5
[ $rc -eq 0 ] || fail "vireo exited with $rc after SendCtrlAltDel"
expect_line /tmp/cad.log '^VIREO-CTRL-ALT-DEL'
expect_line /tmp/cad.log 'Guest-boot-time = +[0-9]+ us'
echo "api: OK"
