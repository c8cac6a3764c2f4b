# bench/seccomp (runs inside the nested test host): the cost of confinement. vireo with its
# seccomp filters (the default) against the same vireo with --no-seccomp, alternating in one run:
#   boot: launch -> the guest's init marker (VIREO-GUEST-READY), 1 vCPU, 256 MiB, cloud kernel
#   rand read: virtio-blk 4 KiB random reads for 5 s at queue depth 1 and 32 (IOPS), O_DIRECT,
#              2 vCPUs, 512 MiB, measured in the guest with vireo-iotool
# Prints the medians and the ratio filtered / unfiltered (boot: lower is better, IOPS: higher is
# better; the target is a cost of at most 2%).
# Usage: seccomp-bench.sh [RUNS]   (default 5)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
runs=${1:-5}
kernel=$GUEST/cloud/vmlinuz
cmdline="console=ttyS0 panic=-1 quiet"

step "guest images and a 256 MiB raw image on a scratch file system"
echo 'exit 0' > /tmp/empty.sh
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/empty.sh /tmp/boot.cpio.gz || fail "add-scenario"
scratch_fs 512
disk=$SCRATCH/seccomp-bench.raw
dd if=/dev/zero of="$disk" bs=1M count=256 conv=fsync 2>/dev/null || fail "cannot write $disk"
cat > /tmp/io-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
wait_path /dev/vda 10
for q in 1 32; do
  out=$(timeout 120 vireo-iotool randread /dev/vda -b 4k -q $q -t 5 2>&1) || gfail "randread: $out"
  echo "BENCH rand-read-qd$q $out"
done
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/io-guest.sh /tmp/io.cpio.gz || fail "add-scenario"

# boot MODE: one boot's STAMP line (MODE: filtered | unfiltered)
boot() {
  local flag=
  [ "$1" = unfiltered ] && flag=--no-seccomp
  timeout -s KILL 60 vireo-stamp --marker VIREO-GUEST-READY --log /tmp/boot-last.log -- \
    vireo run $flag --kernel "$kernel" --initrd /tmp/boot.cpio.gz --cmdline "$cmdline" \
    --cpus 1 --memory 256M
}
# io MODE: the guest's random-read results, "qd1 IOPS qd32 IOPS"
io() {
  local flag=
  [ "$1" = unfiltered ] && flag=--no-seccomp
  run_timed 300 /tmp/io-last.log vireo run $flag --kernel "$kernel" --initrd /tmp/io.cpio.gz \
    --cmdline "$cmdline" --cpus 2 --memory 512M --disk "path=$disk,direct=on" > /dev/null ||
    return 1
  tr -d '\r' < /tmp/io-last.log | sed -n 's/^BENCH rand-read-qd\([0-9]*\) RESULT .* iops=\([0-9]*\)$/\1 \2/p' |
    tr '\n' ' '
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

step "$runs rounds, alternating filtered / --no-seccomp"
: > /tmp/seccomp-results
for i in $(seq 1 "$runs"); do
  for mode in filtered unfiltered; do
    line=$(boot $mode)
    ms=$(echo "$line" | sed -n 's/.*marker_ms=\([0-9]*\).*/\1/p')
    case "$line" in
      *"status=0"*) echo "$mode boot $ms" >> /tmp/seccomp-results ;;
      *) echo "  boot $mode failed: $line"; tail -5 /tmp/boot-last.log ;;
    esac
    r=$(io $mode) || { echo "  io $mode failed"; tail -5 /tmp/io-last.log; r=; }
    set -- $r
    [ $# -eq 4 ] && echo "$mode qd$1 $2" >> /tmp/seccomp-results && echo "$mode qd$3 $4" >> /tmp/seccomp-results
    echo "round $i $mode: boot ${ms:-?} ms, rand read ${r:-failed}"
  done
done

echo
echo "== bench/seccomp results (median of successful rounds; nested kvm-amd)"
printf '%-22s %8s %12s %8s %s\n' measurement filtered --no-seccomp ratio target
for row in boot:ms qd1:IOPS qd32:IOPS; do
  key=${row%%:*} unit=${row#*:}
  f=$(grep "^filtered $key " /tmp/seccomp-results | awk '{print $3}' | median)
  u=$(grep "^unfiltered $key " /tmp/seccomp-results | awk '{print $3}' | median)
  ratio=$(awk -v f="$f" -v u="$u" 'BEGIN { if (u > 0) printf "%.3f", f / u; else print "n/a" }')
  target="<= 1.02"
  [ "$unit" = IOPS ] && target=">= 0.98"
  printf '%-22s %8s %12s %8s %s\n' "$key ($unit)" "$f" "$u" "$ratio" "$target"
done
exit 0
