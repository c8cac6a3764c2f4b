# /lib/vireo-guest.sh: helpers for guest-side scenario scripts (busybox sh). Source it with
# `. /lib/vireo-guest.sh`. A failing check prints `GUEST-FAIL [step]: message` and exits 1, so the
# host side can say which guest step failed (guest_failure in tests/nested/lib.sh).

gstep() {
  GSTEP=$1
  echo "== guest step: $1"
}

gfail() {
  echo "GUEST-FAIL${GSTEP:+ [$GSTEP]}: $*"
  exit 1
}

# wait_path PATH [SECONDS]: waits (default 10 s) until PATH exists; fails naming it otherwise.
wait_path() {
  _n=$(( ${2:-10} * 10 ))
  while [ ! -e "$1" ]; do
    _n=$((_n - 1))
    [ $_n -gt 0 ] || gfail "$1 did not appear within ${2:-10}s"
    sleep 0.1
  done
}

# iface_by_mac MAC: prints the name of the network interface with that MAC address.
iface_by_mac() {
  for _i in /sys/class/net/*; do
    [ "$(cat "$_i/address" 2>/dev/null)" = "$1" ] && { basename "$_i"; return 0; }
  done
  return 1
}

# sha FILE: the sha256 of FILE (or of stdin with -), hex only.
sha() {
  sha256sum "$1" | cut -d' ' -f1
}

# gbench LABEL CMD...: one measurement for the benches: a guest step named LABEL, CMD's output
# (vireo-iotool's RESULT line) printed as `BENCH LABEL <output>`; a hang (180 s) or error fails.
gbench() {
  _label=$1
  shift
  gstep "$_label"
  _out=$(timeout 180 "$@" 2>&1) || gfail "$* failed: $_out"
  echo "BENCH $_label $_out"
}
