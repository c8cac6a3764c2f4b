# Runs inside the nested test host: vCPU exit costs on real (nested) kvm-amd.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

step "vCPU exit costs on nested kvm-amd"
vireo_bench --benchmark_color=false || fail "vireo_bench failed"
