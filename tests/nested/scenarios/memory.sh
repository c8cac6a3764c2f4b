# --memory sets the guest's RAM: MemTotal within 64 MiB of the request, below and above the
# 32-bit PCI hole (4G puts 1 GiB above 4 GiB).
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

cat > /tmp/report.sh <<'SCEN'
echo "REPORT memtotal_kib=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
SCEN

for mem in 128M 4G; do
  step "boot with --memory $mem"
  vireo_boot mem$mem 240 /tmp/report.sh --memory $mem
  rc=$?
  [ $rc -eq 0 ] || fail "vireo exited with $rc"
  got=$(tr -d '\r' < /tmp/mem$mem.log | sed -n 's/^REPORT memtotal_kib=\([0-9]*\)$/\1/p')
  [ -n "$got" ] || fail "guest did not report MemTotal"
  case $mem in 128M) want=$((128 * 1024)) ;; 4G) want=$((4 * 1024 * 1024)) ;; esac
  diff=$((want - got))
  [ $diff -lt 0 ] && diff=$((-diff))
  echo "memory $mem: MemTotal $got KiB, requested $want KiB, difference $diff KiB"
  [ $diff -le $((64 * 1024)) ] || fail "MemTotal $got KiB is more than 64 MiB from $want KiB"
done
echo "memory: OK"
