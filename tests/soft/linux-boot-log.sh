#!/usr/bin/env bash
# tests/soft/linux-boot-log.sh VIREO GUEST_DIR: issue 16's milestone on this machine, without KVM.
# Debian's cloud kernel (bzImage) on `vireo run --accel soft`: it decompresses itself, enters long
# mode with paging, calibrates the TSC with the soft PIT, prints its boot log through the 8250,
# starts /init from the initramfs, and busybox's shell prints its banner (about 15-25 s of one
# core here). The test holds that ground; it does not type into the shell.
set -uo pipefail
vireo=$1
guest=$2
[ -f "$guest/cloud/vmlinuz" ] || { echo "FAIL: no $guest/cloud/vmlinuz (make guest)"; exit 1; }
log=$(mktemp /tmp/vireo-soft-boot.XXXXXX)
out=$(mktemp /tmp/vireo-soft-run.XXXXXX)
trap 'kill "$pid" 2>/dev/null; rm -f "$log" "$out"' EXIT
"$vireo" run --accel soft --kernel "$guest/cloud/vmlinuz" --initrd "$guest/cloud/initramfs.cpio.gz" \
  --memory 256M --cmdline "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=acpi panic=-1" \
  --console "file:$log" > "$out" 2>&1 < /dev/null &
pid=$!
# Generous: about 20 s of one core on a quiet machine; the test's point is how far, not how fast.
# (The initramfs's /init prints VIREO-GUEST-READY, then runs busybox sh on the console.)
for _ in $(seq 1 2400); do
  grep -q 'BusyBox v1' "$log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
failed=0
for line in 'Linux version 6\.' 'Command line: console=ttyS0 earlyprintk' 'BIOS-e820: ' \
    'printk: console \[ttyS0\] enabled' 'ACPI: Core revision' \
    'tsc: Fast TSC calibration using PIT' 'Freeing unused kernel image' 'Run /init as init process' \
    'VIREO-GUEST-READY' 'BusyBox v1.* built-in shell'; do
  if grep -q "$line" "$log"; then
    echo "ok: $(grep -m1 "$line" "$log" | cut -c1-110)"
  else
    echo "FAIL: the boot log has no line matching '$line'"
    failed=1
  fi
done
echo "boot log: $(wc -l < "$log") lines; the last:"
tail -3 "$log"
[ $failed -eq 0 ] || { echo "vireo said:"; cat "$out"; }
exit $failed
