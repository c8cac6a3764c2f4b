# Arguments must arrive as given, one per word, unexpanded.
[ $# -eq 3 ] || { echo "args: expected 3 arguments, got $#"; exit 1; }
[ "$1" = "two words" ] || { echo "args: \$1 is '$1'"; exit 1; }
[ "$2" = "it's" ] || { echo "args: \$2 is '$2'"; exit 1; }
[ "$3" = '$HOME' ] || { echo "args: \$3 is '$3'"; exit 1; }
echo "args: all three arrived intact"
# The scenario runs under bash, and PATH finds the real tools before busybox's applets: iproute2's
# ip (tuntap) and e2fsprogs' mke2fs (-t ext4), which busybox's versions do not have.
[ -n "${BASH_VERSION:-}" ] || { echo "tools: the scenario does not run under bash"; exit 1; }
if [ "${VIREO_NESTED_MODE:-}" = nested ]; then
  ip -V 2>&1 | grep -q iproute2 || { echo "tools: ip is not iproute2's: $(ip -V 2>&1 | head -1)"; exit 1; }
  dd if=/dev/zero of=/tmp/tools.img bs=1M count=8 2>/dev/null
  mke2fs -q -t ext4 -F /tmp/tools.img || { echo "tools: mke2fs -t ext4 failed"; exit 1; }
  ip tuntap add dev tooltap0 mode tap || { echo "tools: ip tuntap failed"; exit 1; }
  ip link del tooltap0
  echo "tools: ip is iproute2's ($(command -v ip)), mke2fs -t ext4 works ($(command -v mke2fs))"
fi
