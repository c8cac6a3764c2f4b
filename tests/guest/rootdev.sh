# shellcheck shell=sh disable=SC2046
# /lib/vireo-rootdev.sh: finds the block device a `root=` kernel argument names, for the test
# guest's initramfs /init (tests/guest/init), which sources it. busybox sh; no udev, no blkid.
#
#   root_device SPEC   prints the /dev node for SPEC, or nothing (status 1) if it is not there
#                      (yet). SPEC is what Firecracker and the kernel accept:
#                        /dev/NAME                       that node (vda, vda1, ...)
#                        PARTUUID=UUID                   a GPT partition's unique GUID, or an MBR
#                                                        partition's SSSSSSSS-NN (disk signature,
#                                                        partition number 1-4), case-insensitive
#                        UUID=... LABEL=...              a file system's (busybox findfs)
#   partuuids DISK     prints "NUMBER PARTUUID" for each partition in DISK's table (a device node
#                      or an image file): what the kernel's block/partitions/{efi,msdos}.c name
#                      them. Logical MBR partitions (5+) and `/PARTNROFF=` are not supported.
#
# The kernel gives PARTUUIDs to its own root= parsing only (no uevent PARTUUID in 6.1 and no udev
# here for /dev/disk/by-partuuid), so the tables are read directly. Sector size: the disk's
# logical block size from sysfs (512 for an image file).
# Host-side check: tests/guest/rootdev-test.

# _hex FILE OFFSET COUNT: COUNT bytes at OFFSET, as lowercase hex pairs separated by spaces.
_hex() {
  od -An -v -tx1 -j "$2" -N "$3" "$1" 2>/dev/null | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

# _le HEX_PAIRS...: the little-endian number they spell, in decimal.
_le() {
  _v=
  for _b in "$@"; do _v=$_b$_v; done
  echo $((0x${_v:-0}))
}

partuuids() {
  _disk=$1 _ss=512
  _name=${_disk##*/}
  [ -r "/sys/block/$_name/queue/logical_block_size" ] &&
    _ss=$(cat "/sys/block/$_name/queue/logical_block_size")
  set -- $(_hex "$_disk" 440 72)  # disk signature, 4 partition entries, boot signature
  [ $# -eq 72 ] && [ "${71}" = 55 ] && [ "${72}" = aa ] || return 0
  _sig=$(printf '%08x' "$(_le "$1" "$2" "$3" "$4")")
  shift 6  # to the first entry (offset 446)
  _i=1 _gpt=0
  while [ $_i -le 4 ]; do
    _type=$5
    case $_type in
      00) ;;
      ee) _gpt=1 ;;  # protective MBR: the table is GPT
      *) echo "$_i $_sig-0$_i" ;;
    esac
    shift 16
    _i=$((_i + 1))
  done
  [ $_gpt -eq 1 ] || return 0
  # GPT header at LBA 1 (UEFI 2.10 §5.3.2): "EFI PART", partition entry LBA at 72 (8 bytes),
  # number of entries at 80, entry size at 84.
  set -- $(_hex "$_disk" "$_ss" 92)
  [ "$1$2$3$4$5$6$7$8" = 4546492050415254 ] || return 0
  _lba=$(_le "${73}" "${74}" "${75}" "${76}" "${77}" "${78}" "${79}" "${80}")
  _n=$(_le "${81}" "${82}" "${83}" "${84}")
  _size=$(_le "${85}" "${86}" "${87}" "${88}")
  [ "$_n" -gt 0 ] && [ "$_n" -le 1024 ] && [ "$_size" -ge 128 ] && [ "$_size" -le 4096 ] || return 0
  # Each entry (§5.3.3): type GUID at 0, unique GUID at 16; an all-zero type is an unused slot.
  # The GUID's text form swaps the first three fields to big-endian.
  od -An -v -tx1 -j $((_lba * _ss)) -N $((_n * _size)) "$_disk" 2>/dev/null |
    awk -v size="$_size" '
      { for (i = 1; i <= NF; i++) b[n++] = $i }
      END {
        for (e = 0; e * size + 32 <= n; e++) {
          o = e * size; used = 0
          for (i = 0; i < 16; i++) if (b[o + i] != "00") used = 1
          if (!used) continue
          u = o + 16
          printf "%d %s%s%s%s-%s%s-%s%s-%s%s-", e + 1, b[u+3], b[u+2], b[u+1], b[u], b[u+5], b[u+4], b[u+7], b[u+6], b[u+8], b[u+9]
          for (i = 10; i < 16; i++) printf "%s", b[u + i]
          printf "\n"
        }
      }'
}

# _partition_node DISK_NAME NUMBER: the /dev node of partition NUMBER of DISK_NAME, if it exists.
_partition_node() {
  for _p in /sys/block/"$1"/*/partition; do
    [ -r "$_p" ] && [ "$(cat "$_p")" = "$2" ] || continue
    _p=${_p%/partition}
    [ -b "/dev/${_p##*/}" ] && echo "/dev/${_p##*/}" && return 0
  done
  return 1
}

root_device() {
  case $1 in
    /dev/*)
      [ -b "$1" ] && echo "$1"
      ;;
    PARTUUID=*)
      _want=$(echo "${1#PARTUUID=}" | tr 'A-F' 'a-f')
      for _d in /sys/block/*; do
        _dn=${_d##*/}
        case $_dn in loop*|ram*|zram*) continue ;; esac
        [ -b "/dev/$_dn" ] || continue
        _num=$(partuuids "/dev/$_dn" | awk -v w="$_want" '$2 == w { print $1; exit }')
        [ -n "$_num" ] && _partition_node "$_dn" "$_num" && return 0
      done
      return 1
      ;;
    UUID=*|LABEL=*)
      findfs "$1" 2>/dev/null
      ;;
    *)
      return 1
      ;;
  esac
}
