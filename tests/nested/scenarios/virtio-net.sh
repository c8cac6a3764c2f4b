# virtio-net on a tap: 1) the guest's NIC has the MAC given with --net, takes 169.254.100.2/24
# with busybox ip and pings the host (169.254.100.1 on tap vtap0); the host sees the guest's MAC
# and pings it back; checksum/TSO offloads and mergeable receive buffers are negotiated; 64 MiB go guest->host and 64 MiB host->guest over TCP (busybox nc in the
# guest, socat on the host) with matching sha256 on both ends. 2) Two NICs at once (vtap0 and
# vtap1, two /24s): each has its MAC, each pings its host address and carries 8 MiB of its own.
# Link-local addresses only (DESIGN.md §5): the outer host has no network device besides these
# taps, so nothing leaves it. VIREO_SCENARIO_VMM=qemu runs the same boots under QEMU.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

echo "virtio-net: VMM $(vmm_name)"
mac0=52:54:00:76:69:01
mac1=52:54:00:76:69:02
bg_pids=
cleanup() {
  for p in $bg_pids; do kill "$p" 2>/dev/null; done
  $IP link del vtap0 2>/dev/null
  $IP link del vtap1 2>/dev/null
}
trap cleanup EXIT

# ---- 1) one NIC: ping, 64 MiB each way ----
step "create tap vtap0 with 169.254.100.1/24"
tap_up vtap0 169.254.100.1/24

step "host: 64 MiB of random data for host->guest, listeners on 169.254.100.1"
dd if=/dev/urandom of=/tmp/h2g.bin bs=1M count=64 2>/dev/null || fail "dd urandom failed"
h2g_sha=$(sha256sum /tmp/h2g.bin | cut -d' ' -f1)
# In order, as the guest goes: receive guest->host (5001); look at the guest's MAC in the
# neighbour table and ping the guest while it waits; serve host->guest (5002); say goodbye (5003),
# which is what the guest waits for before powering off.
host_side() {
  rm -f /tmp/g2h.bin /tmp/neigh.txt /tmp/hostping.txt /tmp/host-steps.txt
  (
    timeout 240 socat -u TCP-LISTEN:5001,bind=169.254.100.1,reuseaddr CREATE:/tmp/g2h.bin
    echo "g2h-received $?" >> /tmp/host-steps.txt
    $IP neigh show 169.254.100.2 dev vtap0 > /tmp/neigh.txt 2>&1
    ping -c 3 -W 5 169.254.100.2 > /tmp/hostping.txt 2>&1
    echo "hostping $?" >> /tmp/host-steps.txt
    timeout 240 socat -u OPEN:/tmp/h2g.bin TCP-LISTEN:5002,bind=169.254.100.1,reuseaddr
    echo "h2g-served $?" >> /tmp/host-steps.txt
    echo host-done | timeout 240 socat -u STDIN TCP-LISTEN:5003,bind=169.254.100.1,reuseaddr
  ) &
  host_pid=$!
  bg_pids="$bg_pids $host_pid"
}
host_side

{
  echo "MAC0=$mac0 H2G_SHA=$h2g_sha"
  cat <<'SCEN'
. /lib/vireo-guest.sh
# connect_retry PORT OUT: busybox nc to the host's PORT (stdin /dev/null), output to OUT; retried
# for 60 s while the host's listener is not up yet.
connect_retry() {
  for _ in $(seq 1 60); do
    nc 169.254.100.1 "$1" < /dev/null > "$2" 2>/tmp/nc.err && return 0
    sleep 1
  done
  gfail "nc 169.254.100.1 $1 kept failing: $(cat /tmp/nc.err)"
}
gstep "the NIC with MAC $MAC0 appears"
for _ in $(seq 1 100); do eth=$(iface_by_mac "$MAC0") && break; sleep 0.1; done
[ -n "$eth" ] || gfail "no network interface with MAC $MAC0 ($(ls /sys/class/net | tr '\n' ' '))"
echo "NIC $eth, MAC $MAC0, driver $(basename "$(readlink /sys/class/net/$eth/device/driver)")"
gstep "offloads negotiated: CSUM, GUEST_CSUM, GUEST_TSO4/6, HOST_TSO4/6, MRG_RXBUF"
# /sys/bus/virtio/devices/virtioN/features: one character per feature bit, bit 0 first.
feat=$(cat "/sys/class/net/$eth/device/features")
echo "features $feat"
for bit in 0 1 7 8 11 12 15 32; do
  [ "$(echo "$feat" | cut -c$((bit + 1)))" = 1 ] || gfail "feature bit $bit not negotiated ($feat)"
done
gstep "configure $eth 169.254.100.2/24"
ip link set "$eth" up || gfail "ip link set $eth up failed"
ip addr add 169.254.100.2/24 dev "$eth" || gfail "ip addr add failed"
gstep "ping the host"
ok=0
for _ in $(seq 1 15); do ping -c 1 -W 2 169.254.100.1 > /dev/null 2>&1 && { ok=1; break; }; done
[ $ok -eq 1 ] || gfail "169.254.100.1 does not answer pings"
ping -c 3 -W 2 169.254.100.1 | tail -2 || gfail "ping -c 3 169.254.100.1 failed"
gstep "64 MiB guest->host over TCP"
dd if=/dev/urandom of=/tmp/g2h.bin bs=1M count=64 2>/dev/null || gfail "dd urandom failed"
echo "G2H_SHA=$(sha /tmp/g2h.bin)"
t0=$(cut -d' ' -f1 /proc/uptime)
nc 169.254.100.1 5001 < /tmp/g2h.bin || gfail "nc 169.254.100.1 5001 < 64 MiB failed"
echo "guest->host: sent in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print b - a }') s"
rm -f /tmp/g2h.bin
gstep "64 MiB host->guest over TCP"
t0=$(cut -d' ' -f1 /proc/uptime)
connect_retry 5002 /tmp/h2g.bin
echo "host->guest: $(stat -c %s /tmp/h2g.bin) bytes in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print b - a }') s"
got=$(sha /tmp/h2g.bin)
[ "$got" = "$H2G_SHA" ] || gfail "host->guest data has sha256 $got ($(stat -c %s /tmp/h2g.bin) bytes), the host sent $H2G_SHA"
gstep "wait for the host's goodbye"
connect_retry 5003 /tmp/bye
[ "$(cat /tmp/bye)" = host-done ] || gfail "the host said '$(cat /tmp/bye)'"
echo "rx_bytes=$(cat /sys/class/net/$eth/statistics/rx_bytes) tx_bytes=$(cat /sys/class/net/$eth/statistics/tx_bytes)"
echo "one NIC: done"
SCEN
} > /tmp/net-one.sh

step "boot with --net tap=vtap0,mac=$mac0: ping, 64 MiB each way (guest side)"
vireo_boot net-one 240 /tmp/net-one.sh --memory 512M --net tap=vtap0,mac=$mac0
rc=$?
# The nested host's known fault (issue 13): now and then the guest kernel takes an event at the
# first instruction after SYSCALL, on the user stack, and double-faults ("double fault ...
# RIP: entry_SYSCALL_64+0x0", EFLAGS 0x2) during a heavy transfer. It happens with QEMU as the
# inner VMM too (tests/nested: 1 in 3 such boots under QEMU, 2 in 3 under vireo, in one host), so
# it is the emulated SVM under L1 KVM, not the VMM. One rerun, reported as a retry. (Whatever the
# VMM's status: QEMU with -no-reboot exits 0 after a guest panic, vireo 3.)
if tr -d '\r' < /tmp/net-one.log | grep -q 'RIP: 0010:entry_SYSCALL_64+0x0' &&
  tr -d '\r' < /tmp/net-one.log | grep -q 'double fault'; then
  scenario_retry "the guest double-faulted at entry_SYSCALL_64+0x0 (the nested host's SVM fault, issue 13)"
  kill $host_pid 2>/dev/null
  pkill -f 'socat -u .*169.254.100.1' 2>/dev/null
  sleep 1
  host_side
  vireo_boot net-one 240 /tmp/net-one.sh --memory 512M --net tap=vtap0,mac=$mac0
  rc=$?
fi
echo "host steps: $(tr "\n" ";" 2>/dev/null < /tmp/host-steps.txt)"
guest_ok net-one $rc

step "host: guest->host data, the guest's MAC, host->guest ping"
g2h=$(guest_value /tmp/net-one.log G2H_SHA)
[ -n "$g2h" ] || fail "the guest did not report G2H_SHA"
[ -f /tmp/g2h.bin ] || fail "the host received nothing on port 5001"
got=$(sha256sum /tmp/g2h.bin | cut -d' ' -f1)
[ "$got" = "$g2h" ] || fail "the host received $(stat -c %s /tmp/g2h.bin) bytes with sha256 $got; the guest sent $g2h"
grep -q "lladdr $mac0" /tmp/neigh.txt || fail "the host's neighbour entry for 169.254.100.2 is '$(cat /tmp/neigh.txt)', expected lladdr $mac0"
grep -q '^hostping 0$' /tmp/host-steps.txt || { cat /tmp/hostping.txt; fail "the guest did not answer the host's pings"; }
echo "host: 64 MiB received intact; guest is $mac0 on the wire and answers pings"
cleanup
bg_pids=

# ---- 2) two NICs ----
step "create taps vtap0 (169.254.100.1/24) and vtap1 (169.254.101.1/24)"
tap_up vtap0 169.254.100.1/24
tap_up vtap1 169.254.101.1/24
dd if=/dev/urandom of=/tmp/n0.bin bs=1M count=8 2>/dev/null
dd if=/dev/urandom of=/tmp/n1.bin bs=1M count=8 2>/dev/null
n0_sha=$(sha256sum /tmp/n0.bin | cut -d' ' -f1)
n1_sha=$(sha256sum /tmp/n1.bin | cut -d' ' -f1)
timeout 240 socat -u OPEN:/tmp/n0.bin TCP-LISTEN:5010,bind=169.254.100.1,reuseaddr &
bg_pids="$bg_pids $!"
timeout 240 socat -u OPEN:/tmp/n1.bin TCP-LISTEN:5011,bind=169.254.101.1,reuseaddr &
bg_pids="$bg_pids $!"

{
  echo "MAC0=$mac0 MAC1=$mac1 N0_SHA=$n0_sha N1_SHA=$n1_sha"
  cat <<'SCEN'
. /lib/vireo-guest.sh
gstep "two NICs with their MACs"
for _ in $(seq 1 100); do
  e0=$(iface_by_mac "$MAC0") && e1=$(iface_by_mac "$MAC1") && break
  sleep 0.1
done
[ -n "$e0" ] && [ -n "$e1" ] || gfail "want NICs with MACs $MAC0 and $MAC1; have: $(cat /sys/class/net/*/address | tr '\n' ' ')"
echo "NICs: $e0 ($MAC0), $e1 ($MAC1)"
for n in 0 1; do
  eval "eth=\$e$n sha=\$N${n}_SHA"
  host=169.254.10$n.1 port=501$n
  gstep "$eth: 169.254.10$n.2/24, ping $host, 8 MiB over TCP"
  ip link set "$eth" up || gfail "ip link set $eth up failed"
  ip addr add 169.254.10$n.2/24 dev "$eth" || gfail "ip addr add failed"
  ok=0
  for _ in $(seq 1 15); do ping -c 1 -W 2 $host > /dev/null 2>&1 && { ok=1; break; }; done
  [ $ok -eq 1 ] || gfail "$host does not answer pings on $eth"
  rx0=$(cat /sys/class/net/$eth/statistics/rx_bytes)
  for _ in $(seq 1 30); do nc $host $port < /dev/null > /tmp/n.bin 2>/dev/null && break; sleep 1; done
  got=$(sha /tmp/n.bin)
  [ "$got" = "$sha" ] || gfail "8 MiB from $host:$port have sha256 $got ($(stat -c %s /tmp/n.bin) bytes), expected $sha"
  rx=$(( $(cat /sys/class/net/$eth/statistics/rx_bytes) - rx0 ))
  echo "$eth: 8 MiB intact, rx_bytes +$rx"
  [ $rx -ge $((8 << 20)) ] || gfail "$eth received only $rx bytes for an 8 MiB transfer: the data came another way"
done
echo "two NICs: done"
SCEN
} > /tmp/net-two.sh

step "boot with two --net (guest side)"
vireo_boot net-two 180 /tmp/net-two.sh --memory 256M --net tap=vtap0,mac=$mac0 --net tap=vtap1,mac=$mac1
guest_ok net-two $?
echo "virtio-net: OK ($(vmm_name))"
