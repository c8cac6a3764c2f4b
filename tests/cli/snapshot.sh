#!/usr/bin/env bash
# cli.snapshot: snapshot and restore through the API and `vireo snapshot` on this machine's
# /dev/kvm, with a probe "kernel" that counts forever on COM1 ('a' + n % 26: "bcd...zab...";
# tests/lib/make-probe-kernel --counter). The console of the restored process must continue the
# cycle exactly where the snapshot stopped it: a restart, a lost register or a lost byte breaks it.
#   - create while running: 400; Full snapshot of a paused VM; the memory file is sparse
#   - kill -9, restore in a new process (resume_vm): the count continues
#   - broken input answers 400 naming the problem and the process stays usable: truncated state
#     file, flipped byte, other format version, memory file of another size, missing files,
#     load after configuring a boot source, an override naming nothing
#   - Diff: track_dirty_pages, Full, resume, Diff, `vireo snapshot merge`, restore: continues
#   - `vireo snapshot create` / `vireo snapshot load` (the CLI fronts), eager memory
# Usage: snapshot.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: snapshot.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-snap.XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"
fault_has() { grep -q -- "$1" "$tmp/out" || { echo "  answer: $(cat "$tmp/out")"; return 1; }; }
# start NAME [ARGS...]: a vireo with its API on $tmp/NAME.sock, console in $tmp/NAME.log.
start() {
  local name=$1
  shift
  rm -f "$tmp/$name.sock"
  "$vireo" --api-sock "$tmp/$name.sock" --log-path "$tmp/$name.vlog" "$@" > "$tmp/$name.log" 2>&1 &
  echo $! > "$tmp/$name.pid"
  wait_socket "$tmp/$name.sock"
}
kill9() { kill -9 "$(cat "$tmp/$1.pid")" 2>/dev/null; wait "$(cat "$tmp/$1.pid")" 2>/dev/null; }
boot() {  # boot NAME [MACHINE_CONFIG_EXTRA]
  start "$1" || return 1
  [ "$(api "$tmp/$1.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/counter.elf\"}")" = 204 ] &&
    [ "$(api "$tmp/$1.sock" PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": 64${2:-}}")" = 204 ] &&
    [ "$(api "$tmp/$1.sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204 ]
}
load_body() {  # load_body STATE MEM [EXTRA]
  echo "{\"snapshot_path\": \"$1\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$2\"}${3:-}}"
}

probe_kernel --counter "$tmp/counter.elf"

# ---- Full snapshot, kill -9, restore in a new process ----
check "the counting guest boots" boot a
check "it counts" wait_chars "$tmp/a.log" 100
check "snapshot/create while running: 400" test "$(api "$tmp/a.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/a.state\", \"mem_file_path\": \"$tmp/a.mem\"}")" = 400
check "... saying the VM must be paused" fault_has "paused"
check "pause: 204" test "$(api "$tmp/a.sock" PATCH /vm '{"state": "Paused"}')" = 204
check "snapshot/create: 204" test "$(api "$tmp/a.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/a.state\", \"mem_file_path\": \"$tmp/a.mem\"}")" = 204
check "the memory file is the RAM size" test "$(stat -c %s "$tmp/a.mem")" = $((64 << 20))
check "... and sparse (under 2 MiB on disk)" test "$(du -k "$tmp/a.mem" | cut -f1)" -lt 2048
check "the state file starts with the magic" test "$(head -c 8 "$tmp/a.state")" = VIREOSNP
sleep 0.3
before=$(console "$tmp/a.log")
kill9 a
check "restore process starts" start b
check "snapshot/load with resume_vm: 204" test "$(api "$tmp/b.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/a.mem" ', "resume_vm": true')")" = 204
check "GET / says Running" grep -q '"state":"Running"' <(api "$tmp/b.sock" GET / >/dev/null; cat "$tmp/out")
check "the restored guest counts" wait_chars "$tmp/b.log" 50
check "the count continues exactly where the snapshot stopped it" cyclic "$before$(console "$tmp/b.log")"
check "a second snapshot/load in the same process: 400" test "$(api "$tmp/b.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/a.mem")")" = 400
kill9 b

# ---- broken input: 400 naming the problem, nothing changes ----
check "restore process starts" start c
head -c 3000 "$tmp/a.state" > "$tmp/trunc.state"
check "a truncated state file: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/trunc.state" "$tmp/a.mem")")" = 400
check "... saying truncated" fault_has "truncated"
cp "$tmp/a.state" "$tmp/flip.state"
printf '\x5a' | dd of="$tmp/flip.state" bs=1 seek=5000 conv=notrunc status=none
check "a flipped byte: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/flip.state" "$tmp/a.mem")")" = 400
check "... saying corrupted (CRC)" fault_has "corrupted"
cp "$tmp/a.state" "$tmp/ver.state"
printf '\x63' | dd of="$tmp/ver.state" bs=1 seek=8 conv=notrunc status=none
check "another format version: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/ver.state" "$tmp/a.mem")")" = 400
check "... naming the version" fault_has "format version 99"
head -c $((32 << 20)) "$tmp/a.mem" > "$tmp/short.mem"
check "a memory file of another size: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/short.mem")")" = 400
check "... with both sizes" fault_has "33554432"
check "a missing state file: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/none.state" "$tmp/a.mem")")" = 400
check "... naming it" fault_has "none.state"
check "an override naming no interface: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/a.mem" ', "network_overrides": [{"iface_id": "eth9", "host_dev_name": "tapx"}]')")" = 400
check "... naming it" fault_has "eth9"
check "a snapshot that is not vireo's: 400" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/counter.elf" "$tmp/a.mem")")" = 400
check "... saying so" fault_has "not a vireo snapshot"
check "still Not started" grep -q '"state":"Not started"' <(api "$tmp/c.sock" GET / >/dev/null; cat "$tmp/out")
check "then the good files load (paused)" test "$(api "$tmp/c.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/a.mem")")" = 204
check "GET / says Paused" grep -q '"state":"Paused"' <(api "$tmp/c.sock" GET / >/dev/null; cat "$tmp/out")
sleep 0.5
check "nothing runs while paused" test "$(console "$tmp/c.log" | wc -c)" -eq 0
check "resume: 204" test "$(api "$tmp/c.sock" PATCH /vm '{"state": "Resumed"}')" = 204
check "it counts on" wait_chars "$tmp/c.log" 50
check "... from the snapshot" cyclic "$before$(console "$tmp/c.log")"
kill9 c
start d
api "$tmp/d.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/counter.elf\"}" > /dev/null
check "snapshot/load after configuring a boot source: 400" test "$(api "$tmp/d.sock" PUT /snapshot/load "$(load_body "$tmp/a.state" "$tmp/a.mem")")" = 400
kill9 d

# ---- Diff snapshots ----
check "a guest with dirty page tracking boots" boot e ', "track_dirty_pages": true'
check "it counts" wait_chars "$tmp/e.log" 50
check "pause: 204" test "$(api "$tmp/e.sock" PATCH /vm '{"state": "Paused"}')" = 204
check "Full snapshot: 204" test "$(api "$tmp/e.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/e-full.state\", \"mem_file_path\": \"$tmp/e-full.mem\"}")" = 204
check "resume: 204" test "$(api "$tmp/e.sock" PATCH /vm '{"state": "Resumed"}')" = 204
sleep 1
check "Diff snapshot through vireo snapshot create" \
  "$vireo" snapshot create --api-sock "$tmp/e.sock" --type Diff \
  --snapshot-path "$tmp/e-diff.state" --mem-file-path "$tmp/e-diff.mem"
sleep 0.3
diff_before=$(console "$tmp/e.log")
check "the Diff memory file holds only the dirtied pages (under 1 MiB)" \
  test "$(du -k "$tmp/e-diff.mem" | cut -f1)" -lt 1024
kill9 e
sparse_copy "$tmp/e-full.mem" "$tmp/merged.mem"
check "vireo snapshot merge" "$vireo" snapshot merge "$tmp/merged.mem" "$tmp/e-diff.mem"
check "restore process starts" start f
check "snapshot/load of the Diff state + merged memory: 204" test "$(api "$tmp/f.sock" PUT /snapshot/load \
  "$(load_body "$tmp/e-diff.state" "$tmp/merged.mem" ', "resume_vm": true')")" = 204
check "it counts" wait_chars "$tmp/f.log" 50
check "... on from the Diff point" cyclic "$diff_before$(console "$tmp/f.log")"
kill9 f

# A Diff of a restored VM holds what changed since the restore; merged onto the memory file it
# was restored from, it restores the later state.
check "restore with dirty page tracking" start k
check "snapshot/load track_dirty_pages: 204" test "$(api "$tmp/k.sock" PUT /snapshot/load \
  "$(load_body "$tmp/a.state" "$tmp/a.mem" ', "resume_vm": true, "track_dirty_pages": true')")" = 204
check "it counts" wait_chars "$tmp/k.log" 50
check "Diff of the restored VM" "$vireo" snapshot create --api-sock "$tmp/k.sock" --type Diff \
  --snapshot-path "$tmp/k-diff.state" --mem-file-path "$tmp/k-diff.mem"
sleep 0.3
k_before=$before$(console "$tmp/k.log")
check "... holds only what changed since the restore (under 1 MiB)" \
  test "$(du -k "$tmp/k-diff.mem" | cut -f1)" -lt 1024
kill9 k
sparse_copy "$tmp/a.mem" "$tmp/k-merged.mem"
check "merge it onto the memory it was restored from" \
  "$vireo" snapshot merge "$tmp/k-merged.mem" "$tmp/k-diff.mem"
check "restore process starts" start l
check "snapshot/load of the merged result: 204" test "$(api "$tmp/l.sock" PUT /snapshot/load \
  "$(load_body "$tmp/k-diff.state" "$tmp/k-merged.mem" ', "resume_vm": true')")" = 204
check "it counts" wait_chars "$tmp/l.log" 50
check "... on from the restored VM's Diff point" cyclic "$k_before$(console "$tmp/l.log")"
kill9 l

# ---- vireo snapshot load (CLI), eager memory ----
"$vireo" snapshot load --snapshot-path "$tmp/a.state" --mem-file-path "$tmp/a.mem" --eager \
  --log-path "$tmp/g.vlog" > "$tmp/g.log" 2>&1 &
echo $! > "$tmp/g.pid"
check "vireo snapshot load --eager counts" wait_chars "$tmp/g.log" 50
check "... on from the snapshot" cyclic "$before$(console "$tmp/g.log")"
kill9 g
"$vireo" snapshot load --snapshot-path "$tmp/trunc.state" --mem-file-path "$tmp/a.mem" \
  > "$tmp/h.log" 2>&1
rc=$?
check "vireo snapshot load of a broken file: exit 1" test $rc -eq 1
check "... naming the problem" grep -q truncated "$tmp/h.log"
"$vireo" snapshot load --snapshot-path "$tmp/a.state" --mem-file-path "$tmp/a.mem" \
  --network-override broken > "$tmp/i.log" 2>&1
check "a malformed --network-override: exit 2" test $? -eq 2
"$vireo" snapshot merge "$tmp/short.mem" "$tmp/e-diff.mem" > "$tmp/j.log" 2>&1
check "merging a diff onto a base of another size fails" test $? -ne 0
summary
