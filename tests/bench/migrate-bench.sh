# bench/migrate (runs inside the nested test host): live migration of a running 1-vCPU, 256 MiB
# guest (cloud kernel, initramfs only, a counter printing `TICK n` every 20 ms on the serial
# console) between two processes of the same VMM over loopback TCP, vireo against QEMU 7.2
# (-M q35, `migrate tcp:` to `-incoming tcp:`), alternating, RUNS rounds of each in two loads:
#   idle:  the counter only;
#   dirty: the counter and `vireo-iotool dirty 64M 4M` (one word into each page of a 64 MiB
#          buffer, round and round, 4 MiB of pages a second), below both VMMs' bandwidth here,
#          so both converge without throttling.
# Both VMMs get the same policy: downtime limit 300 ms, no bandwidth cap (QEMU's default cap of
# 32 MiB/s raised), auto-converge on (QEMU's capability set to match vireo's default).
# Each console goes through vireo-linestamp (tests/bench/linestamp.cpp), which stamps every line
# with the host's monotonic clock as it arrives, so the source's and destination's lines merge.
# Per round:
#   guest_ms: the guest-observed downtime: the largest gap between two consecutive TICK lines,
#             from the migration's start until 30 TICKs after the hand-over (the normal gap is
#             ~20 ms plus the printing). The TICK numbers must run on without a repeat or a hole.
#   vmm_ms:   the downtime the VMM reports (vireo: migrate send's final line; QEMU: query-migrate's
#             "downtime").
#   total_ms: the migration's total time as the VMM reports it (QEMU: "total-time").
#   bytes:    bytes sent (vireo: the whole stream; QEMU: "ram"."transferred", RAM only: its device
#             state is not counted, which favours QEMU by a few KiB).
# And vireo alone, a live upgrade ("local"): the idle guest with its RAM in a memfd
# (memory_backend "Memfd") handed to a new vireo over a Unix socket (--local), nothing copied.
# Prints each figure's median per VMM and load, and the ratios vireo / QEMU beside the targets
# (issue 14): guest-observed downtime <= 0.3x, total time <= 0.7x, bytes <= 1.0x.
# Usage: migrate-bench.sh [RUNS]   (default 3)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
runs=${1:-3}
kernel=$GUEST/cloud/vmlinuz
mem_mib=256
at=50
port=7800

echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null), shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)"
step "the counting guest"
counting_initramfs /tmp/mb.cpio.gz 20000 mb_dirty

vm_pids=
cleanup() {
  for _p in $vm_pids; do kill -9 "$_p" 2>/dev/null; done
  qmp_close mb 2>/dev/null
}
trap cleanup EXIT

# stamped LOG CMD...: runs CMD in the background with its stdout through vireo-linestamp into LOG
# (stderr to LOG's .err); PID is CMD's own pid (a kill -9 must reach the VMM).
stamped() {
  _slog=$1
  shift
  rm -f "$_slog.fifo"
  mkfifo "$_slog.fifo"
  vireo-linestamp < "$_slog.fifo" > "$_slog" &
  "$@" > "$_slog.fifo" 2> "${_slog%.log}.err" &
  PID=$!
  vm_pids="$vm_pids $PID"
}

# wait_tick LOG N SECONDS [PID]: waits for a line "TICK N" (or a later one) in LOG.
wait_tick() {
  _i=$(($3 * 20))
  while :; do
    _last=$(sed -n 's/^[0-9.]* TICK \([0-9]*\)$/\1/p' "$1" 2>/dev/null | tail -1)
    [ -n "$_last" ] && [ "$_last" -ge "$2" ] && return 0
    _i=$((_i - 1))
    [ $_i -gt 0 ] || { WHY="no TICK $2 within $3 s (last: ${_last:-none})"; return 1; }
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then WHY="the VMM exited (last TICK: ${_last:-none})"; return 1; fi
    sleep 0.05
  done
}

# kvm_sampler PID OUT: until PID ends, samples the KVM statistics of PID's VM (debugfs,
# /sys/kernel/debug/kvm/PID-FD/) every 10 ms into OUT: "stamp_ms pf_fixed exits pages_4k pages_2m".
# They tell whether the destination's guest, after the hand-over, waits on KVM (nested page
# faults, exits) or on something else: measured, a few dozen faults and exits at the usual rate;
# the wait is the TCG-emulated host translating the guest's code again at its new pages.
kvm_sampler() {
  [ -d /sys/kernel/debug/kvm ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
  [ -d /sys/kernel/debug/kvm ] || return 0
  # Builtins only (no fork per sample): $EPOCHREALTIME, read, and a wait on an idle fifo.
  rm -f "$2.fifo"
  mkfifo "$2.fifo"
  exec 9<> "$2.fifo"
  : > "$2"
  while kill -0 "$1" 2>/dev/null; do
    for _d in /sys/kernel/debug/kvm/"$1"-*; do
      [ -r "$_d/pf_fixed" ] || continue
      read -r _f < "$_d/pf_fixed"; read -r _e < "$_d/exits"
      read -r _p4 < "$_d/pages_4k"; read -r _p2 < "$_d/pages_2m"
      _now=${EPOCHREALTIME/./}
      echo "${_now%???} $_f $_e $_p4 $_p2" >> "$2"
    done
    read -r -t 0.01 -u 9 _ || true
  done
  exec 9<&-
  rm -f "$2.fifo"
}

# stall_report SAMPLES DST_LOG: the destination VM's nested page faults and mappings from its
# first sample to its first TICK, and 1 s later.
stall_report() {
  [ -s "$1" ] || return 0
  _t=$(sed -n 's/^\([0-9]*\)\.[0-9]* TICK .*/\1/p' "$2" | head -1)
  awk -v t="${_t:-0}" '
    NR == 1 { f0 = $2; e0 = $3 }
    $1 <= t { ft = $2; et = $3; p4t = $4; p2t = $5 }
    $1 <= t + 1000 { f1 = $2; e1 = $3; p41 = $4; p21 = $5 }
    END { printf "    destination KVM: to its first TICK %d nested page faults, %d exits (4K maps %d, 2M maps %d); 1 s later %d faults, %d exits (4K %d, 2M %d)\n", ft - f0, et - e0, p4t, p2t, f1 - f0, e1 - e0, p41, p21 }' "$1"
}

# gaps SRC_LOG DST_LOG FROM_MS: checks that the TICK numbers of both logs run on without a repeat
# or a hole and prints the largest gap in ms between consecutive TICKs stamped after FROM_MS, with
# the TICK it ended at; or "BAD <why>" (status 1). A line cut by the hand-over (the source printed
# "TI", the destination "CK 65": vireo-linestamp marks the source's unfinished last line with a
# '~' after its stamp) is joined, and counts once complete, at the destination's stamp.
gaps() {
  cat "$1" "$2" | awk -v from="$3" '
    {
      stamp = $1; text = substr($0, index($0, " ") + 1)
      if (cut != "") { text = cut text; cut = "" }
      if (stamp ~ /~$/) { cut = text; next }
      if (split(text, w, " ") != 2 || w[1] != "TICK" || w[2] !~ /^[0-9]+$/) next
      n = w[2] + 0
      if (have && n != prev + 1) { printf "BAD TICK %d followed TICK %d\n", n, prev; bad = 1; exit 1 }
      if (have && stamp >= from && stamp - t > max) { max = stamp - t; at = n }
      have = 1; prev = n; t = stamp
    }
    END { if (!bad) printf "%d %d\n", max, at }'
}

# round_failed VMM LOAD RUN WHY [LOG...]: reports a failed round with the end of the logs.
round_failed() {
  echo "run $3 $1 $2: FAILED: $4"
  shift 4
  for _l in "$@"; do
    tail -3 "$_l" 2>/dev/null | sed "s|^|    $(basename "$_l"): |"
    tail -3 "${_l%.log}.err" 2>/dev/null | sed "s|^|    $(basename "${_l%.log}.err"): |"
  done
  for _p in $vm_pids; do kill -9 "$_p" 2>/dev/null; wait "$_p" 2>/dev/null; done
  vm_pids=
  return 1
}

sock=/tmp/mb-src.sock
dsock=/tmp/mb-dst.sock
mb_api() {
  curl -s -m 60 -o /tmp/mb-api.out -w '%{http_code}' --unix-socket "$sock" -X "$1" \
    ${3:+-H 'Content-Type: application/json' -d "$3"} "http://localhost$2"
}

vireo_round() {
  _load=$1 _run=$2 _args=$3
  _mc= _url="tcp:127.0.0.1:$((port + _run * 4 + 1))" _local=
  if [ "$_load" = local ]; then
    _mc=', "memory_backend": "Memfd"' _url=unix:/tmp/mb-local.mig _local=--local
    rm -f /tmp/mb-local.mig
  fi
  _src=/tmp/mb-vireo-src.log _dst=/tmp/mb-vireo-dst.log
  rm -f "$sock" "$dsock"
  stamped "$_src" vireo --api-sock "$sock" --log-path /tmp/mb-vireo-src.vlog
  _spid=$PID
  for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
  for _req in "PUT /boot-source {\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/mb.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=-1 quiet$_args\"}" \
              "PUT /machine-config {\"vcpu_count\": 1, \"mem_size_mib\": $mem_mib$_mc}" \
              "PUT /actions {\"action_type\": \"InstanceStart\"}"; do
    _m=${_req%% *} _rest=${_req#* }
    _p=${_rest%% *} _body=${_rest#* }
    _r=$(mb_api "$_m" "$_p" "$_body")
    [ "$_r" = 204 ] || { round_failed vireo "$_load" "$_run" "$_m $_p answered $_r: $(cat /tmp/mb-api.out)" "$_src"; return 1; }
  done
  wait_tick "$_src" $at 120 "$_spid" || { round_failed vireo "$_load" "$_run" "boot: $WHY" "$_src"; return 1; }
  stamped "$_dst" vireo migrate receive --listen "$_url" --api-sock "$dsock" \
    --log-path /tmp/mb-vireo-dst.vlog $_local
  _dpid=$PID
  for _ in $(seq 1 100); do [ -S "$dsock" ] && break; sleep 0.05; done
  [ -S "$dsock" ] || { round_failed vireo "$_load" "$_run" "migrate receive: no API socket after 5 s" "$_dst"; return 1; }
  _from=$(tail -1 "$_src" | cut -d' ' -f1)
  kvm_sampler "$_dpid" /tmp/mb-kvm.txt &
  if ! timeout 300 vireo migrate send --api-sock "$sock" --to "$_url" --downtime-ms 300 $_local \
      > /tmp/mb-send.out 2>&1; then
    round_failed vireo "$_load" "$_run" "migrate send: $(tail -1 /tmp/mb-send.out)" "$_src" "$_dst"
    return 1
  fi
  _done=$(grep 'done:' /tmp/mb-send.out)
  _last=$(sed -n 's/^[0-9.]* TICK \([0-9]*\)$/\1/p' "$_src" | tail -1)
  wait_tick "$_dst" $((${_last:-0} + 30)) 60 "$_dpid" ||
    { round_failed vireo "$_load" "$_run" "after the hand-over: $WHY" "$_src" "$_dst"; return 1; }
  for _ in $(seq 1 50); do kill -0 "$_spid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$_spid" 2>/dev/null && { round_failed vireo "$_load" "$_run" "the source still runs 5 s after the hand-over" "$_src"; return 1; }
  wait "$_spid"
  _rc=$?
  kill -9 "$_dpid" 2>/dev/null
  wait "$_dpid" 2>/dev/null
  vm_pids=
  [ $_rc -eq 0 ] || { round_failed vireo "$_load" "$_run" "the source exited with $_rc" "$_src"; return 1; }
  _g=$(gaps "$_src" "$_dst" "$_from") || { round_failed vireo "$_load" "$_run" "$_g"; return 1; }
  _vmm=$(echo "$_done" | sed -n 's/.*downtime \([0-9.]*\) ms.*/\1/p' | cut -d. -f1)
  _total=$(echo "$_done" | sed -n 's/.*total \([0-9]*\) ms.*/\1/p')
  _bytes=$(echo "$_done" | sed -n 's/.*(\([0-9]*\) bytes).*/\1/p')
  _passes=$(sed -n 's/.*migration received from .*: \([0-9]*\) passes.*/\1/p' /tmp/mb-vireo-dst.vlog)
  _line="vireo $_load guest_ms=${_g% *} vmm_ms=$_vmm total_ms=$_total bytes=$_bytes passes=$_passes"
  echo "$_line" >> /tmp/mb-results
  echo "run $_run vireo $_load: ${_line#vireo $_load } (largest gap before TICK ${_g#* })"
  timeline "$_src" "$_dst"
  stall_report /tmp/mb-kvm.txt "$_dst"
  rm -f /tmp/mb-vireo-src.vlog /tmp/mb-vireo-dst.vlog
}

# timeline SRC_LOG DST_LOG: the hand-over in ms of the day (UTC), from the consoles' stamps and
# vireo's log lines: the source's last TICK, the switch-over's report, the destination's build,
# Commit and resume, and its first TICK.
timeline() {
  {
    sed -n 's/^\([0-9]*\)\.[0-9]* \(TICK [0-9]*\)$/\1 source \2/p' "$1" | tail -1
    sed -n 's/^\([0-9]*\)\.[0-9]* \(TICK [0-9]*\)$/\1 destination \2/p' "$2" | head -1
    grep -h 'switch-over took\|was built in\|state applied in\|let the VM go\|migration received\|pass [0-9]* done\|the migration.s stream' \
      /tmp/mb-vireo-src.vlog /tmp/mb-vireo-dst.vlog 2>/dev/null |
      sed -n 's/^\[[0-9-]* \([0-9]*\):\([0-9]*\):\([0-9]*\)\.\([0-9]*\)\] \[[a-z]*\] \(.*\)$/\1 \2 \3 \4 \5/p' |
      awk '{ ms = (($1 * 60 + $2) * 60 + $3) * 1000 + $4; $1 = $2 = $3 = $4 = ""; print ms + 0, "log", $0 }'
  } | awk '{ if ($2 != "log") $1 = $1 % 86400000; print }' | sort -n |
    awk 'NR == 1 { t0 = $1 } { printf "    %+6d ms  %s\n", $1 - t0, substr($0, index($0, $2)) }' | cut -c1-320
}

qemu_vm() {
  _ql=$1 _args=$2
  shift 2
  stamped "$_ql" qemu-system-x86_64 -M q35 -accel kvm -cpu host -nodefaults -no-user-config \
    -display none -serial stdio -no-reboot -smp 1 -m $mem_mib -kernel "$kernel" \
    -initrd /tmp/mb.cpio.gz -append "console=ttyS0 panic=-1 quiet$_args" "$@"
}

qemu_round() {
  _load=$1 _run=$2 _args=$3
  _src=/tmp/mb-qemu-src.log _dst=/tmp/mb-qemu-dst.log
  rm -f /tmp/mb-qmp.sock
  qemu_vm "$_src" "$_args" -qmp unix:/tmp/mb-qmp.sock,server=on,wait=off
  _spid=$PID
  qmp_open mb /tmp/mb-qmp.sock > /dev/null || { round_failed qemu "$_load" "$_run" "no QMP session" "$_src"; return 1; }
  wait_tick "$_src" $at 120 "$_spid" || { qmp_close mb; round_failed qemu "$_load" "$_run" "boot: $WHY" "$_src"; return 1; }
  _port=$((port + _run * 4 + 2))
  qemu_vm "$_dst" "$_args" -incoming "tcp:127.0.0.1:$_port"
  _dpid=$PID
  # QEMU listens once its machine is built.
  wait_tcp_listen "$_port" 20 || { qmp_close mb; round_failed qemu "$_load" "$_run" "the destination QEMU does not listen on $_port after 20 s" "$_dst"; return 1; }
  _from=$(tail -1 "$_src" | cut -d' ' -f1)
  kvm_sampler "$_dpid" /tmp/mb-kvm.txt &
  qmp mb '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 107374182400, "downtime-limit": 300}}' > /dev/null &&
    qmp mb '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "auto-converge", "state": true}]}}' > /dev/null &&
    qmp mb "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:127.0.0.1:$_port\"}}" > /dev/null ||
    { qmp_close mb; round_failed qemu "$_load" "$_run" "QMP migrate failed: $(tail -1 /tmp/qmp-mb.out)" "$_src" "$_dst"; return 1; }
  _n=6000
  while :; do
    _r=$(qmp mb '{"execute": "query-migrate"}')
    case $_r in
      *'"status": "completed"'*) break ;;
      *'"status": "failed"'*|*'"status": "cancelled"'*) _n=0 ;;
    esac
    _n=$((_n - 1))
    [ $_n -gt 0 ] || { qmp_close mb; round_failed qemu "$_load" "$_run" "migration: $_r" "$_src" "$_dst"; return 1; }
    sleep 0.05
  done
  qmp_close mb
  _last=$(sed -n 's/^[0-9.]* TICK \([0-9]*\)$/\1/p' "$_src" | tail -1)
  wait_tick "$_dst" $((${_last:-0} + 30)) 60 "$_dpid" ||
    { round_failed qemu "$_load" "$_run" "after the hand-over: $WHY" "$_src" "$_dst"; return 1; }
  kill -9 "$_spid" "$_dpid" 2>/dev/null
  wait "$_spid" "$_dpid" 2>/dev/null
  vm_pids=
  _g=$(gaps "$_src" "$_dst" "$_from") || { round_failed qemu "$_load" "$_run" "$_g"; return 1; }
  _vmm=$(echo "$_r" | sed -n 's/.*"downtime": \([0-9]*\).*/\1/p')
  _total=$(echo "$_r" | sed -n 's/.*"total-time": \([0-9]*\).*/\1/p')
  _bytes=$(echo "$_r" | sed -n 's/.*"transferred": \([0-9]*\).*/\1/p')
  _passes=$(echo "$_r" | sed -n 's/.*"dirty-sync-count": \([0-9]*\).*/\1/p')
  _line="qemu $_load guest_ms=${_g% *} vmm_ms=$_vmm total_ms=$_total bytes=$_bytes passes=$_passes"
  echo "$_line" >> /tmp/mb-results
  echo "run $_run qemu $_load: ${_line#qemu $_load } (largest gap before TICK ${_g#* })"
  stall_report /tmp/mb-kvm.txt "$_dst"
}


step "live migration over loopback TCP, $runs rounds, alternating vireo and QEMU, idle and dirtying"
: > /tmp/mb-results
for i in $(seq 1 "$runs"); do
  for load in idle dirty; do
    args=
    [ $load = dirty ] && args=" mb_dirty=4M mb_dirty_size=64M"
    for vmm in vireo qemu; do
      bench_no_leftovers
      ( sleep 400
        echo "WATCHDOG: run $i $vmm $load still going after 400 s; processes:"
        ps -o pid,stat,time,args | grep -E 'qemu|vireo|curl' | grep -v grep | cut -c1-150 ) &
      watchdog=$!
      ${vmm}_round "$load" "$i" "$args"
      kill $watchdog 2>/dev/null
      wait $watchdog 2>/dev/null
    done
  done
  bench_no_leftovers
  vireo_round local "$i" ""
done

median() { bench_median /tmp/mb-results "$1 $2 " "$3"; }
ratio() { bench_ratio "$@"; }
mib() { bench_mib "$@"; }
verdict() { [ "$1" = n/a ] && echo "n/a" || awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "NOT met" }'; }

echo
echo "== bench/migrate results (median of successful rounds; 1 vCPU, $mem_mib MiB, nested kvm-amd, loopback TCP)"
printf '%-7s %-6s %6s %9s %8s %9s %10s %6s\n' load VMM rounds guest_ms vmm_ms total_ms sent_MiB passes
for load in idle dirty local; do
  for vmm in vireo qemu; do
    [ $load = local ] && [ $vmm = qemu ] && continue
    printf '%-7s %-6s %6s %9s %8s %9s %10s %6s\n' $load $vmm "$(grep -c "^$vmm $load " /tmp/mb-results)" \
      "$(median $vmm $load guest_ms)" "$(median $vmm $load vmm_ms)" "$(median $vmm $load total_ms)" \
      "$(mib "$(median $vmm $load bytes)")" "$(median $vmm $load passes)"
  done
done
for load in idle dirty; do
  g=$(ratio "$(median vireo $load guest_ms)" "$(median qemu $load guest_ms)")
  v=$(ratio "$(median vireo $load vmm_ms)" "$(median qemu $load vmm_ms)")
  t=$(ratio "$(median vireo $load total_ms)" "$(median qemu $load total_ms)")
  b=$(ratio "$(median vireo $load bytes)" "$(median qemu $load bytes)")
  echo "ratio vireo / QEMU, $load: guest-observed downtime $g (target <= 0.30: $(verdict "$g" 0.30));" \
    "VMM-reported downtime $v; total time $t (target <= 0.70: $(verdict "$t" 0.70));" \
    "bytes $b (target <= 1.00: $(verdict "$b" 1.00))"
done
echo "local hand-over (vireo --local, RAM in a memfd): guest-observed downtime $(median vireo local guest_ms) ms, VMM-reported $(median vireo local vmm_ms) ms, $(median vireo local bytes) bytes sent"
nv=$(grep -c '^vireo ' /tmp/mb-results)
nq=$(grep -c '^qemu ' /tmp/mb-results)
echo "successful rounds: vireo $nv/$((runs * 3)), QEMU $nq/$((runs * 2))"
[ "$nq" -gt 0 ] || fail "QEMU: no successful round: the benchmark itself is broken"
exit 0
