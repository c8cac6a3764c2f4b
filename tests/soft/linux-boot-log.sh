#!/usr/bin/env bash
# tests/soft/linux-boot-log.sh VIREO GUEST_DIR: issue 16's milestone on this machine, without KVM.
# Debian's cloud kernel (bzImage) on `vireo run --accel soft`: it decompresses itself, enters long
# mode with paging, finds KVM's paravirtual leaves and takes the TSC frequency from kvmclock (no
# calibration against the PIT, which failed on a loaded machine), prints its boot log through the
# 8250, starts /init from the initramfs, and busybox's shell
# prints its banner (about 15-25 s of one core here). Then the test types into the shell on the
# console (vireo's stdin): integer arithmetic, awk's floating point (x87/SSE), the guest's wall
# clock (kvmclock's, within a minute of the host's), and `poweroff -f`,
# after which vireo must exit 0.
set -uo pipefail
vireo=$1
guest=$2
[ -f "$guest/cloud/vmlinuz" ] || { echo "FAIL: no $guest/cloud/vmlinuz (make guest)"; exit 1; }
log=$(mktemp /tmp/vireo-soft-boot.XXXXXX)
out=$(mktemp /tmp/vireo-soft-run.XXXXXX)
fifo=$(mktemp -u /tmp/vireo-soft-in.XXXXXX)
mkfifo "$fifo"
trap 'kill "$pid" 2>/dev/null; rm -f "$log" "$out" "$fifo"' EXIT
# wait_for PATTERN TENTHS: until the console shows PATTERN (grep -E), vireo ($pid) ends, or the
# time runs out. Generous: the boot takes about 20 s of one core on a quiet machine; the test's
# point is how far, not how fast.
wait_for() {
  for _ in $(seq 1 "$2"); do
    tr -d '\r' < "$log" | grep -qE "$1" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# boot_once: one boot, typed into and checked; its status is 0 when every check passed.
boot_once() {
  : > "$log"
  : > "$out"
  # Held open read-write, so vireo never sees the end of its input.
  exec 3<> "$fifo"
  "$vireo" run --accel soft --kernel "$guest/cloud/vmlinuz" --initrd "$guest/cloud/initramfs.cpio.gz" \
    --memory 256M --cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=acpi panic=-1" \
    < "$fifo" > "$log" 2> "$out" &
  pid=$!
  failed=0
  # (The initramfs's /init prints VIREO-GUEST-READY, then runs busybox sh on the console.)
  # Limits sum to 270 s, inside CTest's: a stalled boot still reports how far it got.
  if wait_for 'BusyBox v1' 1500; then
    sleep 1
    printf 'echo sum=$((6*7))\n' >&3
    wait_for '^sum=42$' 300 || { echo "FAIL: the shell did not answer 'echo sum=\$((6*7))'"; failed=1; }
    printf 'awk "BEGIN { printf \\"fp=%%.4f\\\\n\\", 1.5 * 3 / 7 }"\n' >&3
    wait_for '^fp=0\.6429$' 300 || { echo "FAIL: awk's floating point did not answer fp=0.6429"; failed=1; }
    printf 'echo guest-now=$(date +%%s)\n' >&3
    if wait_for '^guest-now=[0-9]+$' 300; then
      guest_now=$(tr -d '\r' < "$log" | sed -n 's/^guest-now=\([0-9]*\)$/\1/p' | head -1)
      skew=$(( guest_now - $(date +%s) ))
      if [ "${skew#-}" -le 60 ]; then
        echo "ok: the guest's wall clock is ${skew} s from the host's"
      else
        echo "FAIL: the guest's wall clock is ${skew} s from the host's (kvmclock's wall clock)"
        failed=1
      fi
    else
      echo "FAIL: the shell did not answer 'echo guest-now=\$(date +%s)'"
      failed=1
    fi
    printf 'poweroff -f\n' >&3
  fi
  status=0
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null  # gone before another boot starts
    status=timeout
  else
    wait "$pid" || status=$?
  fi
  for line in 'Linux version 6\.' 'Command line: console=ttyS0 earlyprintk' 'BIOS-e820: ' \
      'printk: console \[ttyS0\] enabled' 'ACPI: Core revision' \
      'Hypervisor detected: KVM' 'kvm-clock: Using msrs 4b564d01 and 4b564d00' \
      'tsc: Detected [0-9]+\.[0-9]+ MHz processor' 'Calibrating delay loop \(skipped\) preset value' \
      'Freeing unused kernel image' 'Run /init as init process' \
      'VIREO-GUEST-READY' 'BusyBox v1.* built-in shell' '^sum=42' '^fp=0\.6429'; do
    if tr -d '\r' < "$log" | grep -qE "$line"; then
      echo "ok: $(tr -d '\r' < "$log" | grep -m1 -E "$line" | cut -c1-110)"
    else
      echo "FAIL: the console has no line matching '$line'"
      failed=1
    fi
  done
  if [ "$status" = 0 ]; then
    echo "ok: poweroff -f in the guest ended vireo with status 0"
  else
    echo "FAIL: after poweroff -f vireo's status is $status"
    failed=1
  fi
  echo "console: $(wc -l < "$log") lines; the last:"
  tail -3 "$log" | tr -d '\r'
  [ $failed -eq 0 ] || { echo "vireo said:"; tail -20 "$out"; }
  return $failed
}

# The boot used to stall for good when both of Linux's PIT calibrations of the TSC failed on a
# preempted vCPU thread (no tick on this hardware-reduced platform until the LAPIC timer runs);
# kvmclock now gives Linux the frequency, and a stall is a failure like any other.
boot_once
exit $?
