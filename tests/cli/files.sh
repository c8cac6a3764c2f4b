#!/usr/bin/env bash
# cli.files: host paths from the API, the command line and state files, on this machine's
# /dev/kvm with probe "kernels" (tests/lib/make-probe-kernel). Every request is answered and the
# VMM lives on; nothing blocks on a FIFO; nothing is written through a planted symlink.
#   - a sparse 200 GiB "kernel" under a 1 TiB machine: InstanceStart 400 naming the size, the VMM
#     still answers (it used to die of std::bad_alloc)
#   - FIFOs without a writer/reader as log path, metrics path, state file, memory file, config
#     file, kernel: an error within a bounded time; a metrics FIFO whose reader never reads: many
#     FlushMetrics all answer (dropped and counted, never blocked)
#   - a symlink planted at a snapshot's *.tmp name: 400 naming it, the victim unchanged
#   - a world-writable memory file is copied at load: truncating it afterwards does not kill the
#     restored guest
#   - a state file whose drive path is (now) a block device: 400 unless allow_block_devices
#   - the file console: a symlink is refused, --console-max-size caps the file
# Usage: files.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: files.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-files.XXXXXX)
loopdev=
cleanup() {
  kill -9 $(jobs -p) 2>/dev/null
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/cli/lib.sh"
fault_has() { grep -q -- "$1" "$tmp/out" || { echo "  answer: $(cat "$tmp/out")"; return 1; }; }
# api_t SOCK METHOD PATH [BODY]: api with a 10 s bound (a hung VMM thread answers nothing: 000).
api_t() {
  curl -s -m 10 -o "$tmp/out" -w '%{http_code}' --unix-socket "$1" -X "$2" ${4:+-d "$4"} \
    "http://localhost$3"
}
start() {
  local name=$1
  shift
  rm -f "$tmp/$name.sock"
  "$vireo" --api-sock "$tmp/$name.sock" --log-path "$tmp/$name.vlog" "$@" > "$tmp/$name.log" 2>&1 &
  echo $! > "$tmp/$name.pid"
  wait_socket "$tmp/$name.sock"
}
alive() { kill -0 "$(cat "$tmp/$1.pid")" 2>/dev/null && [ "$(api_t "$tmp/$1.sock" GET /)" = 200 ]; }
kill9() { kill -9 "$(cat "$tmp/$1.pid")" 2>/dev/null; wait "$(cat "$tmp/$1.pid")" 2>/dev/null; }
load_body() {  # load_body STATE MEM [EXTRA]
  echo "{\"snapshot_path\": \"$1\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$2\"}${3:-}}"
}

"$top/tests/lib/make-probe-kernel" --counter "$tmp/counter.elf"
mkfifo "$tmp/fifo"

# ---- a 200 GiB kernel under a 1 TiB machine ----
truncate -s 200G "$tmp/big.kernel"
check "vireo starts" start a
check "PUT /boot-source of the sparse 200 GiB file: 204" \
  test "$(api_t "$tmp/a.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/big.kernel\"}")" = 204
check "PUT /machine-config 1 TiB: 204" \
  test "$(api_t "$tmp/a.sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 1048576}')" = 204
check "InstanceStart: 400" test "$(api_t "$tmp/a.sock" PUT /actions '{"action_type": "InstanceStart"}')" = 400
check "... naming the kernel's size" fault_has "200 GiB"
check "the VMM lives on and answers" alive a
check "... still Not started" grep -q '"state":"Not started"' "$tmp/out"

# ---- FIFOs ----
check "PUT /logger to a FIFO nobody reads: 400" \
  test "$(api_t "$tmp/a.sock" PUT /logger "{\"log_path\": \"$tmp/fifo\"}")" = 400
check "... saying so" fault_has "nobody reads"
check "PUT /metrics to a FIFO nobody reads: 400" \
  test "$(api_t "$tmp/a.sock" PUT /metrics "{\"metrics_path\": \"$tmp/fifo\"}")" = 400
check "PUT /boot-source naming a FIFO: 400" \
  test "$(api_t "$tmp/a.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/fifo\"}")" = 400
check "... saying FIFO" fault_has "FIFO"
check "snapshot/load of a FIFO state file: 400" \
  test "$(api_t "$tmp/a.sock" PUT /snapshot/load "$(load_body "$tmp/fifo" "$tmp/fifo")")" = 400
check "... saying FIFO" fault_has "FIFO"
check "the VMM still answers" alive a
mkfifo "$tmp/mfifo"
exec 7<>"$tmp/mfifo"  # a reader that never reads
check "PUT /metrics to a FIFO with a reader: 204" \
  test "$(api_t "$tmp/a.sock" PUT /metrics "{\"metrics_path\": \"$tmp/mfifo\"}")" = 204
flushed=0
for _ in $(seq 1 300); do  # far more than a 64 KiB pipe holds
  [ "$(api_t "$tmp/a.sock" PUT /actions '{"action_type": "FlushMetrics"}')" = 204 ] && flushed=$((flushed + 1))
done
check "300 FlushMetrics into the full pipe all answer 204" test "$flushed" -eq 300
check "... and the pipe got metrics" grep -q '"reason":"flush"' <(timeout 2 head -c 2000 <&7)
exec 7<&-
kill9 a
timeout 20 "$vireo" --no-api --config-file "$tmp/fifo" > "$tmp/c1.log" 2>&1
rc=$?
check "--config-file naming a FIFO: fails at once (not a hang)" test $rc -ne 0 -a $rc -ne 124
check "... saying FIFO" grep -q FIFO "$tmp/c1.log"
echo "{\"boot-source\": {\"kernel_image_path\": \"$tmp/fifo\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}" > "$tmp/fifo-kernel.json"
timeout 20 "$vireo" --no-api --config-file "$tmp/fifo-kernel.json" > "$tmp/c2.log" 2>&1
rc=$?
check "a configured kernel that is a FIFO: fails at once" test $rc -ne 0 -a $rc -ne 124
timeout 20 "$vireo" --api-sock "$tmp/c3.sock" --log-path "$tmp/fifo" > "$tmp/c3.log" 2>&1
rc=$?
check "--log-path naming a FIFO nobody reads: exit 2" test $rc -eq 2
check "... saying so" grep -q "nobody reads" "$tmp/c3.log"

# ---- a snapshot to work with: the counter guest with a drive ----
truncate -s 1M "$tmp/disk.img"
check "the counting guest boots" start b
api_t "$tmp/b.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/counter.elf\"}" > /dev/null
api_t "$tmp/b.sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}' > /dev/null
api_t "$tmp/b.sock" PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$tmp/disk.img\", \"is_root_device\": false, \"is_read_only\": true}" > /dev/null
check "InstanceStart: 204" test "$(api_t "$tmp/b.sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204
check "it counts" wait_chars "$tmp/b.log" 50
check "pause: 204" test "$(api_t "$tmp/b.sock" PATCH /vm '{"state": "Paused"}')" = 204
echo precious > "$tmp/victim"
ln -s "$tmp/victim" "$tmp/s.state.tmp"
check "snapshot/create with a symlink planted at the state's .tmp: 400" test "$(api_t "$tmp/b.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/s.state\", \"mem_file_path\": \"$tmp/s.mem\"}")" = 400
check "... naming the symlink" fault_has "symbolic link"
check "... the victim is unchanged" test "$(cat "$tmp/victim")" = precious
rm -f "$tmp/s.state.tmp"
ln -s "$tmp/victim" "$tmp/s.mem.tmp"
check "the same at the memory file's .tmp: 400" test "$(api_t "$tmp/b.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/s.state\", \"mem_file_path\": \"$tmp/s.mem\"}")" = 400
check "... the victim is unchanged" test "$(cat "$tmp/victim")" = precious
rm -f "$tmp/s.mem.tmp"
check "without the symlinks: 204" test "$(api_t "$tmp/b.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/s.state\", \"mem_file_path\": \"$tmp/s.mem\"}")" = 204
sleep 0.3
before=$(console "$tmp/b.log")
kill9 b

# ---- a memory file others may truncate is copied at load ----
cp --sparse=always "$tmp/s.mem" "$tmp/shared.mem"
chmod 666 "$tmp/shared.mem"
check "restore process starts" start c
check "snapshot/load of a FIFO memory file: 400" \
  test "$(api_t "$tmp/c.sock" PUT /snapshot/load "$(load_body "$tmp/s.state" "$tmp/fifo")")" = 400
check "... saying FIFO" fault_has "FIFO"
check "snapshot/load (paused) of a world-writable memory file: 204" \
  test "$(api_t "$tmp/c.sock" PUT /snapshot/load "$(load_body "$tmp/s.state" "$tmp/shared.mem")")" = 204
check "... the log says it was copied, and why" grep -q "copying the memory file.*writable by its others" "$tmp/c.vlog"
truncate -s 0 "$tmp/shared.mem"
check "resume after the file was truncated: 204" test "$(api_t "$tmp/c.sock" PATCH /vm '{"state": "Resumed"}')" = 204
check "the guest counts on (no SIGBUS)" wait_chars "$tmp/c.log" 50
check "... and the VMM answers" alive c
kill9 c

# ---- a state file naming a block device as a drive ----
truncate -s 1M "$tmp/loop.img"
loopdev=$(losetup -f --show "$tmp/loop.img" 2>/dev/null)
if [ -n "$loopdev" ]; then
  mv "$tmp/disk.img" "$tmp/disk.img.orig"
  ln -s "$loopdev" "$tmp/disk.img"
  check "restore process starts" start d
  check "snapshot/load whose drive is now a block device: 400" \
    test "$(api_t "$tmp/d.sock" PUT /snapshot/load "$(load_body "$tmp/s.state" "$tmp/s.mem")")" = 400
  check "... naming the drive and the rule" fault_has "drive data: the state file names .*block device"
  check "... with allow_block_devices: 204" test "$(api_t "$tmp/d.sock" PUT /snapshot/load \
    "$(load_body "$tmp/s.state" "$tmp/s.mem" ', "allow_block_devices": true')")" = 204
  kill9 d
  check "restore process starts" start e
  check "... or with the drive named in drive_overrides: 204" test "$(api_t "$tmp/e.sock" PUT /snapshot/load \
    "$(load_body "$tmp/s.state" "$tmp/s.mem" ", \"drive_overrides\": [{\"drive_id\": \"data\", \"path_on_host\": \"$loopdev\"}]")")" = 204
  kill9 e
else
  echo "skip: no loop device (losetup failed): the block-device checks did not run"
fi

# ---- the file console ----
ln -s "$tmp/victim" "$tmp/con.link"
timeout 20 "$vireo" run --kernel "$tmp/counter.elf" --memory 64M --cpus 1 \
  --console "file:$tmp/con.link" > "$tmp/r1.log" 2>&1
rc=$?
check "--console file: naming a symlink: exit 2" test $rc -eq 2
check "... saying so" grep -q "symbolic link" "$tmp/r1.log"
check "... the victim is unchanged" test "$(cat "$tmp/victim")" = precious
"$vireo" run --kernel "$tmp/counter.elf" --memory 64M --cpus 1 --console "file:$tmp/con.out" \
  --console-max-size 4K > "$tmp/r2.log" 2>&1 &
rpid=$!
full=1
for _ in $(seq 1 200); do
  [ "$(stat -c %s "$tmp/con.out" 2>/dev/null || echo 0)" -ge 4096 ] && { full=0; break; }
  sleep 0.1
done
check "the guest fills the console file to its cap" test $full -eq 0
sleep 1  # the guest prints on: all dropped
kill -TERM $rpid
wait $rpid
check "the console file stays at 4096 bytes" test "$(stat -c %s "$tmp/con.out")" -eq 4096
check "vireo reports the dropped bytes" grep -q "bytes of guest output dropped" "$tmp/r2.log"
summary
