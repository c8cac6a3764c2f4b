#!/usr/bin/env bash
# multiboot.sh BUILD_DIR: the multiboot test kernels (tests/multiboot) on KVM: the loader's
# information, the debug-exit verdicts, fw_cfg, and the platform kernel's SMP bring-up of 3 APs,
# LAPIC timer, PIT through IOAPIC pin 2 and RTC, with the lines the soft CPU and QEMU print
# (soft.multiboot compares those two side by side on the build host).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
exec bash "$here/../multiboot/run.sh" "$build/vireo" "$build/tests/multiboot" kvm
