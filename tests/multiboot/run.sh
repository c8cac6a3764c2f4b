#!/usr/bin/env bash
# run.sh VIREO KERNEL_DIR [ACCEL]: the multiboot test kernels (mb_info.S, mb_platform.S,
# mb_cpu.S) on vireo with --accel ACCEL (default soft) and, with soft, side by side under QEMU's
# -kernel with isa-debug-exit (TCG, on this machine: the kernels are small). Both must end with
# the kernel's verdict through port 0xf4 and print the same lines, except the memory sizes, which
# follow each VMM's memory map (the kernel itself checks that mem_upper and the map agree). With
# kvm (tests/cli/multiboot.sh, in the nested test host) vireo's lines are checked against the
# expected ones; the QEMU side ran on the build host (soft.multiboot).
set -euo pipefail
vireo=$1
dir=$2
accel=${3:-soft}
with_qemu=false
[ "$accel" = soft ] && with_qemu=true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
printf 'module-data-0123456789\n' > "$work/module"

# run_vireo NAME EXPECTED_STATUS KERNEL [ARGS...]
run_vireo() {
  local name=$1 want=$2 kernel=$3
  shift 3
  local status=0
  timeout 60 "$vireo" run --accel "$accel" --memory 64M --kernel "$kernel" "$@" \
    > "$work/$name.vireo" 2> "$work/$name.vireo.err" || status=$?
  if [ "$status" != "$want" ]; then
    fail "$name on vireo: exit status $status, expected $want"
    sed 's/^/  | /' "$work/$name.vireo" "$work/$name.vireo.err"
  else
    echo "ok: $name on vireo --accel $accel: exit status $status"
  fi
}
# run_qemu NAME EXPECTED_STATUS KERNEL [ARGS...]
run_qemu() {
  local name=$1 want=$2 kernel=$3
  shift 3
  $with_qemu || return 0
  local status=0
  timeout 120 qemu-system-x86_64 -machine pc -accel tcg -m 64 -nodefaults -display none \
    -monitor none -serial "file:$work/$name.qemu.raw" \
    -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$kernel" "$@" \
    > /dev/null 2> "$work/$name.qemu.err" || status=$?
  tr -d '\r' < "$work/$name.qemu.raw" | grep '^mb: ' > "$work/$name.qemu" || true
  if [ "$status" != "$want" ]; then
    fail "$name on QEMU: exit status $status, expected $want"
    sed 's/^/  | /' "$work/$name.qemu" "$work/$name.qemu.err"
  fi
}
# same NAME: the two consoles agree but for the memory sizes.
same() {
  local name=$1
  $with_qemu || return 0
  sed -E 's/^(mb: (mem_upper|mmap ram)=).*/\1<size>/; s#cmdline=[^ ]*/#cmdline=#' \
    "$work/$name.vireo" > "$work/$name.vireo.cmp"
  sed -E 's/^(mb: (mem_upper|mmap ram)=).*/\1<size>/; s#cmdline=[^ ]*/#cmdline=#' \
    "$work/$name.qemu" > "$work/$name.qemu.cmp"
  if [ ! -s "$work/$name.vireo.cmp" ] || ! diff -u "$work/$name.qemu.cmp" "$work/$name.vireo.cmp"; then
    fail "$name: vireo's console differs from QEMU's"
  else
    echo "ok: $name: $(wc -l < "$work/$name.vireo.cmp") lines alike on vireo and QEMU"
  fi
}
expect_line() {
  local name=$1 line=$2
  grep -qxF "$line" "$work/$name.vireo" || fail "$name: no line '$line' on vireo"
}

# ELF32 (program headers), command line, the initrd as its one module, 2 vCPUs: verdict 0.
run_vireo elf 1 "$dir/mb_info.elf" --cmdline "hello multiboot" --initrd "$work/module" --cpus 2
run_qemu elf 1 "$dir/mb_info.elf" -append "hello multiboot" -initrd "$work/module" -smp 2
expect_line elf "mb: cmdline=$dir/mb_info.elf hello multiboot"
expect_line elf "mb: module=module-data-0123"
expect_line elf "mb: cpus=00000002"
same elf
# The a.out kludge (a flat binary with load addresses in its header), no module, 3 vCPUs.
run_vireo aout 1 "$dir/mb_info_aout.bin" --cmdline "x" --cpus 3
run_qemu aout 1 "$dir/mb_info_aout.bin" -append "x" -smp 3
expect_line aout "mb: no module"
expect_line aout "mb: cpus=00000003"
same aout
# A kernel whose verdict is 5: status (5 << 1) | 1 = 11 from both.
run_vireo fail 11 "$dir/mb_info_fail.elf" --cmdline ""
run_qemu fail 11 "$dir/mb_info_fail.elf" -append ""
same fail
# The platform (mb_platform.S): 4 vCPUs, so 3 APs through INIT-SIPI-SIPI; the LAPIC timer; the
# PIT through IOAPIC pin 2 and through the 8259 pair; the IOAPIC's size; the RTC.
run_vireo platform 1 "$dir/mb_platform.elf" --cpus 4
run_qemu platform 1 "$dir/mb_platform.elf" -smp 4
# The PIT's pin: 2, as the MADT's interrupt source override says, on the soft CPU and QEMU. On
# KVM vireo keeps KVM's default GSI routing, which puts the in-kernel PIT on pin 0: routing it to
# pin 2 made Linux guests in the nested test host double-fault (see the revert of 86f6c68). A
# known deviation, checked as such so a change either way is seen.
pit_pin=00000002
[ "$accel" = kvm ] && pit_pin=00000000
for line in "mb: cpus=00000004" "mb: aps started=00000003" "mb: lapic timer ticks=00000005" \
  "mb: ioapic pins=00000018" "mb: pit ticks=00000005 ioapic pin=$pit_pin" \
  "mb: pic ticks=00000005" "mb: rtc bcd ok" "mb: rtc ticks"; do
  expect_line platform "$line"
done
same platform
# The CPU (mb_cpu.S): long mode, #PF error codes and CR2, ring 3 through IRETQ, INT to a DPL 3
# gate on the TSS's RSP0 stack, SYSCALL/SYSRET, #GP for HLT in ring 3.
run_vireo cpu 1 "$dir/mb_cpu.elf"
run_qemu cpu 1 "$dir/mb_cpu.elf"
for line in "mb: pf read not-present cr2=40000000 err=00000000" \
  "mb: pf write read-only cr2=003ff008 err=00000003" \
  "mb: int 0x80 from ring 3 cs=00000023 on the rsp0 stack" \
  "mb: pf user on supervisor page cr2=003fe010 err=00000005" \
  "mb: syscall from ring 3, rcx=user rip, sysret ok" "mb: gp on hlt in ring 3 err=00000000" \
  "mb: back in ring 0"; do
  expect_line cpu "$line"
done
same cpu
# Bad input: a multiboot header asking for a video mode is refused by name, and nothing runs.
status=0
"$vireo" run --accel "$accel" --memory 64M --kernel "$dir/mb_info_video.elf" > "$work/video.out" 2>&1 || status=$?
if [ "$status" != 1 ] || ! grep -q "video mode" "$work/video.out"; then
  fail "a kernel that needs a video mode: status $status, $(cat "$work/video.out")"
else
  echo "ok: a kernel that needs a video mode is refused: $(tail -1 "$work/video.out")"
fi
echo "multiboot: $fails failed"
[ "$fails" = 0 ]
