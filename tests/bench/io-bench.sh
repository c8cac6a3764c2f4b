# bench/io (runs inside the nested test host): virtio-blk and virtio-net throughput of vireo
# against QEMU (-M q35, virtio-blk-pci with cache=none and aio=io_uring, else native, else threads;
# virtio-net-pci on a tap with QEMU's default vhost=off), alternating in one run: same guest kernel
# and initramfs, 2 vCPUs, 512 MiB, the same raw image on an ext4 RAM disk (O_DIRECT-capable) and
# the same tap. Measured in the guest with vireo-iotool (tests/guest/iotool.c; O_DIRECT, Linux AIO):
# vireo opens the image with direct=on (O_DIRECT), as QEMU does with cache=none.
#   seq read / seq write: 256 MiB in 1 MiB blocks at queue depth 1 (what dd iflag/oflag=direct does)
#   rand read: 4 KiB random reads over the whole disk for 5 s, queue depth 1 and 32 (IOPS)
#   TCP guest->host and host->guest: 256 MiB (vireo-iotool on both ends), MB/s at the guest
# Prints the median of the successful runs for each VMM and the ratio vireo / QEMU (higher is
# better for every row; the target is >= 1.0). A VMM that fails a run is reported, not fatal.
# Usage: io-bench.sh [RUNS]   (default 5)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
runs=${1:-5}
kernel=$GUEST/cloud/vmlinuz
mac=52:54:00:76:69:10
disk_mib=512
cmdline="console=ttyS0 panic=-1 quiet"
cpus=2
mem_mib=512

step "scratch file system and a ${disk_mib} MiB raw image"
scratch_fs 768
disk=$SCRATCH/io-bench.raw
# Written for real (not sparse), so both VMMs read data, not holes.
dd if=/dev/zero of="$disk" bs=1M count=$disk_mib conv=fsync 2>/dev/null || fail "cannot write $disk"

step "tap vtap0 with 169.254.100.1/24"
tap_up vtap0 169.254.100.1/24

step "QEMU's asynchronous I/O mode for cache=none"
qemu_aio=
for aio in io_uring native threads; do
  if echo quit | timeout 30 qemu-system-x86_64 -M none -accel kvm -nodefaults -display none -monitor stdio \
      -drive "file=$disk,if=none,id=d0,format=raw,cache=none,aio=$aio" > /tmp/aio-probe.log 2>&1; then
    qemu_aio=$aio
    break
  fi
  echo "QEMU refuses aio=$aio: $(grep -o "qemu-system-x86_64: .*" /tmp/aio-probe.log | head -1)"
done
[ -n "$qemu_aio" ] || fail "QEMU accepts none of aio=io_uring|native|threads with cache=none on $disk"
echo "QEMU drive: cache=none,aio=$qemu_aio; NIC: virtio-net-pci on tap vtap0 (vhost=off)"

cat > /tmp/io-guest.sh <<SCEN
MAC=$mac
SCEN
cat >> /tmp/io-guest.sh <<'SCEN'
. /lib/vireo-guest.sh
gstep "devices"
wait_path /dev/vda 10
for _ in $(seq 1 100); do eth=$(iface_by_mac "$MAC") && break; sleep 0.1; done
[ -n "$eth" ] || gfail "no NIC with MAC $MAC"
ip link set "$eth" up && ip addr add 169.254.100.2/24 dev "$eth" || gfail "cannot configure $eth"
ok=0
for _ in $(seq 1 15); do ping -c 1 -W 2 169.254.100.1 > /dev/null 2>&1 && { ok=1; break; }; done
[ $ok -eq 1 ] || gfail "the host does not answer pings"
gbench seq-write vireo-iotool seqwrite /dev/vda -b 1M -q 1 -s 256M
gbench seq-read vireo-iotool seqread /dev/vda -b 1M -q 1 -s 256M
gbench rand-read-qd1 vireo-iotool randread /dev/vda -b 4k -q 1 -t 5
gbench rand-read-qd32 vireo-iotool randread /dev/vda -b 4k -q 32 -t 5
gbench tcp-guest-to-host vireo-iotool tcp-send 169.254.100.1 5201 256M
gbench tcp-host-to-guest vireo-iotool tcp-fetch 169.254.100.1 5202
SCEN
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/io-guest.sh /tmp/io.cpio.gz || fail "add-scenario failed"

# one VMM RUN: one boot of the guest's measurements under VMM; results to /tmp/io-results.
one() {
  _vmm=$1 _run=$2
  _log=/tmp/io-$_vmm-$_run.log
  case $_vmm in
    vireo)
      set -- vireo run --kernel "$kernel" --initrd /tmp/io.cpio.gz --cmdline "$cmdline" \
        --cpus $cpus --memory ${mem_mib}M --disk "path=$disk,direct=on" --net "tap=vtap0,mac=$mac"
      ;;
    qemu)
      set -- qemu-system-x86_64 -M q35 -accel kvm -cpu host -nodefaults -no-user-config \
        -display none -serial stdio -no-reboot -smp $cpus -m $mem_mib \
        -kernel "$kernel" -initrd /tmp/io.cpio.gz -append "$cmdline" \
        -drive "file=$disk,if=none,id=d0,format=raw,cache=none,aio=$qemu_aio" \
        -device virtio-blk-pci,drive=d0 \
        -netdev tap,id=n0,ifname=vtap0,script=no,downscript=no \
        -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=" -device virtio-rng-pci
      ;;
  esac
  # The host ends of the TCP measurements, one connection each.
  timeout 600 vireo-iotool tcp-sink 5201 > /tmp/io-sink.log 2>&1 &
  _sink=$!
  timeout 600 vireo-iotool tcp-serve 5202 256M > /tmp/io-serve.log 2>&1 &
  _serve=$!
  _rc=0
  run_timed 600 "$_log" "$@" > /dev/null || _rc=$?
  kill $_sink $_serve 2>/dev/null
  wait $_sink $_serve 2>/dev/null
  if [ $_rc -ne 0 ] || tr -d '\r' < "$_log" | grep -q '^GUEST-FAIL' ||
     ! tr -d '\r' < "$_log" | grep -qE '^VIREO-SCENARIO-EXIT 0([^0-9]|$)'; then
    echo "run $_run $_vmm: FAILED (exit status $_rc); the end of its console:"
    tr -d '\r' < "$_log" | grep -v '^$' | tail -8 | sed 's/^/    /'
    return 1
  fi
  tr -d '\r' < "$_log" | sed -n 's/^BENCH \([^ ]*\) RESULT [^ ]* \(.*\)$/\1 \2/p' |
    while read -r label rest; do
      echo "$_vmm $label $rest" >> /tmp/io-results
    done
  echo "run $_run $_vmm: $(tr -d '\r' < "$_log" | sed -n \
    -e 's/^BENCH \(rand[^ ]*\) RESULT .* iops=\([0-9]*\)$/\1 \2 IOPS,/p' \
    -e 's/^BENCH \([^ ]*\) RESULT .* mbps=\([0-9.]*\) .*$/\1 \2 MB\/s,/p' | tr '\n' ' ')"
}

step "measurements: $runs runs, alternating vireo / QEMU"
: > /tmp/io-results
for i in $(seq 1 "$runs"); do
  for vmm in vireo qemu; do
    one $vmm "$i"
  done
done

# median_of VMM LABEL FIELD
median_of() {
  grep "^$1 $2 " /tmp/io-results | sed -n "s/.* $3=\([0-9.]*\).*/\1/p" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "== bench/io results (median of successful runs; $cpus vCPUs, $mem_mib MiB, nested kvm-amd;"
echo "   QEMU: q35, virtio-blk-pci cache=none,aio=$qemu_aio, virtio-net-pci tap vhost=off)"
printf '%-20s %5s %10s %10s %7s\n' measurement unit vireo QEMU ratio
for row in seq-read:mbps:MB/s seq-write:mbps:MB/s rand-read-qd1:iops:IOPS rand-read-qd32:iops:IOPS \
           tcp-guest-to-host:mbps:MB/s tcp-host-to-guest:mbps:MB/s; do
  label=${row%%:*} rest=${row#*:}
  field=${rest%%:*} unit=${rest#*:}
  v=$(median_of vireo "$label" "$field")
  q=$(median_of qemu "$label" "$field")
  ratio=n/a
  [ "$v" != n/a ] && [ "$q" != n/a ] && ratio=$(awk -v v="$v" -v q="$q" 'BEGIN { if (q > 0) printf "%.2f", v / q; else print "n/a" }')
  printf '%-20s %5s %10s %10s %7s\n' "$label" "$unit" "$v" "$q" "$ratio"
done
echo "ratio = vireo / QEMU; higher is better for every row, target >= 1.00"
nq=$(grep -c '^qemu seq-read ' /tmp/io-results)
nv=$(grep -c '^vireo seq-read ' /tmp/io-results)
echo "successful runs: vireo $nv/$runs, QEMU $nq/$runs"
[ "$nv" -gt 0 ] || echo "vireo: no successful run (see the FAILED runs above)"
[ "$nq" -gt 0 ] || fail "QEMU: no successful run: the benchmark itself is broken"
$IP link del vtap0 2>/dev/null
exit 0
