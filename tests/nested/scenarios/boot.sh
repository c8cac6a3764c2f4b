# vireo boots the Debian cloud kernel to userspace and powers off with exit 0, with 1, 2 and 4
# vCPUs; each guest reports the CPUs it sees.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

cat > /tmp/report.sh <<'SCEN'
echo "REPORT cpus=$(grep -c ^processor /proc/cpuinfo) memtotal_kib=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) year=$(date -u +%Y)"
SCEN

for cpus in 1 2 4; do
  step "boot with --cpus $cpus"
  vireo_boot cpus$cpus 180 /tmp/report.sh --cpus $cpus --memory 256M
  rc=$?
  [ $rc -eq 0 ] || fail "vireo exited with $rc (expected 0 after the guest powered off)"
  expect_line /tmp/cpus$cpus.log '^VIREO-GUEST-READY$'
  expect_line /tmp/cpus$cpus.log "^REPORT cpus=$cpus "
  expect_line /tmp/cpus$cpus.log '^VIREO-SCENARIO-EXIT 0$'
done
step "--console file:PATH sends the guest console to a file"
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/report.sh /tmp/file.cpio.gz
run_timed 180 /tmp/file-stdout.log vireo run --kernel "$GUEST/cloud/vmlinuz" --initrd /tmp/file.cpio.gz \
  --cmdline "console=ttyS0 panic=-1 quiet" --memory 256M --console file:/tmp/console-file.log
rc=$?
[ $rc -eq 0 ] || fail "vireo exited with $rc"
expect_line /tmp/console-file.log '^VIREO-GUEST-READY$'
expect_line /tmp/console-file.log '^VIREO-SCENARIO-EXIT 0$'
! grep -q VIREO-GUEST-READY /tmp/file-stdout.log || fail "console output also went to stdout"
# The guest's wall clock (kvmclock's wall-clock MSR) matches the host's year.
expect_line /tmp/console-file.log "^REPORT cpus=1 .* year=$(date -u +%Y)$"

step "boot the uncompressed vmlinux through its PVH entry, 2 vCPUs"
[ -f "$GUEST/cloud/vmlinux" ] || fail "no $GUEST/cloud/vmlinux (tests/guest/build extracts it)"
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/report.sh /tmp/pvh.cpio.gz
run_timed 180 /tmp/pvh.log vireo run --kernel "$GUEST/cloud/vmlinux" --initrd /tmp/pvh.cpio.gz \
  --cmdline "console=ttyS0 panic=-1 quiet" --cpus 2 --memory 256M
rc=$?
[ $rc -eq 0 ] || fail "vireo exited with $rc booting the PVH vmlinux"
expect_line /tmp/pvh.log '^VIREO-GUEST-READY$'
expect_line /tmp/pvh.log '^REPORT cpus=2 '
expect_line /tmp/pvh.log '^VIREO-SCENARIO-EXIT 0$'
step "a guest that never ends: run_timed stops its vireo at the limit, and vireo says where it was"
# run_timed's watchdog signals every process under the command, not only the shell function that
# started vireo (that alone left vireo running, unsignalled, after a timeout).
printf 'echo "FOREVER started"\nsleep 100000\n' > /tmp/forever.sh
vireo_boot forever 40 /tmp/forever.sh --memory 256M
rc=$?
[ $rc -eq 124 ] || fail "run_timed returned $rc for a guest that never ends (expected 124)"
expect_line /tmp/forever.log '^FOREVER started$'
expect_line /tmp/forever.log '^vCPU 0: [0-9]* exits'
[ ! -s /tmp/forever.log.killed ] ||
  fail "vireo did not end on SIGTERM: $(cat /tmp/forever.log.threads)"
left=$(ps -o pid,comm | awk '$2 == "vireo" { print $1 }' | tr '\n' ' ')
[ -z "$left" ] || fail "vireo processes left after the timeout: $left"
echo "boot: OK"
