# bench/resources, the balloon (runs inside the nested test host): how fast vireo's virtio-balloon
# gives a 1 GiB guest's memory back to the host, against QEMU's virtio-balloon-pci (QMP `balloon`,
# HMP's `balloon` command), alternating in one run: same kernel, same initramfs, 1 vCPU, 1 GiB.
# The guest touches 860 MiB and frees it (so its RAM is resident), then idles; the host asks for a
# balloon of 768 MiB (QEMU: a guest size of 256 MiB) and samples the VMM's RSS every 0.1 s until it
# has dropped by 700 MiB. Prints per VMM the median seconds to reclaim those 700 MiB and the MiB
# per second; the ratio is vireo's rate over QEMU's (target >= 1.0).
# Usage: balloon-bench.sh [RUNS]   (default 3)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
runs=${1:-3}
kernel=$GUEST/cloud/vmlinuz
cmdline="console=ttyS0 panic=-1 quiet"
sock=/tmp/bb-api.sock
qsock=/tmp/bb-qmp.sock
: > /tmp/bb-results

cat > /tmp/bb-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
vireo-iotool alloc 860M 1 > /dev/null || gfail "alloc 860M failed"
echo "PHASE-TOUCHED"
sleep 100000
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/bb-guest.sh /tmp/bb.cpio.gz || fail "add-scenario"

rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null; }

# measure VMM RUN PID LOG: waits for the guest, asks for the balloon (ask_balloon), then times the
# RSS drop; appends "VMM ms=N rate=R" to the results.
measure() {
  _vmm=$1 _run=$2 _pid=$3 _log=$4
  wait_while_alive "$_pid" "$_log" '^PHASE-TOUCHED' 240 || { echo "run $_run $_vmm: the guest did not start"; tail -5 "$_log"; return 1; }
  sleep 1
  _rss=$(rss_mib "$_pid")
  now_ms
  _t0=$NOW_MS
  ask_balloon "$_vmm" || { echo "run $_run $_vmm: the balloon request failed"; return 1; }
  _n=1200
  while [ "$(rss_mib "$_pid")" -gt $((_rss - 700)) ]; do
    _n=$((_n - 1))
    [ $_n -gt 0 ] || { echo "run $_run $_vmm: RSS $(rss_mib "$_pid") MiB after 120 s (was $_rss)"; return 1; }
    sleep 0.1
  done
  now_ms
  _ms=$((NOW_MS - _t0))
  echo "$_vmm ms=$_ms rate=$((700 * 1000 / _ms))" >> /tmp/bb-results
  echo "run $_run $_vmm: RSS $_rss -> $(rss_mib "$_pid") MiB, 700 MiB back in $_ms ms ($((700 * 1000 / _ms)) MiB/s)"
}

ask_balloon() {
  if [ "$1" = vireo ]; then
    [ "$(api PATCH /balloon '{"amount_mib": 768}')" = 204 ]
  else
    qmp bb '{"execute": "balloon", "arguments": {"value": 268435456}}' > /dev/null
  fi
}

vireo_round() {
  rm -f "$sock"
  vireo --api-sock "$sock" --id bb > /tmp/bb-vireo.log 2>&1 < /dev/null &
  _pid=$!
  for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
  api PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/bb.cpio.gz\", \"boot_args\": \"$cmdline\"}" > /dev/null
  api PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 1024}' > /dev/null
  api PUT /balloon '{"amount_mib": 0, "deflate_on_oom": false}' > /dev/null
  rm -f /tmp/bb-metrics
  api PUT /metrics '{"metrics_path": "/tmp/bb-metrics"}' > /dev/null
  api PUT /actions '{"action_type": "InstanceStart"}' > /dev/null
  measure vireo "$1" $_pid /tmp/bb-vireo.log
  # How many madvise() calls gave the pages back (one per run of neighbouring pages).
  api PUT /actions '{"action_type": "FlushMetrics"}' > /dev/null
  echo "  vireo: $(grep -o '"inflate_count":[0-9]*' /tmp/bb-metrics | tail -1), $(grep -o '"released_runs":[0-9]*' /tmp/bb-metrics | tail -1)"
  kill -9 $_pid 2>/dev/null
  wait $_pid 2>/dev/null
}

qemu_round() {
  rm -f "$qsock"
  qemu-system-x86_64 -M q35 -accel kvm -cpu host -nodefaults -no-user-config -display none \
    -serial stdio -no-reboot -smp 1 -m 1024 -kernel "$kernel" -initrd /tmp/bb.cpio.gz \
    -append "$cmdline" -device virtio-balloon-pci -qmp unix:$qsock,server=on,wait=off \
    > /tmp/bb-qemu.log 2>&1 < /dev/null &
  _pid=$!
  qmp_open bb "$qsock" > /dev/null || { echo "run $1 qemu: no QMP"; kill -9 $_pid; return 1; }
  measure qemu "$1" $_pid /tmp/bb-qemu.log
  qmp_close bb
  kill -9 $_pid 2>/dev/null
  wait $_pid 2>/dev/null
}

for run in $(seq 1 "$runs"); do
  vireo_round "$run"
  qemu_round "$run"
done

v_ms=$(bench_median /tmp/bb-results "vireo " ms)
q_ms=$(bench_median /tmp/bb-results "qemu " ms)
v_rate=$(bench_median /tmp/bb-results "vireo " rate)
q_rate=$(bench_median /tmp/bb-results "qemu " rate)
echo
printf '%-40s %10s %10s %8s %s\n' "balloon, 1 GiB guest, 768 MiB" vireo qemu ratio target
printf '%-40s %10s %10s %8s %s\n' "ms to give back 700 MiB (median)" "$v_ms" "$q_ms" "$(bench_ratio "$q_ms" "$v_ms")" ">= 1.0 (qemu/vireo)"
printf '%-40s %10s %10s %8s %s\n' "MiB/s given back (median)" "$v_rate" "$q_rate" "$(bench_ratio "$v_rate" "$q_rate")" ">= 1.0"
