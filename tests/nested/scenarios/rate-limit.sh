# Rate limiters (issue 15), through the API as Firecracker's users set them: three data drives and
# a NIC on a tap, each measured from inside the guest with vireo-iotool.
#   vda: bandwidth 2 MiB/s    an 8 MiB O_DIRECT read takes (8 - 2) / 2 = 3 s (the bucket starts full)
#   vdb: 200 ops/s            4 s of 4 KiB random reads run at (200 + 4 * 200) / 4 = 250 IOPS
#   vdc: rate_limiter {}      unlimited: far faster than vda's limit
#   NIC tx: 1 MiB/s with a one-time burst of 2 MiB: 6 MiB to the host take (6 - 1 - 2) / 1 = 3 s
# each within 15%. Then PATCH /drives raises vda to 8 MiB/s and a 16 MiB read takes (16 - 8) / 8 =
# 1 s. Bad PATCHes (before boot, malformed, unknown drive) answer 400 and change nothing; GET
# /vm/config shows the patched limiter; the metrics count the throttled requests.
# Link-local addresses only (DESIGN.md §5).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

sock=/tmp/vireo-rl.sock
kernel=$GUEST/cloud/vmlinuz
cleanup() {
  pkill -f "vireo --api-sock $sock" 2>/dev/null
  pkill -f 'vireo-iotool tcp-sink' 2>/dev/null
  $IP link del vtap0 2>/dev/null
}
trap cleanup EXIT

# within RESULT_VALUE EXPECTED WHAT: RESULT_VALUE is EXPECTED +- 15%.
within() {
  awk -v v="$1" -v e="$2" 'BEGIN { exit !(v >= e * 0.85 && v <= e * 1.15) }' ||
    fail "$3: measured $1, expected $2 +- 15%"
  echo "$3: $1 (expected $2 +- 15%)"
}
# result LOG KEY FIELD: FIELD of the guest's line "KEY RESULT ... FIELD=value ...".
result() {
  tr -d '\r' < "$1" | sed -n "s/^$2 RESULT .* $3=\([0-9.]*\).*/\1/p" | tail -1
}

step "drive images, tap, the guest's measurements"
scratch_fs 160
for d in bw ops free; do
  truncate -s 32M "$SCRATCH/$d.raw" || fail "truncate"
done
tap_up vtap0 169.254.100.1/24
cat > /tmp/rl-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
wait_path /dev/vdc 10
# io KEY ARGS...: one vireo-iotool run, its RESULT line prefixed with KEY.
io() {
  key=$1; shift
  out=$(vireo-iotool "$@") || gfail "vireo-iotool $* failed"
  echo "$key $out"
}
gstep "vda limited to 2 MiB/s: 8 MiB"
io R1 seqread /dev/vda -b 64k -q 4 -s 8M
gstep "vdb limited to 200 ops/s: 4 s of 4 KiB random reads"
io R2 randread /dev/vdb -b 4k -q 8 -t 4
gstep "vdc with rate_limiter {}: 32 MiB"
io R3 seqread /dev/vdc -b 64k -q 4 -s 32M
gstep "NIC tx limited to 1 MiB/s (burst 2 MiB): 6 MiB to the host"
for _ in $(seq 1 100); do eth=$(iface_by_mac 52:54:00:76:69:52) && break; sleep 0.1; done
ip link set "$eth" up && ip addr add 169.254.100.2/24 dev "$eth" || gfail "ip"
# (No probe of port 5001 first: the host's sink takes exactly one connection.)
io T1 tcp-send 169.254.100.1 5001 6291456
echo "PHASE1-DONE"
gstep "wait for the host's PATCH (vda to 8 MiB/s)"
ok=0
# (busybox nc has no -z: a plain connect, which succeeds once the host listens.)
for _ in $(seq 1 600); do nc 169.254.100.1 5400 < /dev/null > /dev/null 2>&1 && { ok=1; break; }; sleep 0.2; done
[ $ok = 1 ] || gfail "the host never said it patched vda"
io R4 seqread /dev/vda -b 64k -q 4 -s 16M
echo "rate-limit guest: done"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/rl-guest.sh /tmp/rl.cpio.gz || fail "add-scenario"

step "configure through the API, with bad rate limiters refused"
rm -f "$sock"
vireo --api-sock "$sock" --id rl --metrics-path /tmp/rl-metrics.json > /tmp/rl.log 2>&1 &
vpid=$!
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "no API socket after 5 s"
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/rl.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=1 quiet\"}"
expect_api 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
drive() { # ID LIMITER
  echo "{\"drive_id\": \"$1\", \"path_on_host\": \"$SCRATCH/$1.raw\", \"is_root_device\": false, \"is_read_only\": true, \"rate_limiter\": $2}"
}
expect_api 400 PUT /drives/bw "$(drive bw '{"bandwidth": {"size": -1, "refill_time": 1000}}')"
expect_api 400 PUT /drives/bw "$(drive bw '{"bandwidth": {"size": 1024}}')"
expect_api 400 PUT /drives/bw "$(drive bw '{"bandwith": {"size": 1024, "refill_time": 1000}}')"
expect_api 204 PUT /drives/bw "$(drive bw '{"bandwidth": {"size": 2097152, "refill_time": 1000}}')"
expect_api 204 PUT /drives/ops "$(drive ops '{"ops": {"size": 200, "refill_time": 1000}}')"
expect_api 204 PUT /drives/free "$(drive free '{}')"
expect_api 204 PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "vtap0", "guest_mac": "52:54:00:76:69:52", "tx_rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 2097152, "refill_time": 1000}}}'
expect_api 400 PATCH /drives/bw '{"drive_id": "bw", "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}}'
expect_api 400 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "tx_rate_limiter": {}}'
expect_api 200 GET /vm/config
grep -q '"rate_limiter":{"bandwidth":{"size":2097152,"one_time_burst":0,"refill_time":1000},"ops":null}' /tmp/api.out ||
  fail "GET /vm/config does not show vda's limiter: $(cat /tmp/api.out)"

step "boot; the guest measures"
vireo-iotool tcp-sink 5001 > /tmp/rl-sink.txt 2>&1 &
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
wait_while_alive $vpid /tmp/rl.log '^PHASE1-DONE' 240
rc=$?
[ $rc -eq 0 ] || { tail -30 /tmp/rl.log; fail "the guest did not finish its first measurements"; }
grep -q '^GUEST-FAIL' /tmp/rl.log && { tail -20 /tmp/rl.log; fail "the guest failed"; }
within "$(result /tmp/rl.log R1 seconds)" 3.0 "vda 8 MiB at 2 MiB/s, seconds"
within "$(result /tmp/rl.log R2 iops)" 250 "vdb at 200 ops/s over 4 s, IOPS"
r3=$(result /tmp/rl.log R3 mbps)
awk -v v="$r3" 'BEGIN { exit !(v > 3 * 2.097152) }' ||
  fail "vdc (rate_limiter {}) read at $r3 MB/s: not above 3x vda's limit, so not unlimited"
echo "vdc unlimited: $r3 MB/s"
within "$(result /tmp/rl.log T1 seconds)" 3.0 "NIC 6 MiB at 1 MiB/s with a 2 MiB burst, seconds"

step "PATCH after boot: bad bodies 400, vda to 8 MiB/s"
expect_api 400 PATCH /drives/nosuch '{"drive_id": "nosuch", "rate_limiter": {}}'
expect_api 400 PATCH /drives/bw '{"drive_id": "bw", "rate_limiter": {"bandwidth": {"size": "fast", "refill_time": 1}}}'
expect_api 400 PATCH /drives/bw '{"drive_id": "bw"}'
expect_api 204 PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}'
expect_api 204 PATCH /drives/bw '{"drive_id": "bw", "rate_limiter": {"bandwidth": {"size": 8388608, "refill_time": 1000}}}'
expect_api 200 GET /vm/config
grep -q '"rate_limiter":{"bandwidth":{"size":8388608,"one_time_burst":0,"refill_time":1000},"ops":null}' /tmp/api.out ||
  fail "GET /vm/config does not show the patched limiter: $(cat /tmp/api.out)"
grep -q '"tx_rate_limiter":{"bandwidth":null,"ops":null}' /tmp/api.out ||
  fail "GET /vm/config does not show the NIC's lifted limit: $(cat /tmp/api.out)"
expect_api 204 PUT /actions '{"action_type": "FlushMetrics"}'
grep -o '"device":"virtio-blk vda"[^}]*' /tmp/rl-metrics.json | tail -1 | tee /tmp/rl-vda-metrics.txt
thr=$(sed -n 's/.*"rate_limiter_throttled_events":\([0-9]*\).*/\1/p' /tmp/rl-vda-metrics.txt)
[ "${thr:-0}" -gt 0 ] || fail "vda's metrics count no throttled requests"
vireo-iotool tcp-serve 5400 1 > /dev/null 2>&1 &
wait_while_alive $vpid /tmp/rl.log '^rate-limit guest: done' 120 ||
  { tail -20 /tmp/rl.log; fail "the guest did not finish after the PATCH"; }
within "$(result /tmp/rl.log R4 seconds)" 1.0 "vda 16 MiB after PATCH to 8 MiB/s, seconds"

step "the guest powers off: vireo exits 0"
wait $vpid
rc=$?
[ $rc -eq 0 ] || { tail -20 /tmp/rl.log; fail "vireo exited with $rc"; }
echo "rate-limit: OK"
