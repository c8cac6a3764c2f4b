# bench/boot (runs inside the nested test host): launch -> init marker and launch -> VMM exit after
# the guest's power-off, for vireo and QEMU (-M microvm and -M q35), same kernel, initramfs and
# command line, 1 vCPU, 256 MiB, rotating through the three; medians, and vireo's ratio to the
# faster QEMU. Also vireo's RSS outside guest RAM once the guest is up.
# Usage: boot.sh [RUNS]   (default 5)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
runs=${1:-5}
kernel=$GUEST/cloud/vmlinuz
echo 'exit 0' > /tmp/empty.sh
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/empty.sh /tmp/boot.cpio.gz
cmdline="console=ttyS0 panic=-1 quiet"
mem_mib=256
qemu_common="-accel kvm -cpu host -nodefaults -no-user-config -display none -serial stdio -no-reboot -smp 1 -m $mem_mib -kernel $kernel -initrd /tmp/boot.cpio.gz"

one() {  # one VMM-NAME: prints the STAMP line for one boot
  case $1 in
    vireo) set -- vireo run --kernel "$kernel" --initrd /tmp/boot.cpio.gz --cmdline "$cmdline" --cpus 1 --memory ${mem_mib}M ;;
    qemu-microvm) set -- qemu-system-x86_64 -M microvm $qemu_common -append "$cmdline" ;;
    qemu-q35) set -- qemu-system-x86_64 -M q35 $qemu_common -append "$cmdline" ;;
  esac
  # A boot takes under 10 s here; 60 s means it hung (reported as a failed run, status 137).
  timeout -s KILL 60 vireo-stamp --marker VIREO-GUEST-READY \
    --exclude-mapping-size $((mem_mib * 1024 * 1024)) --log /tmp/boot-last.log -- "$@"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

step "boot timing, $runs runs each, rotating vireo / qemu-microvm / qemu-q35"
: > /tmp/stamps
for i in $(seq 1 "$runs"); do
  for vmm in vireo qemu-microvm qemu-q35; do
    line=$(one $vmm)
    echo "run $i $vmm: $line"
    case "$line" in
      *"status=0"*) echo "$vmm $line" >> /tmp/stamps ;;
      *) echo "  $vmm failed; its console:"; tail -5 /tmp/boot-last.log ;;
    esac
  done
done

field() { sed -n "s/.* $1=\([-0-9]*\).*/\1/p"; }
echo
echo "== bench/boot results (median of successful runs, ms; 1 vCPU, 256 MiB, nested kvm-amd)"
printf '%-14s %8s %10s %10s\n' VMM runs to-marker to-exit
for vmm in vireo qemu-microvm qemu-q35; do
  n=$(grep -c "^$vmm " /tmp/stamps)
  m=$(grep "^$vmm " /tmp/stamps | field marker_ms | median)
  e=$(grep "^$vmm " /tmp/stamps | field exit_ms | median)
  printf '%-14s %8s %10s %10s\n' "$vmm" "$n" "$m" "$e"
  eval "marker_$(echo $vmm | tr - _)=$m exit_$(echo $vmm | tr - _)=$e"
done
best_m=$(printf '%s\n%s\n' "$marker_qemu_microvm" "$marker_qemu_q35" | grep -v n/a | sort -n | head -1)
best_e=$(printf '%s\n%s\n' "$exit_qemu_microvm" "$exit_qemu_q35" | grep -v n/a | sort -n | head -1)
if [ -n "$best_m" ] && [ "$marker_vireo" != n/a ]; then
  awk -v v="$marker_vireo" -v q="$best_m" 'BEGIN { printf "ratio vireo / fastest QEMU, to marker: %.2f (target <= 0.70)\n", v / q }'
  awk -v v="$exit_vireo" -v q="$best_e" 'BEGIN { printf "ratio vireo / fastest QEMU, to exit:   %.2f\n", v / q }'
fi
ov=$(grep "^vireo " /tmp/stamps | field overhead_kib | median)
echo "vireo RSS outside guest RAM after boot (median): ${ov} KiB (target <= 5120 KiB)"
