#!/usr/bin/env bash
# cli.seccomp: the seccomp flags (issue 11 §2). Everywhere: a malformed or wrong --seccomp-filter
# is refused with exit status 2 and a message naming the problem (JSON, unknown syscall, op,
# category), for `vireo run`, Firecracker's flags and `vireo snapshot load`; --no-seccomp and
# --seccomp-filter together are refused. With /dev/kvm (a counting probe guest through the API):
# every thread of the running VMM shows "Seccomp: 2"; a filter whose vcpu category leaves out
# ioctl ends vireo with status 148 and a report naming the vcpu thread, ioctl and KVM_RUN, in
# the log file and the metrics too; --no-seccomp runs every thread unfiltered ("Seccomp: 0").
# Linux guests with every device kind: tests/nested/scenarios/seccomp.sh.
# Usage: seccomp.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: seccomp.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-seccomp.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"

has() { grep -q -- "$2" "$1" || { echo "  output: $(cat "$1")"; return 1; }; }

# refused NAME JSON PATTERN: the filter JSON is refused by all three fronts with exit 2 and a
# message matching PATTERN.
refused() {
  printf '%s' "$2" > "$tmp/$1.json"
  "$vireo" run --kernel /dev/null --seccomp-filter "$tmp/$1.json" > "$tmp/$1.run" 2>&1
  local rc_run=$?
  "$vireo" --api-sock "$tmp/$1.sock" --seccomp-filter "$tmp/$1.json" > "$tmp/$1.api" 2>&1
  local rc_api=$?
  "$vireo" snapshot load --snapshot-path /dev/null --mem-file-path /dev/null \
    --seccomp-filter "$tmp/$1.json" > "$tmp/$1.load" 2>&1
  local rc_load=$?
  check "$1: vireo run exits 2" test $rc_run -eq 2
  check "$1: vireo run says so" has "$tmp/$1.run" "$3"
  check "$1: vireo --api-sock exits 2" test $rc_api -eq 2
  check "$1: vireo --api-sock says so" has "$tmp/$1.api" "$3"
  check "$1: vireo snapshot load exits 2" test $rc_load -eq 2
  check "$1: vireo snapshot load says so" has "$tmp/$1.load" "$3"
  check "$1: no socket left behind" test ! -e "$tmp/$1.sock"
}

filter() {  # filter CATEGORY RULES: a one-category filter file's JSON
  echo "{\"$1\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", \"filter\": [$2]}}"
}

refused bad-json '{"vcpu": {' "seccomp filter $tmp/bad-json.json: not valid JSON"
refused bad-syscall "$(filter vcpu '{"syscall": "iocl"}')" \
  "vcpu.filter\[0\]: unknown system call 'iocl'"
refused bad-op "$(filter vcpu '{"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "equal", "val": 44672}]}')" \
  'vcpu.filter\[0\] (ioctl).args\[0\].op: bad op "equal"'
refused bad-category "$(filter vcpus '{"syscall": "read"}')" \
  "unknown thread category 'vcpus' (expected vmm, api, vcpu,"
refused bad-action '{"api": {"default_action": "deny", "filter_action": "allow", "filter": []}}' \
  'api.default_action: bad action "deny"'
refused missing-file '' "seccomp filter $tmp/missing-file.json: "
rm -f "$tmp/missing-file.json"
"$vireo" run --seccomp-filter "$tmp/nothing.json" > "$tmp/nofile.log" 2>&1
check "a missing filter file: exit 2" test $? -eq 2
check "... naming it" has "$tmp/nofile.log" "seccomp filter $tmp/nothing.json: "
"$vireo" --api-sock "$tmp/x.sock" --no-seccomp --seccomp-filter "$tmp/bad-op.json" > "$tmp/both.log" 2>&1
check "--no-seccomp with --seccomp-filter: exit 2" test $? -eq 2
check "... saying they exclude each other" has "$tmp/both.log" "excludes"

# The running-VM checks need a usable /dev/kvm: tests/lib/with-kvm runs this script where there
# is one (this machine, or the nested test host).
probe_kernel --counter "$tmp/counter.elf"
# boot NAME [VIREO_ARGS...]: the counting guest through the API; waits until it counts.
boot() {
  local name=$1
  shift
  "$vireo" --api-sock "$tmp/$name.sock" --log-path "$tmp/$name.vlog" \
    --metrics-path "$tmp/$name.metrics" "$@" > "$tmp/$name.log" 2>&1 &
  echo $! > "$tmp/$name.pid"
  wait_socket "$tmp/$name.sock" &&
    [ "$(api "$tmp/$name.sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/counter.elf\"}")" = 204 ] &&
    [ "$(api "$tmp/$name.sock" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 64}')" = 204 ] &&
    [ "$(api "$tmp/$name.sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204 ]
}
# counting NAME: the guest's console shows it counting (its vCPU runs), within 20 s.
counting() {
  for _ in $(seq 1 400); do
    [ "$(tr -cd 'a-z' < "$tmp/$1.log" | wc -c)" -ge 10 ] && return 0
    sleep 0.05
  done
  return 1
}
# modes PID: the Seccomp field of each thread, one per line.
modes() { for t in /proc/"$1"/task/*; do sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status"; done; }
all_mode() {  # all_mode PID MODE MIN: at least MIN threads, all in MODE
  modes "$1" > "$tmp/modes"
  [ "$(wc -l < "$tmp/modes")" -ge "$3" ] && ! grep -qv "^$2\$" "$tmp/modes" ||
    { echo "  modes: $(tr '\n' ' ' < "$tmp/modes")"; return 1; }
}
# ended NAME STATUS: the process ended with STATUS (SIGTERM sent first when STATUS is 0) within
# 20 s; one that does not is killed and the check fails (a hang never reaches ctest's timeout).
ended() {
  local pid
  pid=$(cat "$tmp/$1.pid")
  [ "$2" -eq 0 ] && kill -TERM "$pid"
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    wait "$pid"
    echo "  still running 20 s later: killed; $(tail -5 "$tmp/$1.log")"
    return 1
  fi
  wait "$pid"
  local rc=$?
  [ $rc -eq "$2" ] || { echo "  exit status $rc; $(tail -5 "$tmp/$1.log")"; return 1; }
}

check "filtered: the counting guest runs" boot on
check "filtered: it counts" counting on
check "filtered: main, launcher, signal, api, machine, 2 vCPUs all show Seccomp: 2" \
  all_mode "$(cat "$tmp/on.pid")" 2 7
check "filtered: pause" test "$(api "$tmp/on.sock" PATCH /vm '{"state": "Paused"}')" = 204
check "filtered: snapshot/create" test "$(api "$tmp/on.sock" PUT /snapshot/create \
  "{\"snapshot_path\": \"$tmp/on.state\", \"mem_file_path\": \"$tmp/on.mem\"}")" = 204
check "filtered: resume" test "$(api "$tmp/on.sock" PATCH /vm '{"state": "Resumed"}')" = 204
check "filtered: FlushMetrics" test "$(api "$tmp/on.sock" PUT /actions '{"action_type": "FlushMetrics"}')" = 204
check "filtered: the metrics have seccomp.num_faults 0" has "$tmp/on.metrics" '"seccomp":{"num_faults":0}'
check "filtered: SIGTERM ends it with 0" ended on 0

cat > "$tmp/no-ioctl.json" <<'JSON'
{"vcpu": {"default_action": "trap", "filter_action": "allow", "filter": [
  {"syscall": "futex"}, {"syscall": "write"}, {"syscall": "read"}, {"syscall": "clock_gettime"},
  {"syscall": "gettid"}, {"syscall": "mmap"}, {"syscall": "munmap"}, {"syscall": "madvise"},
  {"syscall": "brk"}, {"syscall": "rt_sigprocmask"}, {"syscall": "rt_sigreturn"},
  {"syscall": "exit"}, {"syscall": "exit_group"}]}}
JSON
boot bad --seccomp-filter "$tmp/no-ioctl.json"
check "a vcpu filter without ioctl: exit 148" ended bad 148
check "... reported on stderr: the vcpu thread, ioctl, KVM_RUN" has "$tmp/bad.log" \
  'seccomp: the vcpu thread made a forbidden system call: 16 (ioctl) with arguments 0x[0-9a-f]*, 0xae80,'
check "... and in the log file" has "$tmp/bad.vlog" 'the vcpu thread made a forbidden system call: 16 (ioctl)'
check "... and the metrics count it" has "$tmp/bad.metrics" '"seccomp":{"num_faults":1}'

check "--no-seccomp: the counting guest runs" boot off --no-seccomp
check "--no-seccomp: it counts" counting off
check "--no-seccomp: every thread shows Seccomp: 0" all_mode "$(cat "$tmp/off.pid")" 0 6
check "--no-seccomp: SIGTERM ends it with 0" ended off 0
summary
