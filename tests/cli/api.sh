#!/usr/bin/env bash
# cli.api: the API's process-level contract on this machine's /dev/kvm, with a probe "kernel"
# (tests/lib/make-probe-kernel) that powers off after four instructions: the socket is 0600 and
# removed on exit; a stale socket file is replaced and a live one refused; GET / before and the
# process's exit status after InstanceStart; an 8 KB Range header does not kill it; --config-file
# --no-api; --no-api without a file.
# Usage: api.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: api.sh BUILD_DIR}
vireo=$build/vireo
tmp=$(mktemp -d /tmp/vireo-api.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"

probe_kernel "$tmp/probe.elf"
sock=$tmp/api.sock

# Start, check the socket, configure, start the instance: the probe guest powers off at once.
"$vireo" --api-sock "$sock" --id cli-test > "$tmp/v1.log" 2>&1 &
pid=$!
check "the API socket appears" wait_socket "$sock"
check "the socket is mode 0600" test "$(stat -c %a "$sock")" = 600
check "GET / answers 200 'Not started'" test "$(api "$sock" GET /)" = 200
check "GET / names the instance" grep -q '"id":"cli-test".*"state":"Not started"' "$tmp/out"
# A second vireo on the same (live) socket is refused and leaves the first alone.
"$vireo" --api-sock "$sock" > "$tmp/v2.log" 2>&1
rc=$?
check "a live socket is refused (exit 1)" test $rc -eq 1
check "the refusal names the socket" grep -q "$sock" "$tmp/v2.log"
check "the first instance still answers" test "$(api "$sock" GET /)" = 200
check "PUT /boot-source 204" test "$(api "$sock" PUT /boot-source "{\"kernel_image_path\": \"$tmp/probe.elf\"}")" = 204
check "PUT /machine-config 204" test "$(api "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}')" = 204
check "InstanceStart 204" test "$(api "$sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204
wait $pid
rc=$?
check "the guest powered off: exit 0" test $rc -eq 0
check "the socket is removed" test ! -e "$sock"

# A stale socket file (nobody listening) is replaced.
stale_socket "$sock"
check "a stale socket file exists" test -S "$sock"
"$vireo" --api-sock "$sock" > "$tmp/v3.log" 2>&1 &
pid=$!
sleep 0.3
check "vireo starts over a stale socket" test "$(api "$sock" GET /version)" = 200
# A hostile client: an 8 KB Range header. cpp-httplib matched it with a recursive std::regex that
# overflowed the 1 MiB stack of an API worker and killed the VMM (SIGSEGV).
range="bytes=$(for _ in $(seq 1 2000); do printf '0-1,'; done)0-1"
curl -s -m 10 -o /dev/null -w 'HTTP/1.1 %{http_code}\n' --unix-socket "$sock" -H "Range: $range" \
  http://localhost/version > "$tmp/range.out"
check "an 8 KB Range header is answered 200 (Range ignored)" grep -q "^HTTP/1.1 200" "$tmp/range.out"
check "... and vireo lives on" kill -0 $pid
check "... and still answers" test "$(api "$sock" GET /version)" = 200
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM before boot: exit 0" test $rc -eq 0
check "the socket is removed after SIGTERM" test ! -e "$sock"

# --config-file --no-api boots the probe guest without any API call.
cat > "$tmp/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$tmp/probe.elf"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
JSON
timeout 30 "$vireo" --no-api --config-file "$tmp/vm.json" > "$tmp/v4.log" 2>&1
check "--config-file --no-api: exit 0" test $? -eq 0
timeout 30 "$vireo" --no-api > "$tmp/v5.log" 2>&1
rc=$?
check "--no-api without --config-file: exit 2" test $rc -eq 2
echo '{"boot-source": {"kernel_image_path": "'"$tmp"'/probe.elf"}, "vsock": {"guest_cid": 3}}' > "$tmp/bad.json"
timeout 30 "$vireo" --no-api --config-file "$tmp/bad.json" > "$tmp/v6.log" 2>&1
rc=$?
check "an unsupported config section: exit 2" test $rc -eq 2
check "... with a message naming it" grep -q vsock "$tmp/v6.log"
summary
