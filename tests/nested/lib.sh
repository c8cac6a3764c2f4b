# Helpers for nested scenarios (sourced; run by bash). Inside the outer host this file
# is /usr/local/lib/vireo-nested.sh; in direct mode tests/nested/run points VIREO_NESTED_LIB at it.

# tests/nested/run passes no environment into the nested host: a scenario argument of the form
# VIREO_SCENARIO_VMM=... or VIREO_QEMU_DRIVE_OPTS=... sets that variable (this file is sourced, so
# "$@" is the scenario's), e.g. tests/nested/run SCENARIO VIREO_SCENARIO_VMM=qemu.
for _a in "$@"; do
  case $_a in VIREO_SCENARIO_VMM=*|VIREO_QEMU_DRIVE_OPTS=*) export "$_a" ;; esac
done

# Scenarios run under bash in both modes, so PATH finds iproute2's ip and e2fsprogs' mke2fs before
# busybox's (host-init); these names stay for the scenarios that spell the real tool out.
IP=/usr/bin/ip          # iproute2: tuntap, neigh
MKE2FS=/usr/sbin/mke2fs # e2fsprogs: -t ext4, -d DIR

# step NAME: announce a step so a hang or failure says where it happened.
step() {
  VIREO_STEP=$1
  echo "== step: $1"
}

fail() {
  echo "FAIL${VIREO_STEP:+ [$VIREO_STEP]}: $*"
  exit 1
}

# descendants PID: PID's children, their children, and so on (one per line).
descendants() {
  for _c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$_c"
    descendants "$_c"
  done
}

# thread_report PID...: every thread of each PID: its name, scheduler state (R running, S/D
# waiting), wait channel and kernel stack (root reads /proc/*/stack). Taken before a hung VMM is
# stopped, it tells a vCPU still in KVM_RUN from one blocked on a lock (futex_wait) or a write.
thread_report() {
  for _p in "$@"; do
    [ -d "/proc/$_p" ] || continue
    echo "  process $_p: $(tr '\0' ' ' < "/proc/$_p/cmdline" | cut -c1-160)"
    for _t in /proc/"$_p"/task/*; do
      _st=$(sed 's/.*) //' "$_t/stat" 2>/dev/null | cut -d' ' -f1)
      echo "    thread ${_t##*/} $(cat "$_t/comm" 2>/dev/null): state $_st, wchan $(cat "$_t/wchan" 2>/dev/null)"
      head -8 "$_t/stack" 2>/dev/null | sed 's/^/      /'
    done
  done
}

# run_timed SECONDS LOG CMD...: runs CMD with output to LOG (and the console). After SECONDS it
# gets SIGTERM (vireo then stops in order and, with --verbose, prints where each vCPU was), and
# SIGKILL 5 s later; before the SIGTERM, LOG.threads gets the thread_report of CMD's processes,
# and if one was still there for the SIGKILL, it is printed (the VMM hung, not only its guest).
# Returns CMD's status, or 124 when it had to be stopped.
run_timed() {
  _secs=$1 _log=$2
  shift 2
  : > "$_log.timeout"
  rm -f "$_log.killed" "$_log.threads"
  "$@" > "$_log" 2>&1 &
  _pid=$!
  ( sleep "$_secs"; kill -0 $_pid 2>/dev/null || exit 0; echo yes > "$_log.timeout"
    _procs="$_pid $(descendants $_pid)"
    thread_report $_procs > "$_log.threads" 2>&1
    kill -TERM $_procs 2>/dev/null; sleep 5
    for _p in $_procs; do kill -0 "$_p" 2>/dev/null && echo "$_p" >> "$_log.killed"; done
    kill -KILL $_procs 2>/dev/null ) &
  _wd=$!
  wait $_pid
  _rc=$?
  # After a timeout the watchdog still has CMD's other processes to stop: wait for it.
  [ -s "$_log.timeout" ] || kill $_wd 2>/dev/null
  wait $_wd 2>/dev/null
  cat "$_log"
  if [ -s "$_log.timeout" ]; then
    if [ -s "$_log.killed" ]; then
      echo "the VMM did not end within 5 s of SIGTERM (killed); its threads before the SIGTERM:"
      cat "$_log.threads"
    fi
    echo "TIMEOUT${VIREO_STEP:+ [$VIREO_STEP]}: '$*' still running after ${_secs}s, stopped"
    return 124
  fi
  return "$_rc"
}

# scenario_retry WHY: says that the scenario runs a step again after WHY (a hang of a VMM that is
# not vireo, e.g. QEMU booting a guest image): tests/nested/run puts the line in make check's
# list of retries, so a rerun is never silent.
scenario_retry() {
  echo "VIREO-SCENARIO-RETRY: ${VIREO_STEP:+[$VIREO_STEP] }$*"
}

# expect_line FILE PATTERN: FILE must contain a line matching the extended regex PATTERN.
expect_line() {
  tr -d '\r' < "$1" | grep -E -q "$2" || fail "expected a line matching '$2' in $1"
}

# vireo_boot NAME SECONDS SCENARIO [VIREO_ARGS...]: boots the default guest (cloud kernel) under
# vireo with SCENARIO appended as /scenario.sh; console output goes to /tmp/NAME.log and the
# screen. Returns vireo's exit status (124 if it had to be stopped). VIREO_CMDLINE overrides the
# kernel command line. --verbose makes vireo end with its exit counters and each vCPU's last RIP,
# which is what a hang report needs. With VIREO_SCENARIO_VMM=qemu the same boot runs under QEMU
# (see vmm_run).
vireo_boot() {
  _name=$1 _secs=$2 _scen=$3
  shift 3
  add-scenario "$GUEST/cloud/initramfs.cpio.gz" "$_scen" "/tmp/$_name.cpio.gz" ||
    fail "add-scenario failed"
  run_timed "$_secs" "/tmp/$_name.log" vmm_run --kernel "$GUEST/cloud/vmlinuz" \
    --initrd "/tmp/$_name.cpio.gz" \
    --cmdline "${VIREO_CMDLINE:-console=ttyS0 panic=-1 quiet}" --verbose "$@"
}

# In direct mode the static vireo-iotool comes from the build tree (the outer host has it on PATH).
if [ "${VIREO_NESTED_MODE:-}" = direct ] && [ -n "${VIREO_NESTED_LIB:-}" ]; then
  PATH=$(cd "$(dirname "$VIREO_NESTED_LIB")/../.." && pwd)/build/guest-tools:$PATH
fi

# vmm_run VIREO_RUN_ARGS...: `vireo run VIREO_RUN_ARGS...`; with VIREO_SCENARIO_VMM=qemu, the same
# machine under QEMU instead (-M q35 -accel kvm), a cross-check for the scenarios themselves:
# a scenario that fails under QEMU is wrong, not vireo. The vireo options translate as
#   --kernel/--initrd/--cmdline    -kernel/-initrd/-append (no --cmdline: vireo's default, with
#                                  console=hvc0 under --console virtio)
#   --cpus N, --memory SIZE        -smp N, -m SIZE (defaults 1 and 512M, as vireo's)
#   --console stdio|file:P|virtio  -serial stdio | -serial file:P | virtio-serial-pci + virtconsole
#                                  on stdio (the UART stays, unconnected)
#   --disk path=F[,readonly=on][,serial=S]   -drive file=F,format=raw,if=none + virtio-blk-pci
#   --net tap=T[,mac=M]            -netdev tap,ifname=T,script=no,downscript=no + virtio-net-pci
#                                  (romfile= : no PXE ROM, Debian ships it in ipxe-qemu)
#   --verbose, --on-reboot exit    ignored (QEMU runs with -no-reboot)
# and a virtio-rng-pci is always present, as in vireo. VIREO_QEMU_DRIVE_OPTS adds -drive options
# (e.g. cache=none,aio=native). Only the options the scenarios use are known; others fail.
vmm_run() {
  if [ "${VIREO_SCENARIO_VMM:-vireo}" = vireo ]; then
    vireo run "$@"
    return
  fi
  [ "$VIREO_SCENARIO_VMM" = qemu ] || {
    echo "vmm_run: VIREO_SCENARIO_VMM must be vireo or qemu, not '$VIREO_SCENARIO_VMM'"
    return 2
  }
  _n=$# _cmdline= _has_cmdline=0 _console=stdio _cpus=1 _mem=512M _ndisk=0 _nnet=0
  # Translated arguments are appended after the originals, which are shifted away one by one.
  while [ $_n -gt 0 ]; do
    _opt=$1 _val=${2-}
    shift
    _n=$((_n - 1))
    case $_opt in
      --verbose) continue ;;
      --kernel|--initrd|--cmdline|--cpus|--memory|--console|--disk|--net|--on-reboot)
        [ $_n -gt 0 ] || { echo "vmm_run: $_opt needs a value"; return 2; }
        shift
        _n=$((_n - 1))
        ;;
      *) echo "vmm_run: no QEMU translation for '$_opt'"; return 2 ;;
    esac
    case $_opt in
      --kernel) set -- "$@" -kernel "$_val" ;;
      --initrd) set -- "$@" -initrd "$_val" ;;
      --cmdline) _cmdline=$_val _has_cmdline=1 ;;
      --cpus) _cpus=$_val ;;
      --memory) _mem=$_val ;;
      --console) _console=$_val ;;
      --on-reboot) [ "$_val" = exit ] || { echo "vmm_run: no QEMU translation for --on-reboot $_val"; return 2; } ;;
      --disk)
        _path= _extra= _dev=
        _oldifs=$IFS
        IFS=,
        for _kv in $_val; do
          case $_kv in
            path=*) _path=${_kv#path=} ;;
            readonly=on) _extra=$_extra,readonly=on ;;
            readonly=off) ;;
            direct=on) _extra=$_extra,cache=none ;;
            direct=off) ;;
            serial=*) _dev=$_dev,serial=${_kv#serial=} ;;
            *) IFS=$_oldifs; echo "vmm_run: unknown --disk key '$_kv'"; return 2 ;;
          esac
        done
        IFS=$_oldifs
        set -- "$@" -drive "file=$_path,format=raw,if=none,id=disk$_ndisk$_extra${VIREO_QEMU_DRIVE_OPTS:+,$VIREO_QEMU_DRIVE_OPTS}" \
          -device "virtio-blk-pci,drive=disk$_ndisk$_dev"
        _ndisk=$((_ndisk + 1))
        ;;
      --net)
        _tap= _dev=
        _oldifs=$IFS
        IFS=,
        for _kv in $_val; do
          case $_kv in
            tap=*) _tap=${_kv#tap=} ;;
            mac=*) _dev=$_dev,mac=${_kv#mac=} ;;
            *) IFS=$_oldifs; echo "vmm_run: unknown --net key '$_kv'"; return 2 ;;
          esac
        done
        IFS=$_oldifs
        set -- "$@" -netdev "tap,id=net$_nnet,ifname=$_tap,script=no,downscript=no" \
          -device "virtio-net-pci,netdev=net$_nnet,romfile=$_dev"
        _nnet=$((_nnet + 1))
        ;;
    esac
  done
  case $_console in
    stdio) set -- "$@" -serial stdio ;;
    file:*) set -- "$@" -serial "$_console" ;;
    virtio)
      set -- "$@" -serial null -device virtio-serial-pci -chardev stdio,id=hvc,signal=off \
        -device virtconsole,chardev=hvc
      ;;
    *) echo "vmm_run: unknown --console '$_console'"; return 2 ;;
  esac
  if [ $_has_cmdline -eq 0 ]; then
    _cmdline="console=ttyS0 reboot=acpi panic=-1 quiet"
    [ "$_console" = virtio ] && _cmdline="console=hvc0 reboot=acpi panic=-1 quiet"
  fi
  qemu-system-x86_64 -accel kvm -M q35 -cpu host -nodefaults -no-user-config -display none \
    -no-reboot -smp "$_cpus" -m "$_mem" -device virtio-rng-pci -append "$_cmdline" "$@"
}

# vmm_name: which VMM vmm_run runs, for messages.
vmm_name() {
  echo "${VIREO_SCENARIO_VMM:-vireo}"
}

# guest_ok NAME RC: the boot logged in /tmp/NAME.log ended well: the VMM exited 0, the guest
# reached userspace and its scenario exited 0. Otherwise fails with the guest's own failure
# message (`GUEST-FAIL [step]: ...`, see tests/guest/guest-lib.sh) when it printed one.
guest_ok() {
  _log=/tmp/$1.log
  _gf=$(tr -d '\r' < "$_log" | grep -m1 '^GUEST-FAIL' || true)
  [ -z "$_gf" ] || fail "in the guest: ${_gf#GUEST-FAIL }"
  tr -d '\r' < "$_log" | grep -q '^VIREO-GUEST-READY$' ||
    fail "the guest never reached userspace ($(vmm_name) exited with $2)"
  _st=$(tr -d '\r' < "$_log" | sed -n 's/^VIREO-SCENARIO-EXIT \([0-9]*\).*/\1/p' | tail -1)
  [ -n "$_st" ] || fail "the guest's scenario did not finish ($(vmm_name) exited with $2)"
  [ "$_st" -eq 0 ] || fail "the guest's scenario exited with $_st"
  [ "$2" -eq 0 ] || fail "$(vmm_name) exited with $2 after the guest powered off (expected 0)"
}

# guest_value LOG KEY: the value of the last `KEY=value` line the guest printed.
guest_value() {
  tr -d '\r' < "$1" | sed -n "s/^$2=//p" | tail -1
}

# scratch_fs SIZE_MIB: sets SCRATCH to a directory on an ext4 file system for disk images (O_DIRECT
# works there, unlike on the initramfs root's tmpfs). In the nested host: a RAM disk (brd) of
# SIZE_MIB mounted at /scratch; in direct mode: a directory in the scenario's working directory.
scratch_fs() {
  if [ "${VIREO_NESTED_MODE:-}" != nested ]; then
    SCRATCH=$PWD/scratch
    mkdir -p "$SCRATCH"
    return 0
  fi
  SCRATCH=/scratch
  grep -q ' /scratch ' /proc/mounts && return 0
  insmod /lib/modules/ondemand/brd.ko rd_nr=1 rd_size=$(($1 * 1024)) ||
    fail "cannot load brd for the scratch file system"
  $MKE2FS -q -F -t ext4 -E lazy_itable_init=0,lazy_journal_init=0 /dev/ram0 ||
    fail "mke2fs -t ext4 /dev/ram0 failed"
  mkdir -p /scratch
  mount -t ext4 /dev/ram0 /scratch || fail "cannot mount the scratch file system"
}

# tap_up NAME ADDR/PREFIX: a tap device for a VMM to open, with the host's (link-local) address.
tap_up() {
  $IP link del "$1" 2>/dev/null
  $IP tuntap add dev "$1" mode tap || fail "ip tuntap add dev $1 failed"
  $IP addr add "$2" dev "$1" || fail "ip addr add $2 dev $1 failed"
  $IP link set "$1" up || fail "ip link set $1 up failed"
}

# api METHOD PATH [BODY]: sends a request to the API socket $API_SOCK (default: the scenario's
# $sock) and prints the HTTP status; the body goes to ${API_OUT:-/tmp/api.out}. BODY is sent as
# JSON. Gives up after 60 s (a hung VMM fails the scenario instead of stalling it).
api() {
  curl -s -m 60 -o "${API_OUT:-/tmp/api.out}" -w '%{http_code}' --unix-socket "${API_SOCK:-$sock}" \
    -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} "http://localhost$2"
}

# expect_api STATUS METHOD PATH [BODY]: api, failing the scenario unless it answers STATUS.
expect_api() {
  _want=$1
  shift
  _got=$(api "$@")
  [ "$_got" = "$_want" ] || fail "$1 $2 answered $_got, expected $_want: $(cat "${API_OUT:-/tmp/api.out}")"
}

# wait_for FILE REGEX SECONDS: succeeds once a line of FILE (carriage returns dropped: console
# output) matches the extended REGEX; fails after SECONDS. FILE may not exist yet.
wait_for() {
  _n=$(($3 * 10))
  while [ $_n -gt 0 ]; do
    tr -d '\r' 2>/dev/null < "$1" | grep -qE -- "$2" && return 0
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}

# wait_while_alive PID FILE REGEX SECONDS: wait_for, but gives up (status 2) as soon as process
# PID has ended, instead of waiting out SECONDS for a VMM that is gone.
wait_while_alive() {
  _n=$(($4 * 10))
  while [ $_n -gt 0 ]; do
    tr -d '\r' 2>/dev/null < "$2" | grep -qE -- "$3" && return 0
    kill -0 "$1" 2>/dev/null || {
      tr -d '\r' 2>/dev/null < "$2" | grep -qE -- "$3" && return 0
      return 2
    }
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}

# counting_initramfs OUT MICROSECONDS [KEY]: the cloud initramfs with a scenario that prints
# "TICK n" (n = 1, 2, ...) every MICROSECONDS, as OUT: the guest of the migration and snapshot
# scenarios and benches. With KEY, a kernel argument KEY=RATE also starts `vireo-iotool dirty
# 128M RATE` (or the size in KEY_size=SIZE) beside it: a guest that dirties memory.
counting_initramfs() {
  {
    if [ -n "${3:-}" ]; then
      echo "rate=\$(sed -n 's/.*$3=\\([^ ]*\\).*/\\1/p' /proc/cmdline)"
      echo "size=\$(sed -n 's/.*${3}_size=\\([^ ]*\\).*/\\1/p' /proc/cmdline)"
      echo 'if [ -n "$rate" ]; then vireo-iotool dirty "${size:-128M}" "$rate" & fi'
    fi
    echo 'i=0'
    echo 'while :; do'
    echo '  i=$((i + 1))'
    echo '  echo "TICK $i"'
    echo "  usleep $2"
    echo 'done'
  } > "/tmp/counting-$$.sh"
  add-scenario "$GUEST/cloud/initramfs.cpio.gz" "/tmp/counting-$$.sh" "$1" || fail "add-scenario failed"
}

# wait_tcp_listen PORT SECONDS: until a socket listens on 127.0.0.1:PORT (/proc/net/tcp, state
# 0A: no process is started per poll); status 1 after SECONDS.
wait_tcp_listen() {
  _hex=$(printf '0100007F:%04X' "$1")
  for _ in $(seq 1 $(($2 * 20))); do
    grep -q " $_hex 00000000:0000 0A " /proc/net/tcp && return 0
    sleep 0.05
  done
  return 1
}

# Benchmark helpers (tests/bench/*-bench.sh). Results are lines "PREFIX... FIELD=N ..." in a file.
# bench_median FILE PREFIX FIELD: the median of FIELD over the lines that start with PREFIX, or
# n/a when there is none.
bench_median() {
  grep "^$2" "$1" | sed -n "s/.* $3=\([0-9]*\).*/\1/p" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
# bench_ratio A B: A / B with two decimals (n/a if either is).
bench_ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; fi; }
# bench_mib BYTES: in MiB, one decimal.
bench_mib() { [ "$1" = n/a ] && echo n/a || awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# bench_no_leftovers: fails the bench if a VMM of an earlier round still runs (the outer host's
# own vireo-kvm-keeper aside).
bench_no_leftovers() {
  _left=$(ps -o pid,comm 2>/dev/null | awk '$2 ~ /^(vireo|qemu-system-x86)/ && $2 !~ /^vireo-kvm-keep/ { print $1 }' | tr '\n' ' ')
  [ -z "$_left" ] || fail "VMM processes left over from the previous round: $_left"
}

# now_ms: sets NOW_MS to the milliseconds since boot (/proc/uptime: 10 ms resolution; no process
# is started, so it can sit in a polling loop; busybox date has no %N).
now_ms() {
  read -r _up _ < /proc/uptime
  NOW_MS=$(( ${_up%.*} * 1000 + (1${_up#*.} - 100) * 10 ))
}

# QMP sessions with QEMUs started with -qmp unix:SOCKET,server=on,wait=off. One persistent
# connection per session (socat reading a FIFO that a sleeping writer keeps open), so replies are
# never lost to a closed connection and events are kept in /tmp/qmp-NAME.out.
# qmp_open NAME SOCKET: connects (waits up to 10 s for SOCKET) and negotiates capabilities.
qmp_open() {
  _qn=/tmp/qmp-$1
  _qi=0
  while [ ! -S "$2" ]; do
    _qi=$((_qi + 1))
    [ $_qi -lt 100 ] || { echo "qmp_open: no QMP socket $2 after 10 s"; return 1; }
    sleep 0.1
  done
  rm -f "$_qn.in"
  mkfifo "$_qn.in"
  : > "$_qn.out"
  socat - "UNIX-CONNECT:$2" < "$_qn.in" > "$_qn.out" 2>&1 &
  echo $! > "$_qn.socat"
  sleep 100000 > "$_qn.in" &
  echo $! > "$_qn.holder"
  qmp "$1" '{"execute": "qmp_capabilities"}' > /dev/null
}

# qmp NAME JSON: sends one command, prints its reply line ({"return": ...} or {"error": ...});
# returns 1 on an error reply or no reply within 30 s.
qmp() {
  _qn=/tmp/qmp-$1
  kill -0 "$(cat "$_qn.socat" 2>/dev/null)" 2>/dev/null || { echo "qmp: session $1 is closed"; return 1; }
  _qc=$(grep -c -E '^\{"(return|error)"' "$_qn.out")
  echo "$2" > "$_qn.in"
  _qi=0
  while [ "$(grep -c -E '^\{"(return|error)"' "$_qn.out")" -le "$_qc" ]; do
    _qi=$((_qi + 1))
    [ $_qi -lt 1500 ] || { echo "qmp: no reply to $2 within 30 s"; return 1; }
    sleep 0.02
  done
  _qr=$(grep -E '^\{"(return|error)"' "$_qn.out" | sed -n "$((_qc + 1))p")
  echo "$_qr"
  case $_qr in '{"error"'*) return 1 ;; esac
  return 0
}

# qmp_close NAME: ends the session (not QEMU).
qmp_close() {
  _qn=/tmp/qmp-$1
  kill "$(cat "$_qn.holder" 2>/dev/null)" "$(cat "$_qn.socat" 2>/dev/null)" 2>/dev/null
  rm -f "$_qn.in" "$_qn.holder" "$_qn.socat"
}
