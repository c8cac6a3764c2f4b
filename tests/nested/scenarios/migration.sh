# Live migration of a Linux guest between two vireo processes over loopback TCP (issue 14): what
# goes wrong on the way, and a guest that dirties memory faster than the link carries it.
# The guest (cloud kernel, initramfs) prints "TICK n" every 100 ms; the second one also rewrites a
# 128 MiB buffer flat out (vireo-iotool dirty 128M 0). Every failure must leave the source VM
# running (its TICKs go on) and the destination gone with a non-zero status and its reason:
#   1. the destination killed mid-transfer (kill -9);
#   2. the connection cut mid-stream (vireo-faultproxy cut: both sockets shut down);
#   3. one corrupted byte in the stream (vireo-faultproxy flip, 30 MB in: a Memory frame);
#   4. PUT /migration/cancel mid-transfer;
#   5. a destination that lacks CPU features the guest was given (vireo's software CPU);
# and then a migration succeeds: the source exits 0 and the TICKs run on at the destination with no
# repeat and no hole. The dirtying guest, over a link held to 16 MiB/s: without auto-converge it
# does not converge within 10 s (timeout_strategy Cancel: the source keeps running); with it the
# vCPU is throttled step by step until it does, and the guest runs on at the destination.
# (The snapshot scenario's part f migrates a guest with a root disk and a NIC.)
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"
kernel=$GUEST/cloud/vmlinuz

step "the counting guest, and the one that also dirties 128 MiB"
counting_initramfs /tmp/mg.cpio.gz 100000 mg_dirty

pids=
# On the way out: every VMM killed; after a failure, what each one said last.
finish() {
  _rc=$?
  if [ $_rc -ne 0 ]; then
    # SIGTERM first: each VMM then logs where its vCPUs were as it ends.
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    sleep 2
    for _f in /tmp/mg-*.err /tmp/mg-*.vlog; do
      [ -s "$_f" ] || continue
      echo "  --- the end of $_f:"
      tail -7 "$_f" | cut -c1-300 | sed 's/^/    /'
    done
  fi
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
}
trap finish EXIT

# vm NAME MIB [BOOT_ARGS]: a vireo running the guest, API on /tmp/mg-NAME.sock, console in
# /tmp/mg-NAME.log, log in /tmp/mg-NAME.vlog; sets PID.
vm() {
  rm -f "/tmp/mg-$1.sock"
  # The log apart from the console: a log line could cut a TICK line in two.
  vireo --api-sock "/tmp/mg-$1.sock" --log-path "/tmp/mg-$1.vlog" > "/tmp/mg-$1.log" 2> "/tmp/mg-$1.err" &
  PID=$!
  pids="$pids $PID"
  for _ in $(seq 1 100); do [ -S "/tmp/mg-$1.sock" ] && break; sleep 0.05; done
  API_SOCK=/tmp/mg-$1.sock expect_api 204 PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"/tmp/mg.cpio.gz\", \"boot_args\": \"console=ttyS0 panic=-1 quiet${3:-}\"}"
  API_SOCK=/tmp/mg-$1.sock expect_api 204 PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": $2}"
  API_SOCK=/tmp/mg-$1.sock expect_api 204 PUT /actions '{"action_type": "InstanceStart"}'
}

# receive NAME PORT [ARGS...]: `vireo migrate receive` on tcp:127.0.0.1:PORT, API on
# /tmp/mg-NAME.sock, console in /tmp/mg-NAME.log, log in /tmp/mg-NAME.vlog; waits until it
# listens (20 s); sets PID.
receive() {
  _name=$1 _port=$2
  shift 2
  rm -f "/tmp/mg-$_name.sock" "/tmp/mg-$_name.vlog"
  vireo migrate receive --listen "tcp:127.0.0.1:$_port" --api-sock "/tmp/mg-$_name.sock" \
    --log-path "/tmp/mg-$_name.vlog" "$@" > "/tmp/mg-$_name.log" 2> "/tmp/mg-$_name.err" &
  PID=$!
  pids="$pids $PID"
  wait_tcp_listen "$_port" 20 && return 0
  fail "migrate receive $_name does not listen on $_port after 20 s: $(cat "/tmp/mg-$_name.err")"
}

# last_tick NAME: the last TICK number on NAME's console (0 if none).
last_tick() {
  _t=$(tr -d '\r' < "/tmp/mg-$1.log" | sed -n 's/^TICK \([0-9]*\)$/\1/p' | tail -1)
  echo "${_t:-0}"
}

# runs_on NAME: whether NAME's guest prints 3 more TICKs within 60 s.
runs_on() {
  _from=$(last_tick "$1")
  for _ in $(seq 1 600); do
    [ "$(last_tick "$1")" -ge $((_from + 3)) ] && return 0
    sleep 0.1
  done
  return 1
}

# ticks_on NAME: NAME's guest prints 3 more TICKs within 60 s.
ticks_on() {
  runs_on "$1" || fail "$1's guest printed no 3 TICKs after TICK $(last_tick "$1") in 60 s (it should run on)"
}

# gone PID NAME: the process ends within 60 s with a non-zero status, and its log or stderr gives
# the reason: prints it.
gone() {
  for _ in $(seq 1 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && fail "$2 still runs 60 s after its migration failed"
  wait "$1"
  _rc=$?
  [ $_rc -ne 0 ] || fail "$2 exited 0 after its migration failed"
  _why=$(cat "/tmp/mg-$2.err" "/tmp/mg-$2.vlog" 2>/dev/null | grep -iE 'error|fail|refus|lack|abandon' | tail -1)
  [ -n "$_why" ] || fail "$2 exited $_rc without a reason: $(tail -3 "/tmp/mg-$2.err")"
  echo "  $2 exited $_rc: $_why"
}

# migration FIELD NAME: a field of NAME's GET /migration.
migration() {
  API_SOCK=/tmp/mg-$2.sock API_OUT=/tmp/mg-mig.json api GET /migration > /dev/null
  jq -r ".$1" /tmp/mg-mig.json
}

# wait_bytes NAME BYTES: until NAME's migration has sent BYTES (30 s).
wait_bytes() {
  for _ in $(seq 1 300); do
    [ "$(migration bytes "$1")" -ge "$2" ] 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1's migration did not reach $2 bytes in 30 s: $(cat /tmp/mg-mig.json)"
}

# send_fails OUT ARGS...: `vireo migrate send` from vm a must fail (status 1); OUT keeps its output.
send_fails() {
  _out=$1
  shift
  vireo migrate send --api-sock /tmp/mg-a.sock "$@" > "$_out" 2>&1
  _rc=$?
  [ $_rc -eq 1 ] || fail "vireo migrate send $* exited $_rc, expected 1: $(tail -3 "$_out")"
  echo "  send: $(tail -1 "$_out")"
}

# consecutive SRC DST: the TICK numbers of the two consoles, one after the other, run on by one;
# if not, says where, with the end of the source's console and the start of the destination's.
consecutive() {
  cat "/tmp/mg-$1.log" "/tmp/mg-$2.log" | tr -d '\r' | sed -n 's/^TICK \([0-9]*\)$/\1/p' |
    awk 'NR > 1 && $1 != prev + 1 { printf "TICK %d followed TICK %d\n", $1, prev; bad = 1; exit 1 }
         { prev = $1 } END { if (!bad) printf "%d TICKs", NR }' && return 0
  echo "  the end of $1's console:"
  tail -c 200 "/tmp/mg-$1.log" | cat -A | sed 's/^/    /'
  echo "  the start of $2's console:"
  head -c 200 "/tmp/mg-$2.log" | cat -A | sed 's/^/    /'
  return 1
}

step "boot the counting guest (256 MiB)"
vm a 256
apid=$PID
wait_for /tmp/mg-a.log '^TICK 10$' 120 || fail "the guest printed no TICK 10 in 120 s: $(tail -3 /tmp/mg-a.log)"

step "1. the destination killed mid-transfer"
receive d1 7801
d1=$PID
vireo migrate send --api-sock /tmp/mg-a.sock --to tcp:127.0.0.1:7801 --max-bandwidth-mib 16 \
  > /tmp/mg-send1.out 2>&1 &
send1=$!
wait_bytes a 8000000
kill -9 "$d1"
wait "$d1" 2>/dev/null
wait "$send1"
[ $? -eq 1 ] || fail "vireo migrate send did not fail when its destination was killed: $(tail -2 /tmp/mg-send1.out)"
echo "  send: $(tail -1 /tmp/mg-send1.out)"
[ "$(migration state a)" = failed ] || fail "GET /migration: $(cat /tmp/mg-mig.json), expected failed"
ticks_on a

# through_proxy NAME MODE OFFSET PORT: a destination NAME on PORT + 1 behind vireo-faultproxy
# MODE OFFSET on PORT; the migration from vm a through it must fail, the proxy must have acted,
# and the destination must be gone with its reason.
through_proxy() {
  receive "$1" $(($4 + 1))
  _dpid=$PID
  vireo-faultproxy "$4" $(($4 + 1)) "$2" "$3" > "/tmp/mg-proxy-$1.out" 2>&1 &
  _proxy=$!
  sleep 0.3
  send_fails "/tmp/mg-send-$1.out" --to "tcp:127.0.0.1:$4"
  # The proxy ends once it has acted on a connection. A send that failed before reaching it must
  # not leave the scenario waiting for ever (seen once in a stress run: `vireo migrate send` could
  # not connect to the source's API socket, "Connection", and the scenario hung here until the
  # outer host's 600 s limit): the source's state goes into the failure (the exit trap then makes
  # every VMM log where its vCPUs were).
  for _ in $(seq 1 300); do kill -0 "$_proxy" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$_proxy" 2>/dev/null; then
    kill "$_proxy" 2>/dev/null
    wait "$_proxy" 2>/dev/null
    if kill -0 "$apid" 2>/dev/null; then _src="still runs"; else wait "$apid"; _src="exited with $?"; fi
    fail "vireo-faultproxy $2 $3 got no connection in 30 s: the send failed first ($(tail -1 "/tmp/mg-send-$1.out")); the source $_src"
  fi
  wait "$_proxy" || fail "vireo-faultproxy $2 $3 did not act: $(cat "/tmp/mg-proxy-$1.out")"
  cat "/tmp/mg-proxy-$1.out"
  gone "$_dpid" "$1"
}

step "2. the connection cut 20 MB in"
through_proxy d2 cut 20000000 7802
ticks_on a

step "3. one corrupted byte, 30 MB in"
through_proxy d3 flip 30000000 7804
grep -q checksum /tmp/mg-send-d3.out || fail "the source does not say the stream failed its checksum"
grep -q checksum /tmp/mg-d3.vlog /tmp/mg-d3.err || fail "the destination does not name the checksum"
ticks_on a

step "4. PUT /migration/cancel mid-transfer"
receive d4 7806
d4=$PID
vireo migrate send --api-sock /tmp/mg-a.sock --to tcp:127.0.0.1:7806 --max-bandwidth-mib 16 \
  > /tmp/mg-send4.out 2>&1 &
send4=$!
wait_bytes a 4000000
API_SOCK=/tmp/mg-a.sock expect_api 204 PUT /migration/cancel
wait "$send4"
[ $? -eq 1 ] || fail "vireo migrate send did not fail after the cancel: $(tail -2 /tmp/mg-send4.out)"
echo "  send: $(tail -1 /tmp/mg-send4.out)"
[ "$(migration state a)" = cancelled ] || fail "GET /migration: $(cat /tmp/mg-mig.json), expected cancelled"
gone "$d4" d4
ticks_on a

step "5. a destination lacking CPU features (vireo's software CPU)"
receive d5 7807 --accel soft
d5=$PID
send_fails /tmp/mg-send5.out --to tcp:127.0.0.1:7807
grep -q 'lacks .* CPU feature' /tmp/mg-send5.out || fail "the source does not name the missing CPU features"
gone "$d5" d5
ticks_on a

step "6. after all that, a migration succeeds"
receive d6 7808
d6=$PID
vireo migrate send --api-sock /tmp/mg-a.sock --to tcp:127.0.0.1:7808 > /tmp/mg-send6.out 2>&1 ||
  fail "vireo migrate send failed: $(tail -3 /tmp/mg-send6.out)"
tail -1 /tmp/mg-send6.out
for _ in $(seq 1 300); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$apid" 2>/dev/null && fail "the source still runs 30 s after the hand-over"
wait "$apid" || fail "the source exited with $? after the hand-over"
ticks_on d6
c=$(consecutive a d6) || fail "across the migration: $c"
echo "  source then destination: $c, no repeat, no hole"
{ kill -9 "$d6"; wait "$d6"; } 2>/dev/null

# dirtier_round: steps 7 and 8 on a freshly booted dirtying guest. Answers 2 (after printing
# why) when the source's guest crashed during the auto-converge migration: seen in 2 of 24 such
# migrations in this nested host (a triple fault, after the vCPU had been throttled for a while),
# cause not found yet (issue 14's note); the scenario then runs the round once more and says so
# in make check's list of retries. Answers 3 when the destination's guest did not run after a
# hand-over that succeeded (likewise rerun once). Every other failure fails the scenario.
# PORT: the first of the two ports its destinations listen on (a rerun takes fresh ones: the
# last round's connections may linger in TIME_WAIT).
dirtier_round() {
  _p7=$1 _p8=$(($1 + 1))
  step "boot the guest that dirties 128 MiB flat out (384 MiB)"
  vm b 384 " mg_dirty=0"
  bpid=$PID
  wait_for /tmp/mg-b.log '^TICK 10$' 120 || fail "the dirtying guest printed no TICK 10 in 120 s"

  step "7. 16 MiB/s without auto-converge: no convergence in 10 s, the source runs on"
  receive d7 $_p7
  d7=$PID
  vireo migrate send --api-sock /tmp/mg-b.sock --to tcp:127.0.0.1:$_p7 --max-bandwidth-mib 16 \
    --timeout-s 10 --no-auto-converge > /tmp/mg-send7.out 2>&1
  [ $? -eq 1 ] || fail "the migration without auto-converge ended with $?: $(tail -2 /tmp/mg-send7.out)"
  echo "  send: $(tail -1 /tmp/mg-send7.out)"
  grep -q 'did not converge' /tmp/mg-send7.out || fail "send does not say it did not converge"
  gone "$d7" d7
  ticks_on b

  step "8. 16 MiB/s with auto-converge: the vCPU is throttled until it converges"
  receive d8 $_p8
  d8=$PID
  if ! vireo migrate send --api-sock /tmp/mg-b.sock --to tcp:127.0.0.1:$_p8 --max-bandwidth-mib 16 \
      --timeout-s 240 > /tmp/mg-send8.out 2>&1; then
    if grep -q 'the guest crashed' /tmp/mg-b.err; then
      echo "  the source's guest crashed during the migration: $(grep 'the guest crashed' /tmp/mg-b.err)"
      tr -d '\r' < /tmp/mg-b.log | tail -5 | sed 's/^/    console: /'
      tail -3 /tmp/mg-b.vlog | sed 's/^/    log: /'
      { kill -9 "$d8"; wait "$d8"; } 2>/dev/null
      return 2
    fi
    fail "with auto-converge: $(tail -3 /tmp/mg-send8.out)"
  fi
  sed 's/^/  /' /tmp/mg-send8.out
  grep -q 'throttle [1-9]' /tmp/mg-send8.out || fail "it converged without throttling the vCPU: the guest did not outpace 16 MiB/s"
  for _ in $(seq 1 300); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
  wait "$bpid" || fail "the source exited with $? after the hand-over"
  if ! runs_on d8; then
    # Seen once in CI (stop 29): the hand-over succeeded, but the destination's vCPU then made no
    # exit at all and its guest no TICK, the vCPU at the very rip the source stopped it at. Open
    # (issue 14); its state is reported, and the round runs once more.
    kill -TERM "$d8"
    sleep 2
    echo "  the destination's guest does not run after the auto-converge hand-over:"
    tail -4 /tmp/mg-d8.vlog | cut -c1-300 | sed 's/^/    log: /'
    grep -a 'stopped at rip' /tmp/mg-b.vlog | tail -1 | cut -c1-200 | sed 's/^/    source: /'
    { kill -9 "$d8"; wait "$d8"; } 2>/dev/null
    return 3
  fi
  c=$(consecutive b d8) || fail "across the migration: $c"
  echo "  source then destination: $c, no repeat, no hole"
  return 0
}

dirtier_round 7809
case $? in
  2)
    scenario_retry "the dirtying guest crashed on the source during the auto-converge migration: $(grep -o 'the guest crashed.*' /tmp/mg-b.err | cut -c1-300)"
    dirtier_round 7811 || fail "the auto-converge round failed again (status $?) after a source crash"
    ;;
  3)
    scenario_retry "the destination's guest did not run after the auto-converge hand-over (vCPU: $(grep -a -o 'stopped at rip [0-9a-fx]*' /tmp/mg-d8.vlog | tail -1))"
    dirtier_round 7811 || fail "the auto-converge round failed again (status $?) after a destination that did not run"
    ;;
esac
echo "migration scenario: all checks passed"
