# The machine-config and drive fields Firecracker's API has and vireo once accepted and dropped
# (issue 12), each acted on and seen from inside a Linux guest:
#   smt: true      -> vCPUs 0 and 1 are the two threads of one core (CPUID leaf 0xB)
#   huge_pages 2M  -> guest RAM takes the host's 2 MiB hugetlb pages (HugePages_Free drops by
#                     mem/2M while it runs, counting reserved ones); with none reserved, InstanceStart answers 400 naming
#                     the shortfall and the VMM stays "Not started"
#   cache_type     -> Unsafe: a write-through disk (no flush offered); Writeback: write back
#   io_engine      -> Sync: the thread pool, Async: io_uring (vireo's log names the engine)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

sock=/tmp/vireo-fields.sock
kernel=$GUEST/cloud/vmlinuz
# Huge pages nobody holds: free and not reserved (a mapping reserves its pages at mmap and takes
# them from the free count as the guest touches them).
huge_free() { awk '/^HugePages_Free:/ {f = $2} /^HugePages_Rsvd:/ {r = $2} END {print f - r}' /proc/meminfo; }
cleanup() { pkill -f "vireo --api-sock $sock" 2>/dev/null; }
trap cleanup EXIT
# start_vmm: a fresh vireo on $sock, configured with two 8 MiB disks and the given machine config.
start_vmm() {
  rm -f "$sock"
  vireo --api-sock "$sock" > /tmp/fields.log 2>&1 &
  vpid=$!
  for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || fail "no API socket"
  expect_api 204 PUT /logger '{"log_path": "/tmp/fields-vireo.log", "level": "Info"}'
  expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/fields.cpio.gz\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 quiet\"}"
  expect_api 204 PUT /machine-config "$1"
  expect_api 204 PUT /drives/unsafe "{\"drive_id\": \"unsafe\", \"path_on_host\": \"$SCRATCH/a.raw\", \"is_root_device\": false, \"is_read_only\": false, \"cache_type\": \"Unsafe\", \"io_engine\": \"Sync\"}"
  expect_api 204 PUT /drives/writeback "{\"drive_id\": \"writeback\", \"path_on_host\": \"$SCRATCH/b.raw\", \"is_root_device\": false, \"is_read_only\": false, \"cache_type\": \"Writeback\", \"io_engine\": \"Async\"}"
}

step "two scratch disks; the guest reports topology and write caches"
scratch_fs 64
truncate -s 8M "$SCRATCH/a.raw" "$SCRATCH/b.raw"
cat > /tmp/fields-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
wait_path /dev/vdb 10
echo "SIBLINGS $(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list)"
echo "CPUID-B0 $(vireo-iotool cpuid 0xb 0)"
echo "CPUID-B1 $(vireo-iotool cpuid 0xb 1)"
echo "CACHE vda $(cat /sys/block/vda/queue/write_cache)"
echo "CACHE vdb $(cat /sys/block/vdb/queue/write_cache)"
echo "FIELDS-GUEST-DONE"
for _ in $(seq 1 600); do [ -e /tmp/never ] && break; sleep 0.1; done
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/fields-guest.sh /tmp/fields.cpio.gz || fail "add-scenario"

step "huge_pages 2M with no huge pages reserved: InstanceStart refused by name, nothing started"
echo 0 > /proc/sys/vm/nr_hugepages
start_vmm '{"vcpu_count": 2, "mem_size_mib": 128, "smt": true, "huge_pages": "2M"}'
expect_api 400 PUT /actions '{"action_type": "InstanceStart"}'
grep -q 'huge pages ."2M' /tmp/api.out || fail "the refusal does not name huge pages: $(cat /tmp/api.out)"
grep -q 'need 64 huge pages of 2 MiB' /tmp/api.out || fail "the refusal does not say how many: $(cat /tmp/api.out)"
expect_api 200 GET /
grep -q '"state":"Not started"' /tmp/api.out || fail "after the refusal GET / says $(cat /tmp/api.out)"
kill $vpid; wait $vpid

step "96 huge pages reserved: the guest boots on them with smt and both cache types"
echo 96 > /proc/sys/vm/nr_hugepages
[ "$(huge_free)" -ge 96 ] || fail "the host reserved only $(huge_free) huge pages"
start_vmm '{"vcpu_count": 2, "mem_size_mib": 128, "smt": true, "huge_pages": "2M"}'
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
wait_for /tmp/fields.log '^FIELDS-GUEST-DONE' 120 || { tail -20 /tmp/fields.log; fail "the guest did not report"; }
echo "the guest says:"
tr -d '\r' < /tmp/fields.log | grep -E '^(SIBLINGS|CPUID|CACHE)' | sed 's/^/  /'
free_running=$(huge_free)
echo "huge pages nobody holds while the guest runs: $free_running of 96"
[ "$free_running" -le 32 ] || fail "only $((96 - free_running)) huge pages in use for 128 MiB of guest RAM"
# smt: CPUID leaf 0xB says two threads per core (subleaf 0: 1 APIC ID bit, 2 threads, level type
# SMT) in a package of two (subleaf 1). Linux counts the siblings from it on Intel, and on AMD from
# leaf 0x8000001E, which vireo shapes alike where KVM offers TOPOEXT; the nested host's emulated
# EPYC has no TOPOEXT, so there its siblings list is informational.
tr -d '\r' < /tmp/fields.log | grep -q '^CPUID-B0 0x1 0x2 0x100 ' ||
  fail "smt: CPUID 0xB.0 is not two threads per core: $(grep CPUID /tmp/fields.log)"
tr -d '\r' < /tmp/fields.log | grep -q '^CPUID-B1 0x1 0x2 0x201 ' ||
  fail "smt: CPUID 0xB.1 is not a package of two: $(tr -d "\r" < /tmp/fields.log | grep -E "CPUID|SIBLINGS|FIELDS")"
echo "Linux's thread siblings of vCPU 0: $(tr -d '\r' < /tmp/fields.log | sed -n 's/^SIBLINGS //p')"
tr -d '\r' < /tmp/fields.log | grep -q '^CACHE vda write through$' ||
  fail "cache_type Unsafe: vda is not write through: $(grep CACHE /tmp/fields.log)"
tr -d '\r' < /tmp/fields.log | grep -q '^CACHE vdb write back$' ||
  fail "cache_type Writeback: vdb is not write back: $(grep CACHE /tmp/fields.log)"
grep -q "a.raw: using the thread pool" /tmp/fields-vireo.log ||
  fail "io_engine Sync: the log does not say the thread pool serves a.raw: $(grep -i 'disk\|pool' /tmp/fields-vireo.log)"
! grep -q "b.raw: using the thread pool" /tmp/fields-vireo.log ||
  fail "io_engine Async: b.raw is on the thread pool"
expect_api 200 GET /vm/config
grep -q '"cache_type":"Unsafe"' /tmp/api.out && grep -q '"io_engine":"Async"' /tmp/api.out &&
  grep -q '"huge_pages":"2M"' /tmp/api.out && grep -q '"smt":true' /tmp/api.out ||
  fail "GET /vm/config does not show the fields: $(cat /tmp/api.out)"
kill $vpid; wait $vpid
[ "$(huge_free)" -ge 96 ] || fail "the huge pages were not given back: $(huge_free) free"
echo 0 > /proc/sys/vm/nr_hugepages
echo "config-fields: OK"
