# Proves the nested test host works: real kvm-amd is loaded, /dev/kvm answers, and vireo's probe
# guests (port I/O, MMIO, HLT, triple fault, CPL3 loop, stop/resume, dirty log) pass on it.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

step "kvm-amd is the KVM here"
if [ "$VIREO_NESTED_MODE" = nested ]; then
  grep -q '^kvm_amd ' /proc/modules || fail "kvm_amd is not loaded"
  grep -q -w svm /proc/cpuinfo || fail "the outer host's CPU has no svm flag"
  echo "kvm_amd loaded; npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
  # tests/nested/kvm_keeper.cpp (issue 13): one VM held open unless vireo.keeper=0.
  if grep -q 'vireo.keeper=0' /proc/cmdline; then
    echo "no vireo-kvm-keeper (vireo.keeper=0)"
  else
    pidof vireo-kvm-keeper > /dev/null || fail "vireo-kvm-keeper is not running in the outer host"
    echo "vireo-kvm-keeper holds a VM open"
  fi
fi
[ -c /dev/kvm ] || fail "/dev/kvm missing"

step "vireo-probe (real-mode port I/O + HLT, CPL3 loop)"
run_timed 120 /tmp/probe.log vireo-probe --user-loop 10000000 || fail "vireo-probe failed"
expect_line /tmp/probe.log '^Hello from a vireo probe guest'
expect_line /tmp/probe.log 'exits: 43 port writes, 1 halt'
expect_line /tmp/probe.log '^vireo-probe: OK$'

step "probe test suite on real KVM"
# Full output and a timeout inside the scenario's own: a hang then shows which test's "[ RUN ]"
# line was the last, instead of the outer host being killed with nothing printed.
run_timed 200 /tmp/probe-tests.log vireo_probe_tests || fail "probe tests failed on real KVM"
expect_line /tmp/probe-tests.log 'PASSED'
echo "nested kvm probe: OK"
