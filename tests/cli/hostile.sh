#!/usr/bin/env bash
# cli.hostile: hostile-guest holes of issue 11 with probe "kernels" on this machine's /dev/kvm
# (tests/lib/make-probe-kernel) that drive the disk's virtio-pci function through its BAR:
#   a) a guest that resets and restarts the disk in a loop while the API replaces the disk's image
#      again and again (PATCH /drives raced the guest's reset: two threads joined the device
#      thread, the process terminated);
#   b) a guest that, in the same loop, clears DRIVER_OK without a reset, rewrites queue_size (0,
#      1024) and the ring addresses, sets DRIVER_OK again and kicks: the device is halted until the
#      guest resets it, vireo lives on, the console and the API keep working, and the warnings the
#      guest triggers are rate limited (before: one or more log lines per round, without end).
# Usage: hostile.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: hostile.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-hostile.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"

probe_kernel --virtio-reset-loop "$tmp/reset-loop.elf"
probe_kernel --virtio-hostile "$tmp/hostile.elf"
truncate -s 1M "$tmp/a.img" "$tmp/b.img"

dots() { tr -cd . < "$1" | wc -c; }
# wait_dots FILE N: until the guest finished N rounds (at most 60 s).
wait_dots() {
  for _ in $(seq 1 600); do [ "$(dots "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}
# start NAME KERNEL: a VMM with the disk a.img in slot 1, booted; console to NAME.out, log to
# NAME.log.
start() {
  sock=$tmp/$1.sock
  "$vireo" --api-sock "$sock" --log-path "$tmp/$1.log" --metrics-path "$tmp/$1.metrics" \
    --level Warning > "$tmp/$1.out" 2> "$tmp/$1.err" &
  pid=$!
  wait_socket "$sock" &&
    [ "$(api "$sock" PUT /boot-source "{\"kernel_image_path\": \"$2\"}")" = 204 ] &&
    [ "$(api "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}')" = 204 ] &&
    [ "$(api "$sock" PUT /drives/disk "{\"drive_id\": \"disk\", \"path_on_host\": \"$tmp/a.img\", \"is_root_device\": false, \"is_read_only\": false}")" = 204 ] &&
    [ "$(api "$sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204 ]
}
# stuck NAME: what a guest that stopped making rounds was doing, twice a second apart: rounds,
# log lines, vireo's exit counters (FlushMetrics), and each vireo thread's name, user/system/guest
# ticks, state and kernel wait channel.
stuck() {
  for n in 1 2; do
    echo "  -- $n: $(dots "$tmp/$1.out") rounds, $(wc -l < "$tmp/$1.log") log lines"
    curl -s --max-time 5 --unix-socket "$sock" -X PUT -d '{"action_type": "FlushMetrics"}' \
      http://localhost/actions > /dev/null
    echo "  metrics: $(tail -1 "$tmp/$1.metrics" | grep -o '"vcpu":{[^}]*}')"
    for t in /proc/"$pid"/task/*; do
      echo "  thread $(cat "$t/comm") $(cut -d' ' -f3,14,15,43 "$t/stat") $(cat "$t/wchan" 2>/dev/null)"
    done
    sleep 1
  done
  echo "  log: $(head -c 2000 "$tmp/$1.log")"
}
# stop: SIGTERM, and the exit status.
stop() { kill -TERM "$pid"; wait "$pid"; }

# a) the API replaces the image while the guest resets the device.
check "reset-loop guest starts" start a "$tmp/reset-loop.elf"
check "reset-loop guest runs rounds" wait_dots "$tmp/a.out" 20
patched=0
for i in $(seq 1 100); do
  img=$tmp/a.img
  [ $((i % 2)) -eq 1 ] && img=$tmp/b.img
  [ "$(api "$sock" PATCH /drives/disk "{\"drive_id\": \"disk\", \"path_on_host\": \"$img\"}")" = 204 ] &&
    patched=$((patched + 1))
  kill -0 "$pid" 2>/dev/null || break
done
check "100 PATCH /drives during guest resets all answered 204 ($patched)" test "$patched" -eq 100
before=$(dots "$tmp/a.out")
check "vireo is alive and the guest goes on" wait_dots "$tmp/a.out" $((before + 20)) ||
  echo "  rounds: $before before, $(dots "$tmp/a.out") 60 s later; log: $(tail -2 "$tmp/a.log")"
stop
check "SIGTERM: exit 0" test $? -eq 0
check "no abort or exception in vireo's output" \
  bash -c "! grep -qiE 'terminate|abort|exception|sanitizer' '$tmp/a.err' '$tmp/a.log'"

# b) the guest breaks the status and queue rules every round.
started=$(date +%s)
check "hostile guest starts" start b "$tmp/hostile.elf"
check "the hostile guest gets through 200 rounds" wait_dots "$tmp/b.out" 200 || stuck b
while [ $(($(date +%s) - started)) -lt 7 ]; do sleep 0.5; done  # past one log refill interval
rounds=$(dots "$tmp/b.out")
check "vireo answers the API: Running" test "$(api "$sock" GET /)" = 200
check "GET / says Running" grep -q '"state":"Running"' "$tmp/out"
check "PATCH /drives while the guest misbehaves: 204" \
  test "$(api "$sock" PATCH /drives/disk "{\"drive_id\": \"disk\", \"path_on_host\": \"$tmp/b.img\"}")" = 204
check "pause: 204" test "$(api "$sock" PATCH /vm '{"state": "Paused"}')" = 204
paused_at=$(dots "$tmp/b.out")
sleep 0.5
check "paused: no more rounds" test "$(dots "$tmp/b.out")" -eq "$paused_at"
check "resume: 204" test "$(api "$sock" PATCH /vm '{"state": "Resumed"}')" = 204
check "resumed: the guest goes on" wait_dots "$tmp/b.out" $((paused_at + 50)) || stuck b
check "the refusal is logged" grep -q "cleared status bits" "$tmp/b.log"
warnings=$(grep -c "virtio" "$tmp/b.log")
echo "  $rounds hostile rounds, $warnings virtio log lines"
check "the guest's warnings are rate limited ($warnings lines for $rounds rounds)" \
  test "$warnings" -le 20
check "the log says how many lines it suppressed" grep -q "similar lines suppressed" "$tmp/b.log"
stop
check "SIGTERM: exit 0" test $? -eq 0
check "no abort or exception in vireo's output" \
  bash -c "! grep -qiE 'terminate|abort|exception|sanitizer' '$tmp/b.err' '$tmp/b.log'"

summary
