# The nested half of tests/lib/with-kvm: runs a test from /payload on the host's real KVM.
#   with-kvm.sh script SCRIPT [ARGS...]   bash /payload/tests/cli/SCRIPT /payload/build ARGS
#   with-kvm.sh gtest BINARY [ARGS...]    /payload/build/BINARY ARGS
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
[ -c /dev/kvm ] || fail "/dev/kvm missing in the nested host"
[ -f /payload/env ] && . /payload/env
export VIREO_PROBE_KERNELS=/payload/probe-kernels
# bash's process substitution needs /dev/fd, which the host's minimal /dev lacks.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
# The test's own time limit, inside the host: a test that hangs ends here with status 124 and its
# output, a failure like any other. Only a test host that stops making progress altogether (the
# open TCG + nested SVM hang, tests/nested/run) reaches the outer limit, which is retried once.
limit=${VIREO_WITH_KVM_LIMIT:-360}
limited() {
  local rc=0
  timeout -k 5 "$limit" "$@" || rc=$?
  case $rc in 124 | 137 | 143) echo "with-kvm: exit status $rc: the test may have been stopped after ${limit}s" >&2 ;; esac
  return $rc
}
mode=$1
shift
case $mode in
  script)
    name=$1
    shift
    step "tests/cli/$name on the nested host's KVM"
    cd /tmp && limited bash "/payload/tests/cli/$name" /payload/build "$@"
    ;;
  gtest)
    name=$1
    shift
    step "$name on the nested host's KVM"
    cd /tmp && limited "/payload/build/$name" "$@"
    ;;
  *) fail "with-kvm.sh: unknown mode '$mode'" ;;
esac
