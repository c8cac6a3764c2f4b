# --memory sets the guest's RAM, below and above the 32-bit PCI hole (4G puts 1 GiB above 4 GiB).
# Checked two ways: the RAM the kernel found (its "Memory: avail/total" boot line) must be within
# 64 MiB of the request. MemTotal excludes what the kernel reserves for itself — its image
# (~36 MiB), 64 bytes of struct page per 4 KiB page (1.6%) and, with RAM above 4 GiB, a 64 MiB
# swiotlb bounce buffer — so it is only checked to be below the request and above 90% of it
# minus 40 MiB.
. "${VIREO_NESTED_LIB:-/usr/local/lib/vireo-nested.sh}"

cat > /tmp/report.sh <<'SCEN'
echo "REPORT memtotal_kib=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) kernel_kib=$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p')"
SCEN

for mem in 128M 4G; do
  step "boot with --memory $mem"
  vireo_boot mem$mem 240 /tmp/report.sh --memory $mem
  rc=$?
  [ $rc -eq 0 ] || fail "vireo exited with $rc"
  report=$(tr -d '\r' < /tmp/mem$mem.log | grep '^REPORT ')
  got=$(echo "$report" | sed -n 's/.*memtotal_kib=\([0-9]*\).*/\1/p')
  kernel=$(echo "$report" | sed -n 's/.*kernel_kib=\([0-9]*\).*/\1/p')
  [ -n "$got" ] && [ -n "$kernel" ] || fail "guest did not report its memory ($report)"
  case $mem in 128M) want=$((128 * 1024)) ;; 4G) want=$((4 * 1024 * 1024)) ;; esac
  kdiff=$((want - kernel))
  [ $kdiff -lt 0 ] && kdiff=$((-kdiff))
  mdiff=$((want - got))
  echo "memory $mem: requested $want KiB; kernel found $kernel KiB (off by $kdiff); MemTotal $got KiB (off by $mdiff)"
  [ $kdiff -le $((64 * 1024)) ] || fail "the kernel found $kernel KiB, more than 64 MiB from $want KiB"
  [ $mdiff -ge 0 ] || fail "MemTotal $got KiB exceeds the $want KiB given"
  [ $got -ge $((want * 9 / 10 - 40 * 1024)) ] || fail "MemTotal $got KiB is far below the $want KiB given"
done
echo "memory: OK"
