#!/usr/bin/env bash
# cli.console: a stdout nobody reads never stalls the VMM. A probe guest writes to COM1 as fast as
# it can while vireo's stdout is a FIFO held open but never read (a stalled terminal, a pipe nobody
# drains). The API still answers, the VM pauses and resumes, SIGTERM ends vireo at once, and the
# dropped bytes are counted (metrics, and a line on stderr at exit). Before guest output was
# buffered the vCPU blocked in write(2) inside its I/O exit: pause timed out and SIGTERM hung.
# Usage: console.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: console.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-console.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; exec 3>&-; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"

probe_kernel --flood "$tmp/flood.elf"
sock=$tmp/api.sock
mkfifo "$tmp/stdout"
exec 3<>"$tmp/stdout"  # a reader that never reads: once the pipe is full, it stays full

# Bytes waiting unread in the FIFO.
unread() {
  python3 -c 'import array, fcntl, termios
b = array.array("i", [0]); fcntl.ioctl(3, termios.FIONREAD, b); print(b[0])'
}
# pipe_full: the FIFO holds its whole capacity (F_GETPIPE_SZ) unread, at most 120 s.
pipe_size=$(python3 -c 'import fcntl; print(fcntl.fcntl(3, 1032))')  # F_GETPIPE_SZ
pipe_full() {
  for _ in $(seq 1 1200); do [ "$(unread)" -ge "$pipe_size" ] && return 0; sleep 0.1; done
  return 1
}
# metric NAME: the last value of "NAME":N in the metrics file.
metric() { grep -o "\"$1\":[0-9]*" "$tmp/metrics.json" | tail -1 | cut -d: -f2; }
# gone_within SECONDS: the vireo process has exited.
gone_within() {
  for _ in $(seq 1 $(($1 * 10))); do kill -0 $pid 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

"$vireo" --api-sock "$sock" --metrics-path "$tmp/metrics.json" > "$tmp/stdout" 2> "$tmp/stderr" &
pid=$!
check "the API socket appears" wait_socket "$sock"
check "PUT /boot-source 204" test "$(api "$sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/flood.elf\"}")" = 204
check "PUT /machine-config 204" test "$(api "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}')" = 204
check "InstanceStart 204" test "$(api "$sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204
check "the guest's output fills the pipe (${pipe_size} bytes unread)" pipe_full
# The guest keeps writing: wait until vireo's own buffer is full too and bytes are dropped.
dropped_some() {
  for _ in $(seq 1 600); do
    api "$sock" PUT /actions '{"action_type": "FlushMetrics"}' > /dev/null
    [ "$(metric dropped_bytes)" -gt 0 ] 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
check "output beyond the buffer is dropped and counted (metrics)" dropped_some
check "GET / still answers" test "$(api "$sock" GET /)" = 200
check "the VM pauses (PATCH /vm Paused 204)" test "$(api "$sock" PATCH /vm '{"state": "Paused"}')" = 204
check "... and resumes" test "$(api "$sock" PATCH /vm '{"state": "Resumed"}')" = 204
kill -TERM $pid
check "SIGTERM ends vireo within 10 s" gone_within 10
wait $pid
rc=$?
check "... with exit status 0" test $rc -eq 0
check "the dropped bytes are reported at exit" grep -q "bytes of guest output dropped" "$tmp/stderr"
pid=
summary
