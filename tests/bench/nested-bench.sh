# Runs inside the nested test host: exit costs on real (nested) kvm-amd, and QEMU's boot time of the
# default guest to power-off, three runs each of q35 and microvm.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

step "vCPU exit costs on nested kvm-amd"
vireo_bench --benchmark_color=false || fail "vireo_bench failed"

# Milliseconds since boot (busybox date has no %N).
ms_now() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

step "QEMU boot of the default guest (cloud kernel) to power-off"
echo 'exit 0' > /tmp/empty.sh
add-scenario "$GUEST/cloud/initramfs.cpio.gz" /tmp/empty.sh /tmp/boot.cpio.gz
for machine in q35 microvm; do
  for i in 1 2 3; do
    start=$(ms_now)
    run_timed 240 /tmp/boot.log qemu-system-x86_64 -accel kvm -M $machine -smp 2 -m 256 \
      -display none -vga none -monitor none -serial stdio -nic none -no-reboot \
      -kernel "$GUEST/cloud/vmlinuz" -initrd /tmp/boot.cpio.gz \
      -append "console=ttyS0 panic=-1 quiet" > /dev/null || fail "QEMU $machine boot failed"
    end=$(ms_now)
    expect_line /tmp/boot.log '^VIREO-SCENARIO-EXIT 0$'
    echo "qemu -M $machine boot $i: $((end - start)) ms"
  done
done
