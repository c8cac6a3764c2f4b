#!/usr/bin/env bash
# cli.jailer: vireo-jailer on this machine (as root).
#  1) Refusals, each with a message naming the problem, exit status != 0 and nothing created: bad
#     ids, an exec file that is a link / missing / a folder, a chroot base that is a link, an
#     existing jail, an absent network namespace, --cgroup-version 1, a cgroup controller the v2
#     hierarchy lacks; a cgroup value the kernel refuses rolls back the jail and the cgroup.
#  2) A jailed exec file (vireo-jail-testee, dynamically linked like vireo): the jail's layout
#     (copied exec file and libraries, device nodes owned by uid:gid, /run), its root is the jail,
#     uid/gid dropped, PID 1 of a new PID namespace with its pid in <root>/<exec>.pid, rlimits,
#     empty environment, no inherited descriptors, `--id <id>` and the arguments after `--`,
#     cgroup v2 placement (cgroup.procs, values read back, a controller enabled in the parents
#     when the host's cgroup2 has one free); without --new-pid-ns the jailer's own pid execs;
#     --daemonize: a new session, standard I/O on /dev/null; --netns NAME.
#  3) Firecracker's workflow with vireo itself: the API answers on <root>/run/firecracker.socket
#     and a probe kernel hard-linked into the jail runs and powers off (needs /dev/kvm: SKIP
#     otherwise; tests/nested/scenarios/jailer.sh boots Linux that way with memory/cpu limits).
# Usage: jailer.sh BUILD_DIR
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: jailer.sh BUILD_DIR}" && pwd)
jailer=$build/vireo-jailer
testee=$build/tests/vireo-jail-testee
. "$top/tests/cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "jailer.sh must run as root"; exit 1; }
for f in "$jailer" "$testee" "$build/vireo"; do
  [ -x "$f" ] || { echo "missing $f (build the vireo-jailer and vireo-jail-testee targets)"; exit 1; }
done
tmp=$(mktemp -d /tmp/vireo-jailer.XXXXXX)
chmod 755 "$tmp"
base=$tmp/jails
ids=vireo-jailer-test-$$  # the parent cgroup, removed at exit
cgmount=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
# The host's root cgroup.subtree_control as it was: restored at exit.
root_subtree=$([ -n "$cgmount" ] && cat "$cgmount/cgroup.subtree_control")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  sleep 0.2
  if [ -n "$cgmount" ] && [ -d "$cgmount/$ids" ]; then
    find "$cgmount/$ids" -depth -type d -exec rmdir {} + 2>/dev/null
  fi
  if [ -n "$cgmount" ]; then
    for c in $(cat "$cgmount/cgroup.subtree_control"); do
      [[ " $root_subtree " == *" $c "* ]] || echo "-$c" > "$cgmount/cgroup.subtree_control"
    done
  fi
  ip netns del "$netns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns=vireo-jailer-test-$$
uid=12345
gid=12346
skips=0
skip() { echo "SKIP ($*)"; skips=$((skips + 1)); }
# same_file A B: both exist and are the same inode.
same_file() { local a b; a=$(stat -L -c %d:%i "$1") && b=$(stat -L -c %d:%i "$2") && [ "$a" = "$b" ]; }
# other_ns / same_ns PID NS: PID's namespace NS is (not) this shell's.
other_ns() { local a b; a=$(readlink "/proc/$1/ns/$2") && b=$(readlink "/proc/self/ns/$2") && [ "$a" != "$b" ]; }
same_ns() { local a b; a=$(readlink "/proc/$1/ns/$2") && b=$(readlink "/proc/self/ns/$2") && [ "$a" = "$b" ]; }

# refused NAME PATTERN ARGS...: the jailer exits != 0, says PATTERN, and $base is untouched.
refused() {
  local name=$1 pattern=$2
  shift 2
  local before after
  before=$(find "$base" 2>/dev/null | sort | md5sum)
  "$jailer" "$@" > "$tmp/refused.log" 2>&1
  local rc=$?
  after=$(find "$base" 2>/dev/null | sort | md5sum)
  check "$name: refused (exit $rc)" test $rc -ne 0
  check "$name: the message says '$pattern'" grep -q -- "$pattern" "$tmp/refused.log"
  check "$name: nothing created" test "$before" = "$after"
  [ $rc -ne 0 ] && grep -q -- "$pattern" "$tmp/refused.log" || cat "$tmp/refused.log"
}
common=(--uid $uid --gid $gid --chroot-base-dir "$base")

# ---- 1) refusals ----
refused "an id with '/'" "only letters, digits and '-'" --id bad/id --exec-file "$testee" "${common[@]}"
refused "an id with '.'" "only letters, digits and '-'" --id a.b --exec-file "$testee" "${common[@]}"
refused "a 65-character id" "1 to 64 characters" --id "$(printf 'a%.0s' $(seq 65))" \
  --exec-file "$testee" "${common[@]}"
check "the base was never created" test ! -e "$base"
ln -s "$testee" "$tmp/testee-link"
refused "a symlinked exec file" "is a symbolic link" --id ok-1 --exec-file "$tmp/testee-link" "${common[@]}"
refused "a missing exec file" "$tmp/nonexistent: No such file" --id ok-1 --exec-file "$tmp/nonexistent" "${common[@]}"
mkdir "$tmp/adir"
refused "a folder as exec file" "is not a regular file" --id ok-1 --exec-file "$tmp/adir" "${common[@]}"
mkdir -p "$tmp/realbase"
ln -s "$tmp/realbase" "$tmp/baselink"
refused "a symlinked chroot base" "--chroot-base-dir $tmp/baselink is a symbolic link" --id ok-1 \
  --exec-file "$testee" --uid $uid --gid $gid --chroot-base-dir "$tmp/baselink"
check "... nothing created in the link's target" test -z "$(ls -A "$tmp/realbase")"
mkdir -p "$base/vireo-jail-testee/taken"
refused "an existing jail" "jail $base/vireo-jail-testee/taken already exists" --id taken \
  --exec-file "$testee" "${common[@]}"
check "... the existing jail is left as it was" test -z "$(ls -A "$base/vireo-jail-testee/taken")"
refused "a missing --netns" "--netns /var/run/netns/$netns: No such file" --id ok-1 \
  --exec-file "$testee" "${common[@]}" --netns "$netns"
refused "--cgroup-version 1" "--cgroup-version 1: not supported" --id ok-1 --exec-file "$testee" \
  "${common[@]}" --cgroup-version 1 --cgroup cpu.shares=2
refused "a bad --resource-limit" "unknown resource 'cpu'" --id ok-1 --exec-file "$testee" \
  "${common[@]}" --resource-limit cpu=1
if [ -n "$cgmount" ] && ! grep -qw memory "$cgmount/cgroup.controllers"; then
  refused "a controller the cgroup2 hierarchy lacks" "the 'memory' controller is not available" \
    --id ok-1 --exec-file "$testee" "${common[@]}" --parent-cgroup "$ids" --cgroup memory.max=1G
  check "... no cgroup created" test ! -e "$cgmount/$ids"
fi
if [ -n "$cgmount" ]; then
  # Passes every check, then the kernel refuses the value: the jail and cgroup are rolled back.
  "$jailer" --id rolled-back --exec-file "$testee" "${common[@]}" --parent-cgroup "$ids" \
    --cgroup cgroup.max.descendants=lots > "$tmp/rb.log" 2>&1
  rc=$?
  check "a value the cgroup refuses: exit $rc != 0" test $rc -ne 0
  check "... named in the message" grep -q "cgroup.max.descendants=lots" "$tmp/rb.log"
  check "... the jail is removed" test ! -e "$base/vireo-jail-testee/rolled-back"
  check "... the cgroup is removed" test ! -e "$cgmount/$ids"
fi

# ---- 2) a jailed testee ----
# With a free v2 controller (hugetlb on this machine's hybrid layout), the jailer must enable it
# in the parents' cgroup.subtree_control for its file to exist.
cgargs=()
hugetlb=0
if [ -z "$cgmount" ]; then
  skip "no cgroup2 mounted: cgroup placement not checked here"
else
  cgargs=(--parent-cgroup "$ids" --cgroup cgroup.max.descendants=3)
  if grep -qw hugetlb "$cgmount/cgroup.controllers" && [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
    cgargs+=(--cgroup hugetlb.2MB.max=4194304)
    hugetlb=1
  else
    skip "no free v2 controller on this host: controller enabling is checked in the nested host"
  fi
fi
exec 7> "$tmp/leaked-fd"
FOO=leak "$jailer" --id jail-a "${common[@]}" --exec-file "$testee" --new-pid-ns \
  --resource-limit fsize=1048576 --resource-limit no-file=512 "${cgargs[@]}" \
  -- --api-sock /run/testee.sock --extra-arg > "$tmp/a.log" 2>&1
rc=$?
exec 7>&-
root=$base/vireo-jail-testee/jail-a/root
check "--new-pid-ns: the jailer exits 0 after the fork" test $rc -eq 0
[ $rc -eq 0 ] || cat "$tmp/a.log"
check "the pid file is in the jail" test -s "$root/vireo-jail-testee.pid"
pid=$(cat "$root/vireo-jail-testee.pid" 2>/dev/null)
pids+=("${pid:-0}")
check "the testee's socket appears in the jail's /run" wait_socket "$root/run/testee.sock"
check "the pid file names the testee (its exe is the jail's copy)" same_file "/proc/$pid/exe" "$root/vireo-jail-testee"
st=/proc/$pid/status
check "Uid is $uid (real, effective, saved, fs)" grep -qP "^Uid:\t$uid\t$uid\t$uid\t$uid$" "$st"
check "Gid is $gid" grep -qP "^Gid:\t$gid\t$gid\t$gid\t$gid$" "$st"
check "no supplementary groups" grep -qP '^Groups:\s*$' "$st"
check "no capabilities" grep -qP '^CapEff:\t0+$' "$st"
check "NoNewPrivs" grep -qP '^NoNewPrivs:\t1$' "$st"
check "PID 1 of a new PID namespace (NSpid $pid 1)" grep -qP "^NSpid:\t$pid\t1$" "$st"
check "its root is the jail" same_file "/proc/$pid/root/" "$root/"
check "its mount namespace is not the host's" other_ns "$pid" mnt
check "the host's old root is detached: one mount visible (the jail)" \
  test "$(wc -l < "/proc/$pid/mountinfo")" = 1
check "fsize limit 1048576" grep -qE '^Max file size +1048576 +1048576 ' "/proc/$pid/limits"
check "no-file limit 512" grep -qE '^Max open files +512 +512 ' "/proc/$pid/limits"
check "the environment is empty" test -e "/proc/$pid/environ" -a ! -s "/proc/$pid/environ"
check "the inherited descriptor 7 is not passed on" \
  bash -c "ls -l /proc/$pid/fd > '$tmp/fds' && grep -q socket: '$tmp/fds' && ! grep -q leaked-fd '$tmp/fds'"
check "--id <id> and the arguments after -- are passed" \
  grep -qx "testee args: --id jail-a --api-sock /run/testee.sock --extra-arg" "$tmp/a.log"
check "the exec file is a copy, not a link" \
  test "$(stat -c %i "$root/vireo-jail-testee")" != "$(stat -c %i "$testee")" -a \
  "$(md5sum < "$root/vireo-jail-testee")" = "$(md5sum < "$testee")"
check "the copy is not writable by others and not set-id" \
  test "$(stat -c %a "$root/vireo-jail-testee")" = "$(printf '%o' $((0$(stat -c %a "$testee") & 0755)))"
interp=$(readelf -l "$testee" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
check "the loader $interp is in the jail" test -f "$root$interp"
libc=$(ldd "$testee" | awk '/libc.so/ {print $3}')
check "libc ($libc) is in the jail at its path" cmp -s "$libc" "$root$libc"
libstdcxx=$(ldd "$testee" | awk '/libstdc\+\+/ {print $3}')
check "libstdc++ ($libstdcxx) is in the jail at its path" cmp -s "$libstdcxx" "$root$libstdcxx"
check "no ld.so.cache copied (every library is on the loader's default path)" \
  test -f "$root$libc" -a ! -e "$root/etc/ld.so.cache"
for node in kvm:10:232:/dev/kvm tun:10:200:/dev/net/tun urandom:1:9:/dev/urandom; do
  IFS=: read -r name major minor host <<< "$node"
  if [ -c "$host" ]; then
    major=$(printf '%d' "0x$(stat -c %t "$host")")
    minor=$(printf '%d' "0x$(stat -c %T "$host")")
  fi
  check "/dev/$name: char $major:$minor, 0600, $uid:$gid" \
    test "$(stat -c '%F %t %T %a %u %g' "$root${host}")" = \
    "character special file $(printf '%x %x' "$major" "$minor") 600 $uid $gid"
done
check "the jail's / and /run belong to $uid:$gid, mode 700" \
  test "$(stat -c '%u:%g %a' "$root" "$root/run")" = "$uid:$gid 700
$uid:$gid 700"
if [ -n "$cgmount" ]; then
  cg=$cgmount/$ids/jail-a
  check "cgroup: /proc/PID/cgroup names <parent>/<id>" grep -qx "0::/$ids/jail-a" "/proc/$pid/cgroup"
  check "cgroup: the pid is in $cg/cgroup.procs" grep -qx "$pid" "$cg/cgroup.procs"
  check "cgroup: cgroup.max.descendants reads back 3" test "$(cat "$cg/cgroup.max.descendants")" = 3
  if [ $hugetlb = 1 ]; then
    check "cgroup: hugetlb enabled in the parents' subtree_control" \
      bash -c "grep -qw hugetlb '$cgmount/cgroup.subtree_control' && grep -qw hugetlb '$cgmount/$ids/cgroup.subtree_control'"
    check "cgroup: hugetlb.2MB.max reads back 4194304" test "$(cat "$cg/hugetlb.2MB.max")" = 4194304
  fi
fi
refused "the same id again" "already exists" --id jail-a --exec-file "$testee" "${common[@]}"
kill -TERM "$pid"
for _ in $(seq 1 100); do [ -e "/proc/$pid" ] || break; sleep 0.05; done
check "the testee ends on SIGTERM" test ! -e "/proc/$pid"

# Without --new-pid-ns the jailer itself becomes the exec file; --daemonize gives it a session;
# --netns NAME joins `ip netns add NAME`'s namespace.
ip netns add "$netns"
"$jailer" --id jail-b "${common[@]}" --exec-file "$testee" --daemonize --netns "$netns" > "$tmp/b.log" 2>&1 &
bpid=$!
pids+=("$bpid")
rootb=$base/vireo-jail-testee/jail-b/root
check "without --new-pid-ns: the socket appears" wait_socket "$rootb/run/firecracker.socket"
check "... the jailer's pid runs the copy" same_file "/proc/$bpid/exe" "$rootb/vireo-jail-testee"
check "... no pid file" test ! -e "$rootb/vireo-jail-testee.pid"
check "... the host's PID namespace" same_ns "$bpid" pid
check "... its own mount namespace" other_ns "$bpid" mnt
check "--netns $netns: its network namespace" same_file "/proc/$bpid/ns/net" "/var/run/netns/$netns"
check "--daemonize: its own session" test "$(awk '{print $6}' "/proc/$bpid/stat")" = "$bpid"
check "--daemonize: stdin/stdout/stderr on /dev/null" \
  test "$(readlink "/proc/$bpid/fd/0") $(readlink "/proc/$bpid/fd/1") $(readlink "/proc/$bpid/fd/2")" = "/dev/null /dev/null /dev/null"
check "--daemonize: nothing written to the caller's output" test ! -s "$tmp/b.log"
check "default no-file limit 2048 (Firecracker's)" grep -qE '^Max open files +2048 +2048 ' "/proc/$bpid/limits"
kill -TERM "$bpid"
wait "$bpid"

# ---- 3) vireo itself, Firecracker's workflow ----
"$top/tests/lib/make-probe-kernel" "$tmp/probe.elf"
"$jailer" --id vm-1 "${common[@]}" --exec-file "$build/vireo" --new-pid-ns > "$tmp/vm.log" 2>&1
rc=$?
rootv=$base/vireo/vm-1/root
vpid=$(cat "$rootv/vireo.pid" 2>/dev/null)
check "vireo: the jailer exits 0" test $rc -eq 0
pids+=("${vpid:-0}")
if [ -c /dev/kvm ] && : 2>/dev/null < /dev/kvm; then
  sock=$rootv/run/firecracker.socket
  check "vireo: the API socket at <root>/run/firecracker.socket" wait_socket "$sock"
  check "vireo: GET / names the instance" test "$(api "$sock" GET /)" = 200
  check "vireo: ... id vm-1" grep -q '"id":"vm-1"' "$tmp/out"
  check "vireo: runs as $uid:$gid" grep -qP "^Uid:\t$uid\t" "/proc/$vpid/status"
  check "vireo: PID 1 of its namespace" grep -qP "^NSpid:\t$vpid\t1$" "/proc/$vpid/status"
  ln "$tmp/probe.elf" "$rootv/probe.elf"
  check "vireo: PUT /boot-source with the hard-linked kernel" \
    test "$(api "$sock" PUT /boot-source '{"kernel_image_path": "/probe.elf"}')" = 204
  check "vireo: PUT /machine-config" \
    test "$(api "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}')" = 204
  check "vireo: InstanceStart" test "$(api "$sock" PUT /actions '{"action_type": "InstanceStart"}')" = 204
  for _ in $(seq 1 200); do [ -e "/proc/$vpid" ] || break; sleep 0.05; done
  check "vireo: the probe guest powered off and vireo ended" test ! -e "/proc/$vpid"
  check "vireo: the socket is removed" test ! -e "$sock"
else
  check "vireo without /dev/kvm: exits naming /dev/kvm" \
    bash -c "for _ in \$(seq 1 100); do [ -e /proc/$vpid ] || break; sleep 0.05; done; grep -q /dev/kvm '$tmp/vm.log'"
  check "vireo: its libraries were found in the jail (it got as far as opening /dev/kvm)" \
    bash -c "! grep -q 'error while loading shared libraries' '$tmp/vm.log'"
  skip "no usable /dev/kvm: the jailed vireo's API and probe guest are not checked here"
fi
[ $skips -eq 0 ] || echo "($skips skipped)"
summary
