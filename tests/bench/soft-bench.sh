#!/usr/bin/env bash
# bench/soft (issue 16): the soft CPU against QEMU's TCG on this machine, no nested host, side by
# side in one run (vireo and QEMU alternating within each round).
#
#   soft-bench.sh BUILD_DIR [ROUNDS]
#
# - Guest instructions per second on an integer loop and a memory-heavy loop: the multiboot
#   kernels tests/multiboot/mb_loop.S at N and 2N iterations; the extra N iterations (6 or 7
#   instructions each) divided by the extra time, so start-up and firmware cancel out. vireo runs
#   them with --accel soft (N = 50 million), QEMU with -accel tcg -kernel (N = 500 million: TCG
#   runs both loops at billions of instructions a second).
# - A kernel decompressor run: Debian's cloud bzImage from entry to its first console line
#   ("Linux version"), less each VMM's start-up time (a 1-iteration loop kernel's run time:
#   process start and, for QEMU, SeaBIOS).
# Targets: integer loop >= 100 million instructions per second, and >= 0.05x TCG.
set -euo pipefail
build=$(cd "${1:?usage: soft-bench.sh BUILD_DIR [ROUNDS]}" && pwd)
rounds=${2:-3}
vireo=$build/vireo
kernels=$build/tests/multiboot
bz=$build/guest/cloud/vmlinuz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$vireo" "$kernels/mb_loop1_50000000.elf" "$bz"; do
  [ -e "$f" ] || { echo "soft-bench: $f is missing (make build guest)"; exit 2; }
done
command -v qemu-system-x86_64 > /dev/null || { echo "soft-bench: no qemu-system-x86_64"; exit 2; }

now_ms() { date +%s%3N; }
# run_ms VMM KERNEL: milliseconds from start to exit; the kernel's verdict must be 0 (status 1).
run_ms() {
  local vmm=$1 kernel=$2 start status=0
  start=$(now_ms)
  if [ "$vmm" = vireo ]; then
    "$vireo" run --accel soft --memory 64M --kernel "$kernel" > /dev/null 2>&1 || status=$?
  else
    qemu-system-x86_64 -machine pc -accel tcg -m 64 -nodefaults -display none -monitor none \
      -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$kernel" > /dev/null 2>&1 || status=$?
  fi
  [ "$status" = 1 ] || { echo "soft-bench: $vmm on $(basename "$kernel"): status $status" >&2; exit 1; }
  echo $(($(now_ms) - start))
}
# first_line_ms VMM: milliseconds from start to "Linux version" on the console of the bzImage.
first_line_ms() {
  local vmm=$1 out=$work/console.$1 start pid t
  rm -f "$out"
  : > "$out"
  local cmdline="console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1"
  start=$(now_ms)
  if [ "$vmm" = vireo ]; then
    "$vireo" run --accel soft --memory 256M --kernel "$bz" --cmdline "$cmdline" \
      --console "file:$out" > /dev/null 2>&1 < /dev/null &
  else
    qemu-system-x86_64 -machine pc -accel tcg -m 256 -nodefaults -display none -monitor none \
      -serial "file:$out" -kernel "$bz" -append "$cmdline" > /dev/null 2>&1 < /dev/null &
  fi
  pid=$!
  t=""
  for _ in $(seq 1 12000); do
    if grep -q 'Linux version' "$out" 2> /dev/null; then
      t=$(($(now_ms) - start))
      break
    fi
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.01
  done
  kill "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  [ -n "$t" ] || { echo "soft-bench: $vmm never printed 'Linux version'" >&2; exit 1; }
  echo "$t"
}
# mips INSTRUCTIONS MS: million instructions per second.
mips() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.1f", (ms > 0 ? n / ms / 1000 : 0) }'; }
least() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }

declare -A ips
for r in $(seq 1 "$rounds"); do
  for kind in 1 2; do
    per=$([ $kind = 1 ] && echo 6 || echo 7)
    for vmm in vireo qemu; do
      n=50000000
      if [ $vmm = qemu ]; then
        n=500000000
      fi
      t1=$(run_ms $vmm "$kernels/mb_loop${kind}_$n.elf")
      t2=$(run_ms $vmm "$kernels/mb_loop${kind}_$((2 * n)).elf")
      v=$(mips $((n * per)) $((t2 - t1)))
      # The summary takes each kernel's fastest run: on a shared host a slow run is noise.
      ips[$vmm.$kind.t1]="${ips[$vmm.$kind.t1]:-} $t1"
      ips[$vmm.$kind.t2]="${ips[$vmm.$kind.t2]:-} $t2"
      ips[$vmm.$kind.n]=$((n * per))
      echo "round $r: $([ $kind = 1 ] && echo integer || echo memory) loop on $vmm: ${t1} ms, ${t2} ms -> $v M instr/s"
    done
  done
  for vmm in vireo qemu; do
    base=$(run_ms $vmm "$kernels/mb_loop1_1.elf")
    t=$(first_line_ms $vmm)
    ips[$vmm.dec]="${ips[$vmm.dec]:-} $((t - base))"
    echo "round $r: bzImage to 'Linux version' on $vmm: $t ms, start-up $base ms -> $((t - base)) ms"
  done
done

echo
echo "== bench/soft: vireo --accel soft vs QEMU 7.2 TCG; each kernel's fastest of $rounds runs"
for kind in 1 2; do
  name=$([ $kind = 1 ] && echo "integer loop" || echo "memory loop ")
  v=$(mips "${ips[vireo.$kind.n]}" $(($(echo "${ips[vireo.$kind.t2]}" | least) - \
    $(echo "${ips[vireo.$kind.t1]}" | least))))
  q=$(mips "${ips[qemu.$kind.n]}" $(($(echo "${ips[qemu.$kind.t2]}" | least) - \
    $(echo "${ips[qemu.$kind.t1]}" | least))))
  ratio=$(awk -v v="$v" -v q="$q" 'BEGIN { printf "%.3f", (q > 0 ? v / q : 0) }')
  target=""
  if [ $kind = 1 ]; then
    target="   targets: >= 100 M instr/s $(awk -v v="$v" 'BEGIN { print (v >= 100) ? "met" : "NOT met" }'), >= 0.05x TCG $(awk -v r="$ratio" 'BEGIN { print (r >= 0.05) ? "met" : "NOT met" }')"
  fi
  echo "$name  vireo $v M instr/s   QEMU TCG $q M instr/s   ratio $ratio$target"
done
v=$(echo "${ips[vireo.dec]}" | least)
q=$(echo "${ips[qemu.dec]}" | least)
echo "decompressor  vireo $v ms   QEMU TCG $q ms   ratio $(awk -v v="$v" -v q="$q" \
  'BEGIN { printf "%.2f", (q > 0 ? v / q : 0) }')x the time (bzImage entry to 'Linux version')"

# Where the time goes: the 64-bit probe loops with the decode cache's hit rate
# (tests/bench/soft_ips.cpp), and, where perf is installed, the hottest functions of the
# interpreter on the memory loop.
echo
echo "== bench/soft: the 64-bit probe loops (vireo-soft-ips) and the decode cache"
"$build/tests/bench/vireo-soft-ips" 1
if command -v perf > /dev/null; then
  echo
  echo "== bench/soft: where the soft CPU's time goes on the memory loop (perf, self time)"
  perf record -q -o "$work/perf.data" "$vireo" run --accel soft --memory 64M \
    --kernel "$kernels/mb_loop2_50000000.elf" > /dev/null 2>&1 || true
  perf report -i "$work/perf.data" --no-children --stdio --sort symbol 2> /dev/null |
    grep -E '^ +[0-9.]+%' | head -12 | cut -c1-110
fi
