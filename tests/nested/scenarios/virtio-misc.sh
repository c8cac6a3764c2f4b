# virtio-rng and virtio-console. 1) /dev/hwrng is backed by virtio-rng (rng_current names it) and
# yields 4 KiB that look random (many distinct byte values, two reads differ), and the virtio
# devices interrupt through MSI-X vectors (/proc/interrupts); with pci=nomsi the same device works
# over INTx (an IO-APIC line found through the ACPI _PRT). 2) --console virtio
# with vireo's default command line: the guest's console is hvc0 (/proc/cmdline, /proc/consoles,
# the scenario's stdout), what the scenario prints arrives on vireo's stdout, and a line written
# to vireo's stdin reaches the scenario's `read` on hvc0. 3) Same console, no scenario: the
# guest's interactive shell runs on hvc0 (cttyhack) and acts on typed commands.
# VIREO_SCENARIO_VMM=qemu runs the same boots under QEMU.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

echo "virtio-misc: VMM $(vmm_name)"

# ---- 1) virtio-rng ----
cat > /tmp/rng.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/hwrng is virtio-rng"
wait_path /dev/hwrng 10
for _ in $(seq 1 50); do
  cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
  case $cur in virtio*) break ;; esac
  sleep 0.1
done
echo "rng_current=$cur rng_available=$(cat /sys/class/misc/hw_random/rng_available 2>/dev/null)"
case $cur in virtio*) ;; *) gfail "rng_current is '$cur', not a virtio_rng device" ;; esac
gstep "read 4 KiB from /dev/hwrng"
timeout 60 dd if=/dev/hwrng of=/tmp/rng1 bs=1 count=4096 2>/dev/null || gfail "dd from /dev/hwrng failed or took over 60 s"
timeout 60 dd if=/dev/hwrng of=/tmp/rng2 bs=512 count=8 iflag=fullblock 2>/dev/null || gfail "second read from /dev/hwrng failed"
n=$(stat -c %s /tmp/rng1)
[ "$n" -eq 4096 ] || gfail "got $n bytes, expected 4096"
distinct=$(od -An -v -tx1 /tmp/rng1 | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
echo "4096 bytes, $distinct distinct byte values"
[ "$distinct" -ge 200 ] || gfail "only $distinct distinct byte values in 4096 bytes: not random (all zero?)"
! cmp -s /tmp/rng1 /tmp/rng2 || gfail "two reads from /dev/hwrng returned the same 4 KiB"
gstep "virtio interrupts are MSI-X (per-queue vectors routed by the VMM)"
grep -E 'virtio[0-9]+-' /proc/interrupts | sed 's/  */ /g'
n=$(grep -cE 'PCI-MSI.*virtio[0-9]+-' /proc/interrupts)
[ "$n" -ge 2 ] || gfail "$n MSI-X virtio vectors in /proc/interrupts, expected a config and a queue vector"
echo "hwrng: done"
SCEN
step "boot: /dev/hwrng (guest side)"
vireo_boot rng 150 /tmp/rng.sh --memory 256M
guest_ok rng $?

# ---- 1b) the same device without MSI: legacy INTx through the IOAPIC and the ACPI _PRT ----
cat > /tmp/rng-intx.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "/dev/hwrng works with pci=nomsi (INTx)"
wait_path /dev/hwrng 10
timeout 60 dd if=/dev/hwrng of=/tmp/rng1 bs=512 count=8 iflag=fullblock 2>/dev/null || gfail "reading /dev/hwrng over INTx failed or took over 60 s"
[ "$(stat -c %s /tmp/rng1)" -eq 4096 ] || gfail "short read from /dev/hwrng over INTx"
grep -E 'virtio' /proc/interrupts | sed 's/  */ /g'
grep -qE 'IO-APIC.*fasteoi.*virtio' /proc/interrupts || gfail "no virtio interrupt on an IO-APIC line"
! grep -qE 'PCI-MSI.*virtio' /proc/interrupts || gfail "pci=nomsi, yet virtio uses MSI"
echo "intx: done"
SCEN
step "boot with pci=nomsi: virtio over INTx (guest side)"
VIREO_CMDLINE="console=ttyS0 panic=-1 quiet pci=nomsi"
vireo_boot rngintx 150 /tmp/rng-intx.sh --memory 256M
rc=$?
unset VIREO_CMDLINE
guest_ok rngintx $rc

# console_session NAME SECONDS READY_REGEX INPUT_LINES INITRD: runs the VMM with --console virtio
# and the default command line, stdin from a fifo; once READY_REGEX shows on its stdout, writes
# INPUT_LINES (one per line, a second apart) to its stdin; waits for it to end (or stops it after
# SECONDS). Output: /tmp/NAME.log; returns the VMM's status (124 when stopped).
console_session() {
  _name=$1 _secs=$2 _ready=$3 _input=$4 _initrd=$5
  rm -f "/tmp/$_name.in"
  mkfifo "/tmp/$_name.in"
  vmm_run --kernel "$GUEST/cloud/vmlinuz" --initrd "$_initrd" --memory 256M --console virtio \
    < "/tmp/$_name.in" > "/tmp/$_name.log" 2>&1 &
  _pid=$!
  exec 3> "/tmp/$_name.in"
  _n=$((_secs * 2))
  while [ $_n -gt 0 ] && kill -0 $_pid 2>/dev/null && ! tr -d '\r' < "/tmp/$_name.log" | grep -q -E "$_ready"; do
    sleep 0.5
    _n=$((_n - 1))
  done
  if tr -d '\r' < "/tmp/$_name.log" | grep -q -E "$_ready"; then
    sleep 1
    echo "$_input" | while IFS= read -r _l; do echo "$_l" >&3; sleep 1; done
  else
    echo "console_session: '$_ready' never showed on $(vmm_name)'s stdout"
  fi
  while [ $_n -gt 0 ] && kill -0 $_pid 2>/dev/null; do sleep 0.5; _n=$((_n - 1)); done
  _rc=0
  if kill -0 $_pid 2>/dev/null; then
    kill -TERM $_pid; sleep 5; kill -KILL $_pid 2>/dev/null
    _rc=124
    wait $_pid
  else
    wait $_pid || _rc=$?
  fi
  exec 3>&-
  cat "/tmp/$_name.log"
  [ $_rc -ne 124 ] || echo "TIMEOUT [$VIREO_STEP]: $(vmm_name) still running after ${_secs}s, stopped"
  return $_rc
}

# ---- 2) virtio-console: output and input through a scenario ----
cat > /tmp/hvc.sh <<'SCEN'
. /lib/vireo-guest.sh
echo "HVC-HELLO from the scenario on $(readlink /proc/$$/fd/1) ($(cat /sys/class/tty/console/active))"
gstep "the console is hvc0"
grep -q 'console=hvc0' /proc/cmdline || gfail "/proc/cmdline has no console=hvc0: $(cat /proc/cmdline)"
[ -e /sys/class/tty/hvc0 ] || gfail "/sys/class/tty/hvc0 is missing"
grep -q '^hvc0 ' /proc/consoles || gfail "hvc0 is not in /proc/consoles: $(cat /proc/consoles)"
grep -q hvc0 /sys/class/tty/console/active || gfail "the active console is $(cat /sys/class/tty/console/active), not hvc0"
echo "consoles: $(cat /proc/consoles | tr '\n' ';')"
gstep "input from the VMM's stdin reaches hvc0"
echo "HVC-WAITING-FOR-INPUT"
read -t 90 -r line || gfail "nothing arrived on hvc0 within 90 s"
echo "HVC-GOT: $line"
[ "$line" = "typed-into-the-vmm" ] || gfail "read '$line' from hvc0, expected 'typed-into-the-vmm'"
echo "virtio-console: done"
SCEN
step "boot with --console virtio: scenario output on stdout, stdin to hvc0"
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/hvc.sh /tmp/hvc.cpio.gz || fail "add-scenario failed"
console_session hvc 150 '^HVC-WAITING-FOR-INPUT' typed-into-the-vmm /tmp/hvc.cpio.gz
rc=$?
guest_ok hvc $rc
expect_line /tmp/hvc.log '^HVC-HELLO from the scenario on /dev/console \(.*hvc0.*\)$'
expect_line /tmp/hvc.log '^HVC-GOT: typed-into-the-vmm$'

# ---- 3) virtio-console: the interactive shell ----
step "boot with --console virtio, no scenario: the interactive shell on hvc0 acts on typed commands"
console_session hvc-shell 150 '^VIREO-GUEST-READY' "$(printf '%s\n' 'echo shell-on-$(tty)-$((40 + 2))' 'exit 5')" \
  "$GUEST/cloud/initramfs.cpio.gz"
rc=$?
[ $rc -eq 0 ] || fail "$(vmm_name) exited with $rc"
expect_line /tmp/hvc-shell.log '^shell-on-/dev/hvc0-42'
expect_line /tmp/hvc-shell.log '^VIREO-SCENARIO-EXIT 5$'
echo "virtio-misc: OK ($(vmm_name))"
