# Helpers for nested scenarios (sourced; busybox sh compatible). Inside the outer host this file
# is /usr/local/lib/vireo-nested.sh; in direct mode tests/nested/run points VIREO_NESTED_LIB at it.

# step NAME: announce a step so a hang or failure says where it happened.
step() {
  VIREO_STEP=$1
  echo "== step: $1"
}

fail() {
  echo "FAIL${VIREO_STEP:+ [$VIREO_STEP]}: $*"
  exit 1
}

# run_timed SECONDS LOG CMD...: runs CMD with output to LOG (and the console). After SECONDS it
# gets SIGTERM (vireo then stops in order and, with --verbose, prints where each vCPU was), and
# SIGKILL 5 s later. Returns CMD's status, or 124 when it had to be stopped.
run_timed() {
  _secs=$1 _log=$2
  shift 2
  : > "$_log.timeout"
  "$@" > "$_log" 2>&1 &
  _pid=$!
  ( sleep "$_secs"; kill -0 $_pid 2>/dev/null || exit 0; echo yes > "$_log.timeout"
    kill -TERM $_pid 2>/dev/null; sleep 5; kill -KILL $_pid 2>/dev/null ) &
  _wd=$!
  wait $_pid
  _rc=$?
  kill $_wd 2>/dev/null
  wait $_wd 2>/dev/null
  cat "$_log"
  if [ -s "$_log.timeout" ]; then
    echo "TIMEOUT${VIREO_STEP:+ [$VIREO_STEP]}: '$*' still running after ${_secs}s, stopped"
    return 124
  fi
  return "$_rc"
}

# expect_line FILE PATTERN: FILE must contain a line matching the extended regex PATTERN.
expect_line() {
  tr -d '\r' < "$1" | grep -E -q "$2" || fail "expected a line matching '$2' in $1"
}

# vireo_boot NAME SECONDS SCENARIO [VIREO_ARGS...]: boots the default guest (cloud kernel) under
# vireo with SCENARIO appended as /scenario.sh; console output goes to /tmp/NAME.log and the
# screen. Returns vireo's exit status (124 if it had to be stopped). VIREO_CMDLINE overrides the
# kernel command line. --verbose makes vireo end with its exit counters and each vCPU's last RIP,
# which is what a hang report needs.
vireo_boot() {
  _name=$1 _secs=$2 _scen=$3
  shift 3
  add-scenario "$GUEST/cloud/initramfs.cpio.gz" "$_scen" "/tmp/$_name.cpio.gz" ||
    fail "add-scenario failed"
  run_timed "$_secs" "/tmp/$_name.log" vireo run --kernel "$GUEST/cloud/vmlinuz" \
    --initrd "/tmp/$_name.cpio.gz" \
    --cmdline "${VIREO_CMDLINE:-console=ttyS0 panic=-1 quiet}" --verbose "$@"
}
