# A scenario that never ends: tests/nested/run must kill it at --timeout.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
step "hang on purpose"
while :; do sleep 60; done
