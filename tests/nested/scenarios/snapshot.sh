# Snapshot and restore (Firecracker's API: PUT /snapshot/create, PUT /snapshot/load), with the
# standard kernel (CONFIG_VMGENID=y) booting from a root drive (a copy of the test rootfs) with a
# NIC on a tap. The guest counts: every 100 ms it prints `TICK n uptime` and `UUID n <a fresh
# /proc/sys/kernel/random/uuid>`, appends n to /ticks on its root file system (sync every 10
# ticks) and, every 5 ticks, pings the host in the background (`PING n ok|fail`). At n = LIMIT it
# syncs, remounts / read-only (so the host's e2fsck -fn sees a clean file system) and powers off.
# Nothing in the guest knows about snapshots: the same snapshot can be restored any number of
# times, each restore counting on from where the snapshot was taken to LIMIT.
#   a) boot, count to ~20, pause, snapshot/create Full, kill -9 (snapshot/create while running: 400)
#   b) restore in a new process onto a NEW tap (network_overrides), resume_vm: the count goes on
#      at n+1 on the new process's console (no new boot), the guest pings the host over the new
#      tap, powers off; e2fsck -fn passes and /ticks holds 1..LIMIT
#   c) two clones of that snapshot side by side (own disk copy via drive_overrides, own tap; one
#      through the API, one through `vireo snapshot load`): both count on, and the UUIDs they
#      print after the restore differ (vireo changed the VM generation ID: the kernel reseeded)
#   d) Diff: boot with track_dirty_pages, Full snapshot, resume, count, Diff snapshot
#      (`vireo snapshot create --type Diff`), kill; `vireo snapshot merge FULL_MEM DIFF_MEM`;
#      restore the Diff state onto the merged memory: the count resumes from the Diff point
#   e) snapshot/load of a truncated state file, of one with a flipped byte, with a memory file of
#      the wrong size: 400 naming the problem, and the process still loads the good files
#      (resume_vm false: Paused until PATCH /vm Resumed); snapshot/create while running: 400.
#   f) live migration (issue 14), the same machinery moving a running VM: boot on vtapf, count,
#      `vireo migrate receive` (network override to vtapg) and `vireo migrate send` over loopback
#      TCP; the source exits 0, the count goes on at the destination without a gap, the guest
#      pings the host over vtapg, writes on to the same disk (shared storage: the image's lock
#      moves with the VM) and powers off; e2fsck -fn passes and /ticks holds 1..LIMIT.
# A restored guest's console is the NEW process's stdout: each process logs to its own file, and
# the guest's console stream is the boot log followed by the restored process's log (a line cut
# by the snapshot continues in the next file), so TICK records are read from the concatenation.
# Every host-side tap gets the same MAC (host_mac below): the guest's ARP entry for the host,
# restored with its memory, stays valid on the new tap, as it would for a clone in production.
#
# VIREO_SCENARIO_VMM=qemu runs a), b) and c) under QEMU (q35, -device vmgenid, snapshot =
# stop + migrate "exec:cat > FILE", restore = -incoming "exec:cat FILE" with
# migration.store-global-state=off so the restored VM runs at once), as a check of the scenario
# itself; d) and e) are vireo's API (Diff files, merge, error answers) and are skipped there.
# Link-local addresses only (DESIGN.md §5).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

vmm=$(vmm_name)
kernel=$GUEST/std/vmlinuz
mac=52:54:00:76:69:51
host_mac=02:76:69:72:65:01
host_ip=169.254.101.1
guest_ip=169.254.101.2
limit=100
at=20
mem_mib=256
boot_args="console=ttyS0 reboot=k panic=1 quiet"

# ---- helpers ----
cleanup() {
  for _f in /tmp/snap-*.pid; do
    [ -e "$_f" ] && kill -9 "$(cat "$_f")" 2>/dev/null
  done
  for _f in /tmp/qmp-snap-*.socat; do
    [ -e "$_f" ] && qmp_close "$(basename "$_f" .socat | sed 's/^qmp-//')"
  done
  for _t in vtap0 vtap1 vtapc1 vtapc2 vtapd vtape vtapf vtapg; do $IP link del "$_t" 2>/dev/null; done
}
trap cleanup EXIT

# snap_tap NAME [ADDR/PREFIX]: a tap with the common host-side MAC, up, with ADDR if given.
snap_tap() {
  $IP link del "$1" 2>/dev/null
  $IP tuntap add dev "$1" mode tap || fail "ip tuntap add dev $1 failed"
  $IP link set dev "$1" address "$host_mac" || fail "cannot set $1's MAC"
  [ -z "${2:-}" ] || $IP addr add "$2" dev "$1" || fail "ip addr add $2 dev $1 failed"
  $IP link set "$1" up || fail "ip link set $1 up failed"
}

# api NAME METHOD PATH [BODY]: prints the HTTP status; the body goes to /tmp/api.out.
api() {
  curl -s -m 60 -o /tmp/api.out -w '%{http_code}' --unix-socket "/tmp/snap-$1.sock" -X "$2" \
    ${4:+-H 'Content-Type: application/json' -d "$4"} "http://localhost$3"
}
# expect_api STATUS NAME METHOD PATH [BODY]
expect_api() {
  _want=$1
  shift
  _got=$(api "$@")
  [ "$_got" = "$_want" ] || fail "$2 $3 ($1) answered $_got, expected $_want: $(cat /tmp/api.out)"
}

# log NAME: the console (stdout) of the VMM process NAME. vireo's log goes to /tmp/snap-NAME.vlog
# (--log-path), stderr to /tmp/snap-NAME.err: no message of the VMM's can cut a TICK record in two.
log() { echo "/tmp/snap-$1.log"; }
# show_end NAME: the last lines of process NAME's console and stderr, for a failure report.
show_end() {
  echo "---- the end of $(log "$1") (console):"
  tr -d '\r' < "$(log "$1")" | grep -v '^$' | tail -12
  echo "---- the end of /tmp/snap-$1.err (stderr):"
  tail -8 "/tmp/snap-$1.err" 2>/dev/null
  [ ! -s "/tmp/snap-$1.vlog" ] || { echo "---- the end of /tmp/snap-$1.vlog (vireo's log):"; tail -12 "/tmp/snap-$1.vlog"; }
}
pid_of() { cat "/tmp/snap-$1.pid"; }

# ticks FILE...: the counter values on the console stream FILE... (concatenated: a restored
# process's log continues its snapshot's boot log), wherever kernel messages cut in.
ticks() {
  cat "$@" | tr -d '\r' | grep -oE 'TICK [0-9]+ [0-9]+\.[0-9]+' | cut -d' ' -f2
}
last_tick() {
  _t=$(ticks "$@" | tail -1)
  echo "${_t:-0}"
}
# tick_record N FILE...: the "TICK N uptime" record.
tick_record() {
  _k=$1
  shift
  cat "$@" | tr -d '\r' | grep -oE "TICK $_k [0-9]+\.[0-9]+" | head -1
}
# consecutive FILE...: the counter on the stream FILE... goes 1, 2, 3, ... without a gap or a
# restart; otherwise prints where it did not and returns 1.
consecutive() {
  ticks "$@" | awk 'NR == 1 && $1 != 1 { print "starts at " $1; bad = 1 }
    NR > 1 && $1 != prev + 1 { print "goes from " prev " to " $1 " (record " NR ")"; bad = 1 }
    { prev = $1 } END { exit bad }'
}
guest_failed() {  # guest_failed FILE: fails with the guest's own message if it printed one
  _gf=$(tr -d '\r' < "$1" | grep -m1 '^GUEST-FAIL' || true)
  [ -z "$_gf" ] || fail "in the guest: ${_gf#GUEST-FAIL }"
}

# wait_tick NAME N SECONDS [BASE_LOG]: waits until process NAME's console counted to N or more.
wait_tick() {
  _n=$(($3 * 5))
  while [ "$(last_tick "$(log "$1")")" -lt "$2" ]; do
    guest_failed "$(log "$1")"
    _n=$((_n - 1))
    if [ $_n -le 0 ] || ! kill -0 "$(pid_of "$1")" 2>/dev/null; then
      show_end "$1"
      kill -0 "$(pid_of "$1")" 2>/dev/null &&
        fail "$vmm ($1) still runs, but its console did not count to $2 within $3 s (last: $(last_tick "$(log "$1")"))"
      fail "$vmm ($1) exited before its console counted to $2 (last: $(last_tick "$(log "$1")"))"
    fi
    sleep 0.2
  done
}

# wait_exit NAME SECONDS: waits for process NAME to end (the guest powers off at LIMIT); fails if
# it is still running after SECONDS (and kills it) or exits non-zero.
wait_exit() {
  _p=$(pid_of "$1")
  _n=$(($2 * 5))
  while kill -0 "$_p" 2>/dev/null; do
    _n=$((_n - 1))
    if [ $_n -le 0 ]; then
      kill -9 "$_p" 2>/dev/null
      show_end "$1"
      fail "$vmm ($1) still running $2 s later (console at TICK $(last_tick "$(log "$1")"), limit $limit)"
    fi
    sleep 0.2
  done
  wait "$_p"
  _rc=$?
  rm -f "/tmp/snap-$1.pid"
  [ "$vmm" = qemu ] && qmp_close "snap-$1"
  guest_failed "$(log "$1")"
  [ $_rc -eq 0 ] || { show_end "$1"; fail "$vmm ($1) exited with $_rc after the guest's power-off"; }
  tr -d '\r' < "$(log "$1")" | grep -q "^TICKS-DONE $limit\$" ||
    fail "$1: the guest did not count to $limit before it powered off"
  expect_line "$(log "$1")" '^VIREO-SCENARIO-EXIT 0$'
}

# kill_vm NAME: kill -9, as a crash or an orchestrator would.
kill_vm() {
  _p=$(pid_of "$1")
  kill -9 "$_p"
  wait "$_p" 2>/dev/null
  rm -f "/tmp/snap-$1.pid"
  [ "$vmm" = qemu ] && qmp_close "snap-$1"
}

# disk_ok IMAGE: e2fsck -fn passes and /ticks on it holds exactly 1..LIMIT.
disk_ok() {
  e2fsck -fn "$1" > /tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "e2fsck -fn $1 found problems"; }
  debugfs -R "cat /ticks" "$1" 2> /dev/null | tr -d '\r' > /tmp/ticks.txt
  _bad=$(awk -v lim="$limit" '$1 != NR { print "line " NR " is \"" $0 "\""; exit }
    END { if (NR != lim) print NR " lines, expected " lim }' /tmp/ticks.txt)
  [ -z "$_bad" ] || fail "/ticks on $1 is not 1..$limit: $_bad (first: $(head -1 /tmp/ticks.txt), last: $(tail -1 /tmp/ticks.txt))"
  echo "$(basename "$1"): e2fsck -fn clean, /ticks = 1..$limit"
}

# uuids FILE: the UUIDs the guest printed on this console.
uuids() {
  tr -d '\r' < "$1" | grep -oE 'UUID [0-9]+ [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | cut -d' ' -f3
}

# start_api NAME: vireo --api-sock /tmp/snap-NAME.sock, console to /tmp/snap-NAME.log.
start_api() {
  rm -f "/tmp/snap-$1.sock"
  vireo --api-sock "/tmp/snap-$1.sock" --log-path "/tmp/snap-$1.vlog" > "$(log "$1")" 2> "/tmp/snap-$1.err" &
  echo $! > "/tmp/snap-$1.pid"
  for _ in $(seq 1 50); do [ -S "/tmp/snap-$1.sock" ] && return 0; sleep 0.1; done
  show_end "$1"
  fail "vireo ($1): no API socket after 5 s"
}

# qemu_vm NAME DISK TAP [QEMU_ARGS...]: the same machine under QEMU, QMP on /tmp/snap-NAME.qmp.
qemu_vm() {
  _name=$1 _disk=$2 _tap=$3
  shift 3
  rm -f "/tmp/snap-$_name.qmp"
  qemu-system-x86_64 -M q35 -accel kvm -cpu host -nodefaults -no-user-config -display none \
    -serial stdio -no-reboot -smp 1 -m $mem_mib -kernel "$kernel" -initrd /tmp/snap.cpio.gz \
    -append "$boot_args root=/dev/vda rw" \
    -drive "file=$_disk,format=raw,if=none,id=rootfs" -device virtio-blk-pci,drive=rootfs \
    -netdev "tap,id=eth0,ifname=$_tap,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=eth0,mac=$mac,romfile=" -device virtio-rng-pci \
    -device vmgenid -global migration.store-global-state=off \
    -qmp "unix:/tmp/snap-$_name.qmp,server=on,wait=off" "$@" > "$(log "$_name")" 2> "/tmp/snap-$_name.err" &
  echo $! > "/tmp/snap-$_name.pid"
  qmp_open "snap-$_name" "/tmp/snap-$_name.qmp" || fail "no QMP session with QEMU ($_name)"
}

# vm_boot NAME DISK TAP [dirty]: boots the counting guest; "dirty" turns on track_dirty_pages.
vm_boot() {
  if [ "$vmm" = qemu ]; then
    qemu_vm "$1" "$2" "$3"
    return
  fi
  start_api "$1"
  _dirty=
  [ "${4:-}" = dirty ] && _dirty=', "track_dirty_pages": true'
  expect_api 204 "$1" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/snap.cpio.gz\", \"boot_args\": \"$boot_args\"}"
  expect_api 204 "$1" PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": $mem_mib$_dirty}"
  expect_api 204 "$1" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$2\", \"is_root_device\": true, \"is_read_only\": false}"
  expect_api 204 "$1" PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$3\", \"guest_mac\": \"$mac\"}"
  expect_api 204 "$1" PUT /actions '{"action_type": "InstanceStart"}'
}

vm_pause() {
  if [ "$vmm" = qemu ]; then
    qmp "snap-$1" '{"execute": "stop"}' > /dev/null || fail "QMP stop failed"
  else
    expect_api 204 "$1" PATCH /vm '{"state": "Paused"}'
  fi
}
vm_resume() {
  if [ "$vmm" = qemu ]; then
    qmp "snap-$1" '{"execute": "cont"}' > /dev/null || fail "QMP cont failed"
  else
    expect_api 204 "$1" PATCH /vm '{"state": "Resumed"}'
  fi
}

# vm_snapshot NAME TYPE STATE MEM: the paused VM's snapshot (QEMU: one stream file, STATE).
vm_snapshot() {
  if [ "$vmm" = qemu ]; then
    qmp "snap-$1" '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 107374182400}}' > /dev/null ||
      fail "QMP migrate-set-parameters failed"
    qmp "snap-$1" "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:cat > $3\"}}" > /dev/null ||
      fail "QMP migrate failed"
    _n=600
    while :; do
      _r=$(qmp "snap-$1" '{"execute": "query-migrate"}')
      case $_r in
        *'"completed"'*) break ;;
        *'"failed"'*|*'"cancelled"'*) fail "QEMU's migration to $3 failed: $_r" ;;
      esac
      _n=$((_n - 1))
      [ $_n -gt 0 ] || fail "QEMU's migration to $3 not completed after 60 s: $_r"
      sleep 0.1
    done
    sleep 0.5  # `cat` may still be writing the last bytes
    return
  fi
  expect_api 204 "$1" PUT /snapshot/create "{\"snapshot_type\": \"$2\", \"snapshot_path\": \"$3\", \"mem_file_path\": \"$4\"}"
  [ -s "$3" ] || fail "snapshot/create answered 204 but wrote no state file $3"
  [ -s "$4" ] || fail "snapshot/create answered 204 but wrote no memory file $4"
}

# load_body STATE MEM TAP DISK [paused]: the snapshot/load request (overrides only when given).
load_body() {
  _resume=true
  [ "${5:-}" = paused ] && _resume=false
  _ov=
  [ -z "$3" ] || _ov="$_ov, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"$3\"}]"
  [ -z "$4" ] || _ov="$_ov, \"drive_overrides\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"$4\"}]"
  echo "{\"snapshot_path\": \"$1\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$2\"}, \"resume_vm\": $_resume$_ov}"
}

# vm_restore NAME STATE MEM TAP DISK: a new process restores the snapshot and runs it (vireo: the
# API, PUT /snapshot/load with resume_vm; TAP or DISK empty: no override).
vm_restore() {
  if [ "$vmm" = qemu ]; then
    qemu_vm "$1" "${5:-$disk_of_snapshot}" "${4:-$tap_of_snapshot}" -incoming "exec:cat $2"
    return
  fi
  start_api "$1"
  expect_api 204 "$1" PUT /snapshot/load "$(load_body "$2" "$3" "$4" "$5")"
}

# vm_restore_cli NAME STATE MEM TAP DISK: the same through `vireo snapshot load`.
vm_restore_cli() {
  if [ "$vmm" = qemu ]; then
    vm_restore "$@"
    return
  fi
  vireo snapshot load --snapshot-path "$2" --mem-file-path "$3" --log-path "/tmp/snap-$1.vlog" \
    ${4:+--network-override "eth0=$4"} ${5:+--drive-override "rootfs=$5"} > "$(log "$1")" 2> "/tmp/snap-$1.err" &
  echo $! > "/tmp/snap-$1.pid"
}

# restored_ok NAME BASE_LOG N: process NAME restored the snapshot taken at TICK N of the console
# BASE_LOG: its console counts on from N+1 (no new boot), without a gap.
restored_ok() {
  wait_tick "$1" $(($3 + 5)) 120
  _l=$(log "$1")
  if tr -d '\r' < "$_l" | grep -qE 'VIREO-ROOTFS-READY|VIREO-GUEST-READY|Linux version'; then
    fail "$1: the restored process's console shows a new boot: $(tr -d '\r' < "$_l" | grep -m1 -E 'VIREO-ROOTFS-READY|VIREO-GUEST-READY|Linux version')"
  fi
  _first=$(ticks "$_l" | head -1)
  _gap=$(consecutive "$2" "$_l") ||
    fail "$1: across the restore the counter $_gap (boot log ended at $3, the restored console's first full record is $_first)"
  _t1=$(tick_record "$3" "$2" | cut -d' ' -f3 | tr -d .)
  _t2=$(tick_record $(($3 + 1)) "$2" "$_l" | cut -d' ' -f3 | tr -d .)
  echo "$1: TICK $3 before the snapshot, TICK $(($3 + 1)) after the restore (guest uptime +$((_t2 - _t1))0 ms)"
}

# pings_after NAME N: the guest's ping records started after TICK N (a ping started before a
# snapshot or a migration may answer after it: only later ones count).
pings_after() { tr -d '\r' < "$(log "$1")" | grep -oE 'PING [0-9]+ [a-z]+' | awk -v n="$2" '$2 > n'; }
# wait_ping NAME N TAP: a ping started after TICK N succeeded within 60 s (the NIC is on TAP).
wait_ping() {
  _n=300
  until pings_after "$1" "$2" | grep -q ' ok$'; do
    guest_failed "$(log "$1")"
    _n=$((_n - 1))
    if [ $_n -le 0 ]; then
      show_end "$1"
      echo "---- $3 (RX: frames from the guest, TX: to the guest) and the host's neighbours:"
      $IP -s link show "$3"
      $IP neigh show dev "$3"
      fail "$1: no successful ping started after TICK $2 within 60 s (is the NIC on $3?): $(pings_after "$1" "$2" | tail -3 | tr '\n' ' ')"
    fi
    sleep 0.2
  done
  echo "$1: $(pings_after "$1" "$2" | grep ' ok$' | head -1) (started after TICK $2)"
}

# ---- the guest ----
step "scratch file system, the root file system image, the guest's counting scenario"
scratch_fs 1536
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/rootfs.ext4" || fail "no /guest/rootfs.ext4.gz"
echo "LIMIT=$limit MAC=$mac HOST=$host_ip ME=$guest_ip" > /tmp/snap-guest.sh
cat >> /tmp/snap-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "the root drive and the NIC"
root=$(awk '$2 == "/" {d = $1} END {print d}' /proc/mounts)
[ "$root" = /dev/vda ] || gfail "/ is $root, not the root drive /dev/vda"
for _ in $(seq 1 100); do eth=$(iface_by_mac "$MAC") && break; sleep 0.1; done
[ -n "$eth" ] || gfail "no NIC with MAC $MAC"
ip link set "$eth" up && ip addr add "$ME/24" dev "$eth" || gfail "cannot configure $eth"
gstep "count to $LIMIT"
: > /ticks
i=0
while [ $i -lt "$LIMIT" ]; do
  i=$((i + 1))
  read -r up _ < /proc/uptime
  echo "TICK $i $up"
  echo $i >> /ticks
  read -r u < /proc/sys/kernel/random/uuid
  echo "UUID $i $u"
  [ $((i % 10)) -ne 0 ] || sync
  if [ $((i % 5)) -eq 0 ]; then
    ( if ping -c 1 -W 1 "$HOST" > /dev/null 2>&1; then echo "PING $i ok"; else echo "PING $i fail"; fi ) &
  fi
  usleep 100000
done
wait
sync
echo "TICKS-DONE $i"
mount -o remount,ro / || gfail "cannot remount / read-only"
SCEN
add-scenario "$GUEST/std/initramfs.cpio.gz" /tmp/snap-guest.sh /tmp/snap.cpio.gz || fail "add-scenario"

# ---- a) boot, Full snapshot, kill -9 ----
step "a) $vmm boots the counting guest (std kernel, root drive, NIC on vtap0)"
snap_tap vtap0 "$host_ip/24"
disk_of_snapshot=$SCRATCH/rootfs.ext4 tap_of_snapshot=vtap0
vm_boot a "$SCRATCH/rootfs.ext4" vtap0
wait_tick a $at 240
tr -d '\r' < "$(log a)" | grep -q '^VIREO-ROOTFS-READY' || fail "the guest did not switch to its root drive"
step "a) the guest pings the host before the snapshot"
n=300
until tr -d '\r' < "$(log a)" | grep -qE 'PING [0-9]+ ok'; do
  guest_failed "$(log a)"
  n=$((n - 1))
  [ $n -gt 0 ] || fail "no successful ping from the guest within 60 s: $(tr -d '\r' < "$(log a)" | grep -oE 'PING [0-9]+ [a-z]+' | tail -3 | tr '\n' ' ')"
  sleep 0.2
done
if [ "$vmm" = vireo ]; then
  step "a) snapshot/create while the VM runs: 400"
  expect_api 400 a PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$SCRATCH/x.state\", \"mem_file_path\": \"$SCRATCH/x.mem\"}"
  [ ! -e "$SCRATCH/x.state" ] || fail "a refused snapshot/create left $SCRATCH/x.state behind"
fi
step "a) pause, snapshot/create Full, kill -9"
vm_pause a
sleep 0.3
n_a=$(last_tick "$(log a)")
vm_snapshot a Full "$SCRATCH/a.state" "$SCRATCH/a.mem"
kill_vm a
[ "$(last_tick "$(log a)")" = "$n_a" ] || fail "the guest counted from $n_a to $(last_tick "$(log a)") while paused"
# The disk as the snapshot knows it, for the restores after b) (which writes on).
cp "$SCRATCH/rootfs.ext4" "$SCRATCH/snap-disk.ext4" || fail "cp"
for f in "$SCRATCH"/a.state "$SCRATCH"/a.mem; do
  [ -e "$f" ] && echo "snapshot at TICK $n_a: $f: $(stat -c %s "$f") bytes, $(du -k "$f" | cut -f1) KiB used"
done
$IP link del vtap0

# ---- b) restore onto a new tap ----
step "b) restore in a new process onto the new tap vtap1 (network_overrides), resume_vm"
snap_tap vtap1 "$host_ip/24"
vm_restore b "$SCRATCH/a.state" "$SCRATCH/a.mem" vtap1 ""
restored_ok b "$(log a)" "$n_a"
step "b) the restored guest pings the host over vtap1"
wait_ping b "$n_a" vtap1
step "b) the guest counts to $limit and powers off; the disk is consistent"
wait_exit b 240
_gap=$(consecutive "$(log a)" "$(log b)") || fail "b: the counter $_gap"
disk_ok "$SCRATCH/rootfs.ext4"
$IP link del vtap1

# ---- c) two clones ----
step "c) two clones of the snapshot side by side (own disk, own tap; API and vireo snapshot load)"
cp "$SCRATCH/snap-disk.ext4" "$SCRATCH/clone1.ext4" && cp "$SCRATCH/snap-disk.ext4" "$SCRATCH/clone2.ext4" ||
  fail "cp"
# No host address on the clones' taps: both guests have the same address (their pings fail, as
# they should; nothing here checks them).
snap_tap vtapc1
snap_tap vtapc2
vm_restore c1 "$SCRATCH/a.state" "$SCRATCH/a.mem" vtapc1 "$SCRATCH/clone1.ext4"
vm_restore_cli c2 "$SCRATCH/a.state" "$SCRATCH/a.mem" vtapc2 "$SCRATCH/clone2.ext4"
restored_ok c1 "$(log a)" "$n_a"
restored_ok c2 "$(log a)" "$n_a"
wait_exit c1 240
wait_exit c2 240
step "c) each clone's disk is consistent; their random UUIDs after the restore differ"
disk_ok "$SCRATCH/clone1.ext4"
disk_ok "$SCRATCH/clone2.ext4"
uuids "$(log c1)" > /tmp/uuid-c1
uuids "$(log c2)" > /tmp/uuid-c2
uuids "$(log b)" > /tmp/uuid-b
echo "clone 1: $(head -3 /tmp/uuid-c1 | tr '\n' ' ')... ($(wc -l < /tmp/uuid-c1))"
echo "clone 2: $(head -3 /tmp/uuid-c2 | tr '\n' ' ')... ($(wc -l < /tmp/uuid-c2))"
[ "$(wc -l < /tmp/uuid-c1)" -ge 10 ] && [ "$(wc -l < /tmp/uuid-c2)" -ge 10 ] ||
  fail "the clones printed too few UUIDs after the restore"
same=$(sort /tmp/uuid-c1 /tmp/uuid-c2 | uniq -d | wc -l)
[ "$same" -eq 0 ] ||
  fail "the two clones printed $same identical UUIDs after the restore: the guest's RNG was not reseeded (VM generation ID unchanged?)"
same=$(sort /tmp/uuid-c1 /tmp/uuid-b | uniq -d | wc -l)
[ "$same" -eq 0 ] || fail "clone 1 and restore b) printed $same identical UUIDs after the restore"
$IP link del vtapc1
$IP link del vtapc2

if [ "$vmm" = qemu ]; then
  echo "d) and e) are vireo's API (Diff snapshots, merge, error answers): skipped under QEMU"
  echo "snapshot: OK (qemu: a, b, c)"
  exit 0
fi

# ---- d) Diff ----
step "d) boot with track_dirty_pages, Full snapshot, resume"
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/d.ext4" || fail "gunzip"
snap_tap vtapd "$host_ip/24"
vm_boot d "$SCRATCH/d.ext4" vtapd dirty
wait_tick d $at 240
vm_pause d
sleep 0.3
n_full=$(last_tick "$(log d)")
vm_snapshot d Full "$SCRATCH/d-full.state" "$SCRATCH/d-full.mem"
vm_resume d
step "d) count on, vireo snapshot create --type Diff (pauses), kill -9"
wait_tick d $((n_full + 20)) 60
vireo snapshot create --api-sock /tmp/snap-d.sock --snapshot-path "$SCRATCH/d-diff.state" \
  --mem-file-path "$SCRATCH/d-diff.mem" --type Diff > /tmp/snap-d-create.log 2>&1 ||
  { cat /tmp/snap-d-create.log; fail "vireo snapshot create --type Diff failed"; }
expect_api 200 d GET /
grep -q '"state":"Paused"' /tmp/api.out || fail "after vireo snapshot create: $(cat /tmp/api.out), expected Paused"
sleep 0.3
n_diff=$(last_tick "$(log d)")
kill_vm d
[ "$(last_tick "$(log d)")" = "$n_diff" ] || fail "the guest counted on after the Diff snapshot paused it"
full_kib=$(du -k "$SCRATCH/d-full.mem" | cut -f1)
diff_kib=$(du -k "$SCRATCH/d-diff.mem" | cut -f1)
echo "Full at TICK $n_full: memory file $(stat -c %s "$SCRATCH/d-full.mem") bytes, $full_kib KiB used; Diff at TICK $n_diff: $(stat -c %s "$SCRATCH/d-diff.mem") bytes, $diff_kib KiB used"
[ "$diff_kib" -lt "$full_kib" ] ||
  fail "the Diff memory file uses $diff_kib KiB, not less than the Full one's $full_kib KiB: not a diff"
step "d) vireo snapshot merge, restore the Diff onto the merged memory: the count resumes at the Diff point"
vireo snapshot merge "$SCRATCH/d-full.mem" "$SCRATCH/d-diff.mem" > /tmp/snap-merge.log 2>&1 ||
  { cat /tmp/snap-merge.log; fail "vireo snapshot merge failed"; }
vm_restore d2 "$SCRATCH/d-diff.state" "$SCRATCH/d-full.mem" "" ""
restored_ok d2 "$(log d)" "$n_diff"
wait_exit d2 240
disk_ok "$SCRATCH/d.ext4"
$IP link del vtapd

# ---- e) errors ----
step "e) snapshot/load refuses broken files with 400 and a message; the process stays usable"
size=$(stat -c %s "$SCRATCH/a.state")
head -c $((size / 2)) "$SCRATCH/a.state" > "$SCRATCH/trunc.state"
cp "$SCRATCH/a.state" "$SCRATCH/flip.state"
off=$((size / 2))
byte=$(od -An -tu1 -j $off -N1 "$SCRATCH/a.state" | tr -d ' ')
printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$SCRATCH/flip.state" bs=1 seek=$off count=1 conv=notrunc 2>/dev/null
cmp -s "$SCRATCH/a.state" "$SCRATCH/flip.state" && fail "the flipped copy is identical"
short=$(($(stat -c %s "$SCRATCH/a.mem") - 4096))
truncate -s $short "$SCRATCH/short.mem"
cp "$SCRATCH/snap-disk.ext4" "$SCRATCH/e.ext4" || fail "cp"
snap_tap vtape "$host_ip/24"
start_api e
# bad_load WHAT STATE MEM REGEX: 400, a message matching REGEX, the VM still "Not started".
bad_load() {
  expect_api 400 e PUT /snapshot/load "$(load_body "$2" "$3" vtape "$SCRATCH/e.ext4")"
  echo "$1: 400 $(cat /tmp/api.out)"
  grep -qiE "$4" /tmp/api.out || fail "$1: the 400's message does not name the problem (/$4/): $(cat /tmp/api.out)"
  kill -0 "$(pid_of e)" 2>/dev/null || fail "vireo exited after refusing $1"
  expect_api 200 e GET /
  grep -q '"state":"Not started"' /tmp/api.out || fail "after refusing $1, GET / says $(cat /tmp/api.out)"
}
bad_load "a truncated state file" "$SCRATCH/trunc.state" "$SCRATCH/a.mem" 'truncat|short|too small|end of|eof|incomplete|length|size'
bad_load "a state file with a flipped byte" "$SCRATCH/flip.state" "$SCRATCH/a.mem" 'crc|checksum|corrupt|integrity|mismatch'
bad_load "a memory file of the wrong size" "$SCRATCH/a.state" "$SCRATCH/short.mem" "size|length|bytes|$short"
expect_api 400 e PUT /snapshot/load "$(load_body "$SCRATCH/a.state" /nonexistent.mem vtape "$SCRATCH/e.ext4")"
echo "a missing memory file: 400 $(cat /tmp/api.out)"
step "e) the good files load (resume_vm false: Paused until PATCH /vm Resumed)"
expect_api 204 e PUT /snapshot/load "$(load_body "$SCRATCH/a.state" "$SCRATCH/a.mem" vtape "$SCRATCH/e.ext4" paused)"
expect_api 200 e GET /
grep -q '"state":"Paused"' /tmp/api.out || fail "after snapshot/load without resume_vm, GET / says $(cat /tmp/api.out)"
sleep 2
[ "$(last_tick "$(log e)")" -eq 0 ] || fail "the guest counted ($(last_tick "$(log e)")) before PATCH /vm Resumed"
expect_api 204 e PATCH /vm '{"state": "Resumed"}'
restored_ok e "$(log a)" "$n_a"
step "e) snapshot/create while running and a second snapshot/load: 400"
expect_api 400 e PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$SCRATCH/y.state\", \"mem_file_path\": \"$SCRATCH/y.mem\"}"
echo "snapshot/create while running: 400 $(cat /tmp/api.out)"
expect_api 400 e PUT /snapshot/load "$(load_body "$SCRATCH/a.state" "$SCRATCH/a.mem" vtape "$SCRATCH/e.ext4")"
wait_exit e 240
disk_ok "$SCRATCH/e.ext4"
$IP link del vtape

# ---- f) live migration ----
step "f) boot on vtapf, count; vireo migrate receive (eth0 onto vtapg) and vireo migrate send over TCP"
gunzip -c /guest/rootfs.ext4.gz > "$SCRATCH/f.ext4" || fail "gunzip"
snap_tap vtapf "$host_ip/24"
snap_tap vtapg
vm_boot f "$SCRATCH/f.ext4" vtapf
wait_tick f $at 240
rm -f /tmp/snap-g.sock
vireo migrate receive --listen tcp:127.0.0.1:7777 --network-override eth0=vtapg \
  --api-sock /tmp/snap-g.sock --log-path /tmp/snap-g.vlog > "$(log g)" 2> /tmp/snap-g.err &
echo $! > /tmp/snap-g.pid
for _ in $(seq 1 50); do [ -S /tmp/snap-g.sock ] && break; sleep 0.1; done
[ -S /tmp/snap-g.sock ] || { show_end g; fail "vireo migrate receive: no API socket after 5 s"; }
vireo migrate send --api-sock /tmp/snap-f.sock --to tcp:127.0.0.1:7777 > /tmp/snap-mig.out 2>&1 ||
  { cat /tmp/snap-mig.out; show_end f; show_end g; fail "vireo migrate send failed"; }
sed 's/^/  /' /tmp/snap-mig.out
# The host's address follows the guest onto the new tap.
$IP addr del "$host_ip/24" dev vtapf
$IP addr add "$host_ip/24" dev vtapg || fail "ip addr add dev vtapg failed"
_p=$(pid_of f)
for _ in $(seq 1 100); do kill -0 "$_p" 2>/dev/null || break; sleep 0.1; done
wait "$_p"
_rc=$?
rm -f /tmp/snap-f.pid
[ $_rc -eq 0 ] || { show_end f; fail "the source exited with $_rc after the migration"; }
grep -q 'migrated to tcp:127.0.0.1:7777' /tmp/snap-f.err ||
  fail "the source did not say where the VM went: $(tail -2 /tmp/snap-f.err)"
n_f=$(last_tick "$(log f)")
restored_ok g "$(log f)" "$n_f"
step "f) the migrated guest pings the host over vtapg"
wait_ping g "$n_f" vtapg
step "f) the guest counts to $limit at the destination and powers off; the shared disk is consistent"
wait_exit g 240
_gap=$(consecutive "$(log f)" "$(log g)") || fail "f: across the migration the counter $_gap"
disk_ok "$SCRATCH/f.ext4"
$IP link del vtapf
$IP link del vtapg
echo "snapshot: OK"
