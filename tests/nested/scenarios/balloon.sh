# The memory balloon (issue 15 §2) with a 1 GiB guest, driven through Firecracker's API; the host
# reads vireo's RSS (VmRSS), the guest reads /proc/meminfo. The guest synchronizes on what it sees
# of the balloon, so no network is needed.
#   Boot 1: balloon {amount 0, stats every 1 s}, no deflate_on_oom, no free page reporting.
#     c) the guest touches 860 MiB and frees it (RSS ~1 GiB); PATCH /balloon 768: the RSS drops by
#        >= 700 MiB (within 90 s: see below), the guest's MemTotal by >= 700 MiB; GET
#        /balloon/statistics shows actual 768 MiB and the guest's figures. Without deflate_on_oom
#        a guest that asks for all the memory the balloon leaves is OOM-killed. PATCH 0: MemTotal
#        comes back and the guest allocates 800 MiB again.
#   Boot 2: balloon {amount 0, stats every 1 s, deflate_on_oom, free_page_reporting}, a data drive
#     limited to 1 MiB/s.
#     d) the guest allocates and frees 512 MiB: the RSS rises, then comes back without any PATCH.
#     e) PATCH 768, then the guest allocates 600 MiB: the balloon deflates instead of an OOM kill.
#     f) pause, snapshot (the given-back pages are holes in the memory file), kill -9, restore in a
#        new process: GET /balloon keeps the target, statistics still flow, PATCH 0 deflates, and
#        the drive's limiter still holds (4 MiB read in ~3 s).
# API errors: PUT /balloon above guest RAM, PATCH before boot, statistics on/off after boot.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

sock=/tmp/vireo-balloon.sock
kernel=$GUEST/cloud/vmlinuz
cleanup() { pkill -f "vireo --api-sock $sock" 2>/dev/null; }
trap cleanup EXIT

rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status"; }
# stat_of FIELD: FIELD of the last GET /balloon/statistics answer (/tmp/api.out).
stat_of() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" /tmp/api.out; }
# wait_rss PID BELOW_MIB SECONDS: until the RSS is at most BELOW_MIB; prints the seconds it took.
wait_rss() {
  now_ms
  _t0=$NOW_MS
  _n=$(($3 * 10))
  while [ $_n -gt 0 ]; do
    if [ "$(rss_mib "$1")" -le "$2" ]; then
      now_ms
      awk -v a="$_t0" -v b="$NOW_MS" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
      return 0
    fi
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}
# wait_actual MIB SECONDS: until the balloon's actual_mib (GET /balloon/statistics) is MIB.
wait_actual() {
  for _ in $(seq 1 $(($2 * 2))); do
    api GET /balloon/statistics > /dev/null
    [ "$(stat_of actual_mib)" = "$1" ] && return 0
    sleep 0.5
  done
  fail "the balloon's actual_mib is $(stat_of actual_mib) after $2 s, expected $1"
}
# start_vmm NAME: a `vireo --api-sock` process; sets vpid.
start_vmm() {
  rm -f "$sock"
  vireo --api-sock "$sock" --id "$1" > "/tmp/$1.log" 2>&1 < /dev/null &
  vpid=$!
  for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || fail "no API socket after 5 s"
}
# guest_wait NAME REGEX SECONDS
guest_wait() {
  wait_while_alive "$vpid" "/tmp/$1.log" "$2" "$3" || { tail -30 "/tmp/$1.log"; fail "the guest never printed $2"; }
  grep -q '^GUEST-FAIL' "/tmp/$1.log" && { tail -20 "/tmp/$1.log"; fail "the guest failed"; }
  return 0
}

cat > /tmp/balloon-lib.sh <<'SCEN'
. /lib/vireo-guest.sh
mem() { sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
# until_kib WHAT CMP KIB SECONDS: waits until `mem WHAT` CMP KIB (-le or -ge).
until_kib() {
  for _ in $(seq 1 $(($4 * 10))); do [ "$(mem "$1")" "$2" "$3" ] && return 0; sleep 0.1; done
  gfail "$1 stayed at $(mem "$1") kB (waited for $2 $3)"
}
SCEN

# ---------------------------------------------------------------- boot 1
cat /tmp/balloon-lib.sh - > /tmp/balloon1.sh <<'SCEN'
total0=$(mem MemTotal)
echo "MEMINFO total=$total0 free=$(mem MemFree)"
gstep "c) touch 860 MiB and free it"
vireo-iotool alloc 860M 1 > /dev/null || gfail "alloc 860M failed"
echo "PHASE-TOUCHED"
gstep "c) wait for the balloon to take 768 MiB (MemTotal drops)"
until_kib MemTotal -le $((total0 - 700 * 1024)) 120
echo "INFLATED total=$(mem MemTotal) free=$(mem MemFree)"
gstep "c) all the memory the balloon leaves, without deflate_on_oom: OOM-killed"
vireo-iotool alloc "$(($(mem MemTotal) - 8 * 1024))K" 2
echo "OOM-RESULT rc=$?"
gstep "c) wait for the deflate (MemTotal back)"
until_kib MemTotal -ge $((total0 - 16 * 1024)) 60
echo "DEFLATED total=$(mem MemTotal)"
vireo-iotool alloc 800M 0 > /dev/null || gfail "alloc 800M after the deflate failed"
echo "REALLOC-OK"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/balloon1.sh /tmp/balloon1.cpio.gz || fail "add-scenario"

step "API: balloon bodies and errors before boot"
start_vmm b1
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/balloon1.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=1 quiet\"}"
expect_api 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 1024}'
expect_api 400 GET /balloon
expect_api 400 PATCH /balloon '{"amount_mib": 10}'
expect_api 400 PUT /balloon '{"amount_mib": 1025, "deflate_on_oom": false}'
expect_api 400 PUT /balloon '{"amount_mib": 16777216, "deflate_on_oom": false}'
expect_api 400 PUT /balloon '{"amount_mib": 0}'
expect_api 204 PUT /balloon '{"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1}'
expect_api 400 PATCH /balloon '{"amount_mib": 10}'
expect_api 200 GET /balloon
grep -q '"amount_mib":0' /tmp/api.out || fail "GET /balloon: $(cat /tmp/api.out)"

step "c) boot; the guest touches 860 MiB and frees it"
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
guest_wait b1 '^PHASE-TOUCHED' 240
sleep 1
rss1=$(rss_mib $vpid)
echo "RSS after the guest touched 860 MiB: $rss1 MiB"
[ "$rss1" -ge 860 ] || fail "RSS $rss1 MiB: the guest's 860 MiB are not resident"

step "c) PATCH /balloon 768: the RSS drops by >= 700 MiB"
expect_api 400 PATCH /balloon '{"amount_mib": 1025}'
expect_api 400 PATCH /balloon/statistics '{"stats_polling_interval_s": 0}'
expect_api 204 PATCH /balloon '{"amount_mib": 768}'
# The issue asks for 10 s: bench/resources (tests/bench/balloon-bench.sh) measures it, 8-10 s in
# this nested host against QEMU's 12-18 s. A timed test on a shared machine only bounds it: 90 s.
secs=$(wait_rss $vpid $((rss1 - 700)) 90) || {
  api GET /balloon/statistics > /dev/null
  fail "RSS still $(rss_mib $vpid) MiB 90 s after the inflate (was $rss1; balloon actual_mib $(stat_of actual_mib))"
}
echo "RSS $rss1 -> $(rss_mib $vpid) MiB in $secs s"
guest_wait b1 '^INFLATED' 120
tr -d '\r' < /tmp/b1.log | grep -E '^(MEMINFO|INFLATED)'
wait_actual 768 60
cat /tmp/api.out; echo
[ "$(stat_of target_mib)" = 768 ] || fail "target_mib is not 768"
[ -n "$(stat_of free_memory)" ] && [ -n "$(stat_of total_memory)" ] || fail "no guest statistics"
expect_api 200 GET /balloon
grep -q '"amount_mib":768' /tmp/api.out || fail "GET /balloon: $(cat /tmp/api.out)"

step "c) without deflate_on_oom the guest's big allocation is OOM-killed"
guest_wait b1 '^OOM-RESULT' 120
tr -d '\r' < /tmp/b1.log | grep '^OOM-RESULT rc=137' || fail "the allocation was not OOM-killed"

step "c) PATCH /balloon 0: MemTotal comes back, the guest allocates 800 MiB"
expect_api 204 PATCH /balloon '{"amount_mib": 0}'
guest_wait b1 '^REALLOC-OK' 120
wait $vpid
rc=$?
[ $rc -eq 0 ] || { tail -20 /tmp/b1.log; fail "vireo exited with $rc"; }

# ---------------------------------------------------------------- boot 2
scratch_fs 64
truncate -s 8M "$SCRATCH/data.raw" || fail "truncate"
cat /tmp/balloon-lib.sh - > /tmp/balloon2.sh <<'SCEN'
wait_path /dev/vda 10
gstep "d) allocate and free 512 MiB"
sleep 2
vireo-iotool alloc 512M 3 || gfail "alloc 512M failed"
echo "PHASE-FREED"
free0=$(mem MemFree)
gstep "e) wait for the balloon to take 768 MiB (deflate_on_oom: MemFree drops)"
until_kib MemFree -le $((free0 - 700 * 1024)) 120
echo "INFLATED free=$(mem MemFree)"
gstep "e) 600 MiB more: the balloon deflates, no OOM kill"
vireo-iotool alloc 600M 1
echo "OOM-RESULT rc=$?"
free1=$(mem MemFree)
gstep "f) wait for the deflate after the restore"
until_kib MemFree -ge $((free1 + 200 * 1024)) 300
echo "DEFLATED free=$(mem MemFree)"
gstep "f) 4 MiB from the drive limited to 1 MiB/s"
out=$(vireo-iotool seqread /dev/vda -b 64k -q 1 -s 4M) || gfail "seqread failed"
echo "R1 $out"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/balloon2.sh /tmp/balloon2.cpio.gz || fail "add-scenario"

step "d) boot with deflate_on_oom and free page reporting"
start_vmm b2
expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/balloon2.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=1 quiet\"}"
expect_api 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 1024}'
expect_api 204 PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SCRATCH/data.raw\", \"is_root_device\": false, \"is_read_only\": true, \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 1000}}}"
expect_api 204 PUT /balloon '{"amount_mib": 0, "deflate_on_oom": true, "stats_polling_interval_s": 1, "free_page_reporting": true}'
expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
guest_wait b2 '^== guest step: d\)' 240
sleep 1
rss0=$(rss_mib $vpid)
guest_wait b2 '^ALLOCATED' 60
sleep 1
rss_high=$(rss_mib $vpid)
echo "RSS before $rss0 MiB, with 512 MiB allocated $rss_high MiB"
[ "$rss_high" -ge $((rss0 + 400)) ] || fail "the guest's 512 MiB did not show in the RSS"
guest_wait b2 '^PHASE-FREED' 60
secs=$(wait_rss $vpid $((rss_high - 400)) 30) ||
  fail "RSS still $(rss_mib $vpid) MiB 30 s after the guest freed 512 MiB (was $rss_high)"
echo "free page reporting: RSS $rss_high -> $(rss_mib $vpid) MiB in $secs s after the free"

step "e) PATCH 768; the guest's 600 MiB deflate the balloon instead of an OOM kill"
expect_api 204 PATCH /balloon '{"amount_mib": 768}'
guest_wait b2 '^INFLATED' 150
guest_wait b2 '^OOM-RESULT' 180
tr -d '\r' < /tmp/b2.log | grep '^OOM-RESULT rc=0' || { tail -20 /tmp/b2.log; fail "the allocation failed"; }
sleep 2
expect_api 200 GET /balloon/statistics
cat /tmp/api.out; echo
[ "$(stat_of actual_mib)" -lt 768 ] || fail "the balloon did not deflate (actual_mib $(stat_of actual_mib))"

step "f) pause, snapshot, kill -9, restore in a new process"
expect_api 204 PATCH /vm '{"state": "Paused"}'
expect_api 204 PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$SCRATCH/b.state\", \"mem_file_path\": \"/tmp/b.mem\"}"
used=$(du -m /tmp/b.mem | cut -f1)
echo "memory file: $(stat -c %s /tmp/b.mem) bytes, $used MiB used"
[ "$used" -lt 700 ] || fail "the memory file uses $used MiB: the given-back pages are not holes"
kill -9 $vpid
wait $vpid 2>/dev/null
start_vmm b3
expect_api 204 PUT /snapshot/load "{\"snapshot_path\": \"$SCRATCH/b.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"/tmp/b.mem\"}, \"resume_vm\": true}"
expect_api 200 GET /balloon
grep -q '"amount_mib":768' /tmp/api.out || fail "GET /balloon after the restore: $(cat /tmp/api.out)"
expect_api 200 GET /vm/config
grep -q '"rate_limiter":{"bandwidth":{"size":1048576' /tmp/api.out || fail "the drive's limiter is gone: $(cat /tmp/api.out)"
expect_api 200 GET /balloon/statistics
before=$(stat_of free_memory)
sleep 3
expect_api 200 GET /balloon/statistics
after=$(stat_of free_memory)
echo "free_memory after the restore: $before, 3 s later $after"
[ -n "$after" ] || fail "no statistics after the restore"
expect_api 204 PATCH /balloon '{"amount_mib": 0}'
# The console of the restored VM is the new process's: its log holds what the guest prints now.
wait_while_alive "$vpid" /tmp/b3.log '^R1 RESULT' 120 || { tail -20 /tmp/b3.log; fail "the restored guest did not deflate and read"; }
secs=$(tr -d '\r' < /tmp/b3.log | sed -n 's/^R1 RESULT .* seconds=\([0-9.]*\).*/\1/p')
awk -v v="$secs" 'BEGIN { exit !(v >= 3 * 0.85 && v <= 3 * 1.15) }' ||
  fail "4 MiB at 1 MiB/s took $secs s after the restore, expected 3 +- 15%"
echo "the restored drive's limiter: 4 MiB in $secs s (expected 3)"
expect_api 200 GET /balloon/statistics
[ "$(stat_of actual_pages)" = 0 ] || fail "actual_pages $(stat_of actual_pages) after PATCH 0"
wait $vpid
echo "balloon: OK"
