# A scenario that stops the outer host's heartbeat, as the host's known hang does, and then never
# ends: tests/nested/run must end it soon after, long before --timeout.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
step "stop the heartbeat on purpose"
kill "$(cat /run/heartbeat.pid)" || fail "no heartbeat process"
while :; do sleep 60; done
