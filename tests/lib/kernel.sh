# Shared by tests/guest/build and tests/nested/build-host: fetch and unpack Debian kernels.
# Never installs a kernel on the host: `apt-get download` + `dpkg -x` into build/downloads.

# kernel_package FLAVOUR -> the current linux-image-<version>-<flavour> package name, resolved
# through the metapackage (names move: 6.1.0-56, -57, ...).
kernel_package() {
  local meta
  case "$1" in
    std) meta=linux-image-amd64 ;;
    cloud) meta=linux-image-cloud-amd64 ;;
    *) echo "unknown kernel flavour '$1' (use std or cloud)" >&2; return 1 ;;
  esac
  local pkg
  pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    echo "cannot resolve the kernel package behind $meta (is the apt index present? run scripts/setup)" >&2
    return 1
  fi
  echo "$pkg"
}

# kernel_unpack PACKAGE DOWNLOADS_DIR -> prints the unpacked root (with modules.dep generated).
kernel_unpack() {
  local pkg=$1 dl=$2
  local root=$dl/$pkg
  local version=${pkg#linux-image-}
  if [ ! -f "$root/.unpacked" ]; then
    mkdir -p "$dl"
    (cd "$dl" && rm -f "${pkg}"_*.deb && apt-get download -q "$pkg" >&2 2>/dev/null) || {
      echo "apt-get download $pkg failed" >&2
      return 1
    }
    rm -rf "$root"
    dpkg -x "$dl/${pkg}"_*.deb "$root"
    # The .deb ships no modules.dep; generate it for modprobe --show-depends.
    depmod -b "$root" "$version"
    touch "$root/.unpacked"
  fi
  echo "$root"
}

# kernel_module_closure ROOT VERSION MODULE... -> absolute .ko paths in load order, deduplicated;
# built-in modules are skipped.
kernel_module_closure() {
  local root=$1 version=$2
  shift 2
  local m
  for m in "$@"; do
    modprobe -d "$root" -S "$version" --show-depends "$m" || {
      echo "module $m not found in $version" >&2
      return 1
    }
  done | awk '$1 == "insmod" && !seen[$2]++ {print $2}'
}

# copy_libs DEST FILE... -> copies the shared libraries each FILE needs (ldd), and the dynamic
# loader, into DEST at their absolute paths.
copy_libs() {
  local dest=$1
  shift
  local f lib
  for f in "$@"; do
    for lib in $(ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
      if [ ! -e "$dest$lib" ]; then
        mkdir -p "$dest$(dirname "$lib")"
        cp -L "$lib" "$dest$lib"
      fi
    done
  done
}

# copy_with_libs DEST FILE... -> copies each executable to the same absolute path under DEST,
# with its shared libraries.
copy_with_libs() {
  local dest=$1
  shift
  local f
  for f in "$@"; do
    mkdir -p "$dest$(dirname "$f")"
    cp -L "$f" "$dest$f"
  done
  copy_libs "$dest" "$@"
}
