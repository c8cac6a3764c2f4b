#!/usr/bin/env bash
# cli.migrate: live migration between vireo processes (issue 14) with probe "kernels" that count
# on COM1 ('a' + n % 26: "bcd...zab..."; tests/lib/make-probe-kernel --counter) and one that also
# rewrites 32 MiB of its RAM in a loop (--dirtier). The console of each process in turn must
# continue the cycle exactly: a lost page, register or byte breaks it, a repeat or a gap too.
#   - `vireo migrate receive` + `vireo migrate send` over a Unix socket, then on over loopback
#     TCP: the source exits 0 saying where the VM went, the count goes on at the destination
#   - failures that leave the source running and counting: no destination, a bad URL, a
#     destination that is killed mid-transfer (it was paused by SIGSTOP: the sender's wait ends
#     with the kill); a later migration succeeds
#   - convergence: the dirtier over a link held to 16 MiB/s converges with auto-converge (the
#     vCPU throttled step by step) and does not without it (timeout_strategy Cancel: the source
#     keeps running)
#   - a live upgrade (`--local`): the dirtier with its RAM in a memfd moves twice over Unix
#     sockets with no page copied (the destinations received less than 1 MiB each); a VM whose
#     RAM is anonymous cannot, and stays
# VIREO_ACCEL (default kvm) picks the accelerator of every process: cli.migrate_soft runs this on
# the software CPU on any machine. Usage: migrate.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: migrate.sh BUILD_DIR}
vireo=$build/vireo
accel=${VIREO_ACCEL:-kvm}
tmp=$(mktemp -d /tmp/vireo-mig.XXXXXX)
trap '{ kill -9 $(jobs -p); wait; } 2>/dev/null; rm -rf "$tmp"' EXIT
. "$top/tests/cli/lib.sh"
fault_has() { grep -q -- "$1" "$tmp/out" || { echo "  answer: $(cat "$tmp/out")"; return 1; }; }
# grows LOG: the console grows within 10 s (the guest runs).
grows() { local n; n=$(console "$1" | wc -c); wait_chars "$1" $((n + 3)) 10; }
# boot NAME KERNEL [MACHINE_EXTRA]: a vireo with its API on $tmp/NAME.sock running KERNEL
# (64 MiB, 1 vCPU; MACHINE_EXTRA: more machine-config fields, e.g. ', "memory_backend": "Memfd"').
boot() {
  rm -f "$tmp/$1.sock"
  "$vireo" --api-sock "$tmp/$1.sock" --accel "$accel" --log-path "$tmp/$1.vlog" \
    > "$tmp/$1.log" 2> "$tmp/$1.err" &
  echo $! > "$tmp/$1.pid"
  wait_socket "$tmp/$1.sock" &&
    [ "$(api "$tmp/$1.sock" PUT /boot-source "{\"kernel_image_path\": \"$2\"}")" = 204 ] &&
    [ "$(api "$tmp/$1.sock" PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": 64${3:-}}")" = 204 ] &&
    [ "$(api "$tmp/$1.sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204 ]
}
# receive NAME URL [ARGS...]: `vireo migrate receive` listening on URL, its API on
# $tmp/NAME.sock, with ARGS (e.g. --local). Waits for both sockets: the API's can come first, and
# a destination frozen (SIGSTOP) before it listens on URL would refuse the source's connection.
receive() {
  rm -f "$tmp/$1.sock"
  "$vireo" migrate receive --listen "$2" --accel "$accel" --api-sock "$tmp/$1.sock" "${@:3}" \
    --log-path "$tmp/$1.vlog" > "$tmp/$1.log" 2> "$tmp/$1.err" &
  echo $! > "$tmp/$1.pid"
  wait_socket "$tmp/$1.sock" || return 1
  case $2 in
    unix:*) wait_socket "${2#unix:}" ;;
    tcp:127.0.0.1:*)
      local hex
      hex=$(printf '0100007F:%04X' "${2##*:}")
      for _ in $(seq 1 100); do
        grep -q " $hex 00000000:0000 0A " /proc/net/tcp && return 0
        sleep 0.05
      done
      return 1
      ;;
  esac
}
pid() { cat "$tmp/$1.pid"; }
# kill9 NAME: ends the process quietly (no job-control notice).
kill9() { { kill -9 "$(pid "$1")" && wait "$(pid "$1")"; } 2>/dev/null; return 0; }
# exits NAME STATUS: the process ends (within 30 s) with STATUS.
exits() {
  for _ in $(seq 1 300); do
    kill -0 "$(pid "$1")" 2>/dev/null || break
    sleep 0.1
  done
  wait "$(pid "$1")" 2>/dev/null
  local rc=$?
  [ "$rc" = "$2" ] || { echo "  $1 exited $rc: $(tail -3 "$tmp/$1.err")"; return 1; }
}
running() { grep -q '"state":"Running"' <(api "$tmp/$1.sock" GET / >/dev/null; cat "$tmp/out"); }
migration_state() { api "$tmp/$1.sock" GET /migration >/dev/null; sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' "$tmp/out"; }
port=$((20000 + $$ % 20000))

probe_kernel --counter "$tmp/counter.elf"
probe_kernel --dirtier "$tmp/dirtier.elf"

# ---- over a Unix socket, then on over TCP ----
check "the counting guest boots on $accel" boot a "$tmp/counter.elf"
check "it counts" wait_chars "$tmp/a.log" 60
check "vireo migrate receive listens" receive b "unix:$tmp/ab.mig"
check "GET /migration on the destination: active" test "$(migration_state b)" = active
"$vireo" migrate send --api-sock "$tmp/a.sock" --to "unix:$tmp/ab.mig" > "$tmp/send1.out" 2>&1
check "vireo migrate send: 0" test $? = 0
check "... reporting the downtime" grep -q 'done: downtime' "$tmp/send1.out"
check "the source exits 0" exits a 0
check "... saying where the VM went" grep -q "migrated to unix:$tmp/ab.mig" "$tmp/a.err"
check "the destination runs the guest" running b
check "it counts on" wait_chars "$tmp/b.log" 60
check "... exactly where the source stopped (no repeat, no gap)" cyclic "$(console "$tmp/a.log")$(console "$tmp/b.log")"
check "GET /migration: completed" test "$(migration_state b)" = completed
check "a second receive in the running destination: 400" test "$(api "$tmp/b.sock" PUT /migration/receive "{\"receiver_url\": \"unix:$tmp/x.mig\"}")" = 400
check "... needing a fresh vireo" fault_has "fresh vireo"

check "a third process listens on loopback TCP" receive c "tcp:127.0.0.1:$port"
check "PUT /migration/send over TCP: 204" test "$(api "$tmp/b.sock" PUT /migration/send "{\"destination_url\": \"tcp:127.0.0.1:$port\", \"downtime_ms\": 100}")" = 204
check "the second process exits 0" exits b 0
check "the third runs the guest" running c
check "it counts on" wait_chars "$tmp/c.log" 60
check "the count is one unbroken cycle across three processes" cyclic "$(console "$tmp/a.log")$(console "$tmp/b.log")$(console "$tmp/c.log")"

# ---- failures leave the source running ----
check "send to nobody: vireo migrate send fails" test "$("$vireo" migrate send --api-sock "$tmp/c.sock" --to "unix:$tmp/nobody.mig" > "$tmp/send2.out" 2>&1; echo $?)" = 1
check "... saying it cannot connect" grep -q "cannot connect" "$tmp/send2.out"
check "... and the VM still runs and counts" running c
check "... on" grows "$tmp/c.log"
check "a bad destination_url: 400" test "$(api "$tmp/c.sock" PUT /migration/send '{"destination_url": "tcp:localhost:99999"}')" = 400
check "... naming the port" fault_has "port '99999'"
check "an unknown field: 400" test "$(api "$tmp/c.sock" PUT /migration/send '{"destination_url": "unix:/x", "speed": 3}')" = 400
check "local (memfd hand-over) over TCP: 400" test "$(api "$tmp/c.sock" PUT /migration/send '{"destination_url": "tcp:127.0.0.1:7", "local": true}')" = 400
check "... naming unix:" fault_has "must be unix:PATH"
check "PUT /migration/cancel with none under way: 400" test "$(api "$tmp/c.sock" PUT /migration/cancel)" = 400

check "a destination listens (then it is frozen)" receive d "unix:$tmp/cd.mig"
kill -STOP "$(pid d)"
check "PUT /migration/send to the frozen destination: 204" test "$(api "$tmp/c.sock" PUT /migration/send "{\"destination_url\": \"unix:$tmp/cd.mig\"}")" = 204
sleep 1
check "... active" test "$(migration_state c)" = active
check "PATCH /vm during a migration: 400" test "$(api "$tmp/c.sock" PATCH /vm '{"state": "Paused"}')" = 400
kill9 d
for _ in $(seq 1 100); do [ "$(migration_state c)" = active ] || break; sleep 0.1; done
check "the destination killed: the migration failed" test "$(migration_state c)" = failed
check "... and the source runs on" running c
check "... counting" grows "$tmp/c.log"
check "a later migration succeeds" receive e "unix:$tmp/ce.mig"
"$vireo" migrate send --api-sock "$tmp/c.sock" --to "unix:$tmp/ce.mig" > "$tmp/send3.out" 2>&1
check "... vireo migrate send: 0" test $? = 0 || sed 's/^/  send: /' "$tmp/send3.out"
check "... the source exits 0" exits c 0
check "... the guest counts on at the destination" wait_chars "$tmp/e.log" 30
check "... unbroken" cyclic "$(console "$tmp/c.log")$(console "$tmp/e.log")"
kill9 e

# ---- convergence of a guest that dirties 32 MiB in a loop, over a 16 MiB/s link ----
check "the dirtying guest boots" boot f "$tmp/dirtier.elf"
check "it sweeps its memory" wait_chars "$tmp/f.log" 2 60
check "a destination listens" receive g "unix:$tmp/fg.mig"
"$vireo" migrate send --api-sock "$tmp/f.sock" --to "unix:$tmp/fg.mig" --max-bandwidth-mib 16 \
  --timeout-s 8 --no-auto-converge > "$tmp/send4.out" 2>&1
check "without auto-converge it does not converge in 8 s: send fails" test $? = 1
check "... saying it did not converge" grep -q "did not converge" "$tmp/send4.out"
check "... the source keeps running" running f
check "... and sweeping" grows "$tmp/f.log"
check "the destination gave up" exits g 1
# converge_round LABEL: destination h listens again; the migration from f with auto-converge must
# converge after throttling the vCPU, and the source exit 0 (LABEL tells a rerun's checks apart).
converge_round() {
  check "a destination listens$1" receive h "unix:$tmp/fh.mig"
  "$vireo" migrate send --api-sock "$tmp/f.sock" --to "unix:$tmp/fh.mig" --max-bandwidth-mib 16 \
    --timeout-s 120 > "$tmp/send5.out" 2>&1
  check "with auto-converge it converges$1" test $? = 0
  check "... after throttling the vCPU$1" grep -q 'throttle [1-9]' "$tmp/send5.out"
  sed 's/^/  /' "$tmp/send5.out"
  check "the source exits 0$1" exits f 0
}
converge_round " again"
if ! wait_chars "$tmp/h.log" "$(( $(console "$tmp/f.log" | wc -c) + 1 ))" 60; then
  # Issue 14, open: seen in a fresh-clone run (session 26), as in nested.migration's step 8: after
  # an auto-converge hand-over the destination's guest (this one has no interrupts, no HLT: a bare
  # loop) did not run on. What the destination says of itself, then its vCPU state (SIGTERM makes
  # it log its exit summary), then the round once more, listed among make check's retries.
  echo "  the guest does not sweep on at the destination after the auto-converge hand-over:"
  api "$tmp/h.sock" GET / > /dev/null; echo "    GET /: $(cut -c1-200 "$tmp/out")"
  kill -TERM "$(pid h)" 2>/dev/null
  sleep 2
  tail -6 "$tmp/h.vlog" | cut -c1-300 | sed 's/^/    h.vlog: /'
  kill9 h
  # Listed among the retries: tests/nested/run picks this line off the nested host's console;
  # run directly, the script writes the retry log itself.
  why="the destination's guest did not run after the auto-converge hand-over (issue 14)"
  echo "VIREO-SCENARIO-RETRY: $why"
  if [ -n "${VIREO_RETRY_LOG:-}" ] && [ -d "$(dirname "$VIREO_RETRY_LOG")" ]; then
    echo "cli.migrate ($accel): $why" >> "$VIREO_RETRY_LOG"
  fi
  echo "RETRY: the auto-converge round once more"
  check "the dirtying guest boots (rerun)" boot f "$tmp/dirtier.elf"
  check "it sweeps its memory (rerun)" wait_chars "$tmp/f.log" 2 60
  converge_round " (rerun)"
fi
check "the guest sweeps on at the destination" wait_chars "$tmp/h.log" "$(( $(console "$tmp/f.log" | wc -c) + 1 ))" 60
check "... unbroken" cyclic "$(console "$tmp/f.log")$(console "$tmp/h.log")"
kill9 h

# ---- a live upgrade: RAM in a memfd handed over, never copied ----
# received_bytes NAME: what the destination's GET /migration says it received.
received_bytes() { api "$tmp/$1.sock" GET /migration >/dev/null; sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' "$tmp/out"; }
check "a VM with anonymous RAM: a local destination listens" receive l "unix:$tmp/kl.mig" --local
check "the dirtier boots with anonymous RAM" boot k "$tmp/dirtier.elf"
check "... and sweeps" wait_chars "$tmp/k.log" 2 60
"$vireo" migrate send --api-sock "$tmp/k.sock" --to "unix:$tmp/kl.mig" --local > "$tmp/send6.out" 2>&1
check "send --local fails" test $? = 1
check "... saying its RAM is not in a memfd" grep -q "not in one" "$tmp/send6.out"
check "... the source keeps running" running k
check "... and sweeping" grows "$tmp/k.log"
check "the local destination gave up" exits l 1
kill9 k
check "the dirtier boots with its RAM in a memfd" boot m "$tmp/dirtier.elf" ', "memory_backend": "Memfd"'
check "GET /vm/config shows the memory backend" grep -q '"memory_backend":"Memfd"' <(api "$tmp/m.sock" GET /vm/config >/dev/null; cat "$tmp/out")
check "... and sweeps" wait_chars "$tmp/m.log" 2 60
check "a local destination listens" receive n "unix:$tmp/mn.mig" --local
"$vireo" migrate send --api-sock "$tmp/m.sock" --to "unix:$tmp/mn.mig" --local > "$tmp/send7.out" 2>&1
check "vireo migrate send --local: 0" test $? = 0
cat "$tmp/send7.out" | sed 's/^/  /'
check "the source exits 0" exits m 0
check "the destination runs the guest" running n
check "... which sweeps on" wait_chars "$tmp/n.log" "$(( $(console "$tmp/m.log" | wc -c) + 1 ))" 60
check "... unbroken" cyclic "$(console "$tmp/m.log")$(console "$tmp/n.log")"
check "... and no RAM was copied (less than 1 MiB received)" test "$(received_bytes n)" -lt 1048576
check "the upgraded vireo upgrades again" receive o "unix:$tmp/no.mig" --local
"$vireo" migrate send --api-sock "$tmp/n.sock" --to "unix:$tmp/no.mig" --local > "$tmp/send8.out" 2>&1
check "... vireo migrate send --local: 0" test $? = 0
check "... the second process exits 0" exits n 0
check "... the guest sweeps on in the third" wait_chars "$tmp/o.log" "$(( $(console "$tmp/m.log" | wc -c) + $(console "$tmp/n.log" | wc -c) + 1 ))" 60
check "... unbroken across three processes" cyclic "$(console "$tmp/m.log")$(console "$tmp/n.log")$(console "$tmp/o.log")"
check "... no RAM copied" test "$(received_bytes o)" -lt 1048576
kill9 o
summary
