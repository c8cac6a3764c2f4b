# seccomp (issue 11 §2) with a Linux guest using every device kind: 1) while the guest runs (two
# vCPUs, virtio-blk on io_uring, virtio-net on a tap with traffic, virtio-console, virtio-rng),
# every thread of vireo shows "Seccomp: 2", and the thread names show each kind is there; SIGTERM
# still ends it in order (exit 0). 2) The same through Firecracker's API (vmm, api, machine
# threads). 3) A --seccomp-filter whose vcpu filter leaves out ioctl: the first KVM_RUN kills
# vireo with status 148, the report names the vcpu thread, ioctl and KVM_RUN, and the metrics
# count the fault. 4) --no-seccomp: every thread shows "Seccomp: 0". 5) A guest that triple-faults
# under the default filter: status 3 and the crash report with the vCPU's registers.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

scratch_fs 256
tap_up vtap0 169.254.100.1/24
dd if=/dev/urandom of="$SCRATCH/disk.img" bs=1M count=16 2>/dev/null || fail "dd failed"

# The guest reads its disk, pulls entropy, writes to hvc0 and pings the host, then says it is
# ready and idles until vireo is stopped.
cat > /tmp/sec-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "devices"
wait_path /dev/vda 10
dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null || gfail "cannot read /dev/vda"
head -c 64 /dev/hwrng > /dev/null || gfail "cannot read /dev/hwrng"
for n in /sys/class/net/*; do [ "$(cat $n/address)" = 52:54:00:5e:cc:01 ] && dev=${n##*/}; done
[ -n "$dev" ] || gfail "no NIC with the MAC given"
ip addr add 169.254.100.2/24 dev "$dev" && ip link set "$dev" up || gfail "ip setup failed"
ping -c 2 -W 5 169.254.100.1 > /dev/null || gfail "ping 169.254.100.1 failed"
echo "SECCOMP-GUEST-BUSY"
sleep 600
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/sec-guest.sh /tmp/sec-guest.cpio.gz ||
  fail "add-scenario failed"

# threads PID: one line per thread, "NAME SECCOMP-MODE".
threads() {
  for _t in /proc/$1/task/*; do
    echo "$(cat "$_t/comm") $(sed -n 's/^Seccomp:[[:space:]]*//p' "$_t/status")"
  done
}

# check_threads PID MODE MIN NAMES...: at least MIN threads, all in seccomp mode MODE, and a thread
# with each of NAMES.
check_threads() {
  _pid=$1 _mode=$2 _min=$3
  shift 3
  threads "$_pid" > /tmp/sec-threads
  cat /tmp/sec-threads
  _n=$(wc -l < /tmp/sec-threads)
  [ "$_n" -ge "$_min" ] || fail "$_n threads, expected at least $_min"
  _bad=$(awk -v m="$_mode" '$2 != m' /tmp/sec-threads)
  [ -z "$_bad" ] || fail "threads not in seccomp mode $_mode: $_bad"
  for _name in "$@"; do
    grep -q "^$_name " /tmp/sec-threads || fail "no $_name thread"
  done
  echo "$_n threads, all Seccomp: $_mode"
}

# boot_run NAME [VIREO_RUN_ARGS...]: `vireo run` with the busy guest in the background; waits until
# the guest is busy. Sets PID.
boot_run() {
  _name=$1
  shift
  vireo run --kernel "$GUEST/cloud/vmlinuz" --initrd /tmp/sec-guest.cpio.gz --cpus 2 \
    --memory 256M --disk path="$SCRATCH/disk.img" --net tap=vtap0,mac=52:54:00:5e:cc:01 \
    --console virtio "$@" > "/tmp/$_name.log" 2>&1 < /dev/null &
  PID=$!
  wait_while_alive "$PID" "/tmp/$_name.log" SECCOMP-GUEST-BUSY 240
  case $? in
    0) ;;
    2) cat "/tmp/$_name.log"; fail "vireo exited before the guest got busy" ;;
    *) cat "/tmp/$_name.log"; fail "the guest did not get busy" ;;
  esac
}

# stop PID NAME: SIGTERM; vireo must exit 0.
stop() {
  kill -TERM "$1"
  wait "$1"
  _rc=$?
  [ $_rc -eq 0 ] || { tail -20 "/tmp/$2.log"; fail "vireo exited with $_rc after SIGTERM, expected 0"; }
}

# ---- 1) vireo run: every thread filtered ----
step "vireo run, every device: all threads in Seccomp mode 2"
boot_run sec-run
# main (vmm), launcher, signal, 2 vCPUs, blk, net, console, rng (stdin is /dev/null: its reader
# has ended).
check_threads $PID 2 9 vireo vireo-launcher vireo-signal vireo-vcpu vireo-blk vireo-net \
  vireo-console vireo-rng
[ "$(grep -c '^vireo-vcpu ' /tmp/sec-threads)" -eq 2 ] || fail "expected two vCPU threads"
stop $PID sec-run

# ---- 2) Firecracker's API: vmm, api and machine threads ----
step "the API: all threads in Seccomp mode 2"
sock=/tmp/sec.sock
rm -f $sock
vireo --api-sock $sock --metrics-path /tmp/sec-api.metrics > /tmp/sec-api.log 2>&1 < /dev/null &
PID=$!
_i=0
while [ ! -S $sock ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
API_OUT=/tmp/sec-api.out  # api (lib.sh) leaves each answer's body here
[ "$(api PUT /boot-source "{\"kernel_image_path\": \"$GUEST/cloud/vmlinuz\", \"initrd_path\": \"/tmp/sec-guest.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=-1 quiet\"}")" = 204 ] ||
  fail "PUT /boot-source: $(cat /tmp/sec-api.out)"
[ "$(api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}')" = 204 ] || fail "PUT /machine-config"
[ "$(api PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SCRATCH/disk.img\", \"is_root_device\": false, \"is_read_only\": true}")" = 204 ] ||
  fail "PUT /drives: $(cat /tmp/sec-api.out)"
[ "$(api PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "vtap0", "guest_mac": "52:54:00:5e:cc:01"}')" = 204 ] ||
  fail "PUT /network-interfaces: $(cat /tmp/sec-api.out)"
[ "$(api PUT /actions '{"action_type": "InstanceStart"}')" = 204 ] || fail "InstanceStart: $(cat /tmp/sec-api.out)"
wait_for /tmp/sec-api.log SECCOMP-GUEST-BUSY 240 || { cat /tmp/sec-api.log; fail "the guest did not get busy"; }
[ "$(api PATCH /vm '{"state": "Paused"}')" = 204 ] || fail "pause: $(cat /tmp/sec-api.out)"
[ "$(api PATCH /vm '{"state": "Resumed"}')" = 204 ] || fail "resume: $(cat /tmp/sec-api.out)"
[ "$(api PUT /actions '{"action_type": "FlushMetrics"}')" = 204 ] || fail "FlushMetrics"
grep -q '"seccomp":{"num_faults":0}' /tmp/sec-api.metrics || fail "metrics lack seccomp.num_faults 0"
check_threads $PID 2 10 vireo vireo-launcher vireo-signal vireo-api vireo-machine vireo-vcpu \
  vireo-blk vireo-net vireo-rng
stop $PID sec-api

# ---- 3) a filter that forbids what a vCPU needs: exit 148, reported ----
step "--seccomp-filter without ioctl for vcpu threads: status 148, the report names it"
cat > /tmp/no-ioctl.json <<'JSON'
{"vcpu": {"default_action": "trap", "filter_action": "allow", "filter": [
  {"syscall": "futex"}, {"syscall": "write"}, {"syscall": "read"}, {"syscall": "clock_gettime"},
  {"syscall": "gettid"}, {"syscall": "mmap"}, {"syscall": "munmap"}, {"syscall": "madvise"},
  {"syscall": "brk"}, {"syscall": "rt_sigprocmask"}, {"syscall": "rt_sigreturn"},
  {"syscall": "exit"}, {"syscall": "exit_group"}]}}
JSON
vireo run --kernel "$GUEST/cloud/vmlinuz" --initrd /tmp/sec-guest.cpio.gz --memory 256M \
  --seccomp-filter /tmp/no-ioctl.json > /tmp/sec-bad.log 2>&1 < /dev/null
rc=$?
cat /tmp/sec-bad.log
[ $rc -eq 148 ] || fail "vireo exited with $rc, expected 148"
expect_line /tmp/sec-bad.log 'seccomp: the vcpu thread made a forbidden system call: 16 \(ioctl\) with arguments 0x[0-9a-f]+, 0xae80,'

step "the same through the API: the log file and the metrics have it"
rm -f $sock /tmp/sec-bad.vlog /tmp/sec-bad.metrics
vireo --api-sock $sock --seccomp-filter /tmp/no-ioctl.json --log-path /tmp/sec-bad.vlog \
  --metrics-path /tmp/sec-bad.metrics > /tmp/sec-bad2.log 2>&1 < /dev/null &
PID=$!
_i=0
while [ ! -S $sock ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
api PUT /boot-source "{\"kernel_image_path\": \"$GUEST/cloud/vmlinuz\"}" > /dev/null
api PUT /actions '{"action_type": "InstanceStart"}' > /dev/null
wait $PID
rc=$?
[ $rc -eq 148 ] || { cat /tmp/sec-bad2.log; fail "vireo exited with $rc, expected 148"; }
expect_line /tmp/sec-bad.vlog 'seccomp: the vcpu thread made a forbidden system call: 16 \(ioctl\)'
expect_line /tmp/sec-bad.metrics '"seccomp":\{"num_faults":1\}'

# ---- 4) --no-seccomp ----
step "--no-seccomp: all threads in Seccomp mode 0"
boot_run sec-off --no-seccomp
# As above less the launcher, which only confinement needs.
check_threads $PID 0 8 vireo vireo-signal vireo-vcpu vireo-blk vireo-net vireo-console vireo-rng
stop $PID sec-off

# ---- 5) a guest that triple-faults under the default filter ----
# The vCPU thread reads the registers for the crash report (KVM_GET_REGS, KVM_GET_SREGS); CI once
# saw the filter kill vireo there (status 148) instead of the report. reboot=t makes the guest's
# restart a triple fault (Linux loads an empty IDT and executes int3).
step "a guest's triple fault under the default filter: status 3 and the crash report with rip"
cat > /tmp/sec-tf.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "triple fault"
echo "SECCOMP-GUEST-TRIPLE-FAULT"
echo b > /proc/sysrq-trigger
sleep 60
gfail "still running after sysrq b"
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/sec-tf.sh /tmp/sec-tf.cpio.gz ||
  fail "add-scenario failed"
run_timed 240 /tmp/sec-tf.log vireo run --kernel "$GUEST/cloud/vmlinuz" \
  --initrd /tmp/sec-tf.cpio.gz --memory 256M --cmdline "console=ttyS0 reboot=t panic=-1 quiet" \
  < /dev/null
rc=$?
tail -5 /tmp/sec-tf.log
[ $rc -eq 3 ] || fail "vireo exited with $rc, expected 3 (the guest crashed)"
expect_line /tmp/sec-tf.log SECCOMP-GUEST-TRIPLE-FAULT
expect_line /tmp/sec-tf.log 'vireo: the guest crashed: vCPU 0: the CPU shut down \(triple fault\) \(rip 0x[0-9a-f]+ .*cr3 0x'

echo "seccomp: OK"
