# How a VM ends: guest reboot with --on-reboot exit ends cleanly (0); a kernel that panics ends
# non-zero with a message naming the panic; --on-reboot restart boots the guest again, and
# SIGTERM stops vireo in order (0).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

echo 'reboot -f' > /tmp/reboot.sh
echo 'exit 0' > /tmp/nothing.sh

step "console input reaches the guest shell (16550A receive interrupt)"
# No scenario: the guest runs its interactive shell on the console; type into it once it is up.
mkfifo /tmp/console.in
vireo run --kernel "$GUEST/cloud/vmlinuz" --initrd "$GUEST/cloud/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 panic=-1 quiet" < /tmp/console.in > /tmp/console.log 2>&1 &
pid=$!
exec 3> /tmp/console.in
for _ in $(seq 1 240); do
  grep -q '^VIREO-GUEST-READY' /tmp/console.log && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
sleep 1
echo 'echo typed-$((40 + 2))' >&3
echo 'exit 5' >&3
rc=0
for _ in $(seq 1 120); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; cat /tmp/console.log; fail "guest shell did not act on typed input"; fi
wait $pid || rc=$?
exec 3>&-
cat /tmp/console.log | tail -4
[ $rc -eq 0 ] || fail "vireo exited with $rc"
expect_line /tmp/console.log '^typed-42'
expect_line /tmp/console.log '^VIREO-SCENARIO-EXIT 5$'

step "guest reboot -f with --on-reboot exit"
vireo_boot reboot 180 /tmp/reboot.sh --on-reboot exit
rc=$?
[ $rc -eq 0 ] || fail "vireo exited with $rc after a guest reboot (expected 0)"
expect_line /tmp/reboot.log '^VIREO-GUEST-READY$'
expect_line /tmp/reboot.log 'the guest rebooted; exiting'

step "kernel panic ends non-zero"
VIREO_CMDLINE="console=ttyS0 panic=-1 rdinit=/no-such-init" vireo_boot panic 180 /tmp/nothing.sh
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "vireo exited with $rc after a kernel panic (expected non-zero, not a hang)"
[ $rc -eq 3 ] || fail "vireo exited with $rc after a kernel panic (expected 3, guest crash)"
expect_line /tmp/panic.log 'Kernel panic - not syncing'
expect_line /tmp/panic.log 'vireo: the guest crashed: guest kernel panic: '

step "--on-reboot restart, then SIGTERM"
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/reboot.sh /tmp/restart.cpio.gz
vireo run --kernel "$GUEST/cloud/vmlinuz" --initrd /tmp/restart.cpio.gz \
  --cmdline "console=ttyS0 panic=-1 quiet" --on-reboot restart > /tmp/restart.log 2>&1 &
pid=$!
n=0
for _ in $(seq 1 360); do
  n=$(grep -c '^VIREO-GUEST-READY' /tmp/restart.log)
  [ "$n" -ge 2 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
[ "$n" -ge 2 ] || { cat /tmp/restart.log; kill -9 $pid 2>/dev/null; fail "guest did not boot a second time after reboot (READY seen $n times)"; }
kill -TERM $pid
rc=0
wait $pid || rc=$?
cat /tmp/restart.log | tail -5
[ $rc -eq 0 ] || fail "vireo exited with $rc on SIGTERM (expected 0)"
expect_line /tmp/restart.log 'restarting it'
expect_line /tmp/restart.log 'vireo: stopped by SIGTERM'
echo "lifecycle: OK"
