# Helpers for the process-level tests (sourced by tests/cli/*.sh, bash): counted checks, waiting
# for an API socket, one API call with curl.
passes=0
failures=0

# check DESCRIPTION CONDITION...: runs CONDITION, counts and prints the outcome; fails when it does.
check() {
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
    passes=$((passes + 1))
  else
    echo "FAIL: $what"
    failures=$((failures + 1))
    return 1
  fi
}

# wait_socket PATH: until a Unix socket exists at PATH (at most 5 s).
wait_socket() { for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }

# api SOCK METHOD PATH [BODY]: prints the HTTP status; the answer's body goes to $tmp/out.
api() {
  curl -s -m 30 -o "$tmp/out" -w '%{http_code}' --unix-socket "$1" -X "$2" ${4:+-d "$4"} \
    "http://localhost$3"
}

# probe_kernel [--MODE] OUT: a probe "kernel" (tests/lib/make-probe-kernel) at OUT; made in advance
# where the test runs without python3 (the nested test host: tests/lib/with-kvm).
probe_kernel() {
  local mode=probe
  [ $# -eq 2 ] && mode=${1#--} && shift
  if [ -n "${VIREO_PROBE_KERNELS:-}" ]; then
    cp "$VIREO_PROBE_KERNELS/$mode.elf" "$1"
  elif [ "$mode" = probe ]; then
    "$(dirname "${BASH_SOURCE[0]}")/../lib/make-probe-kernel" "$1"
  else
    "$(dirname "${BASH_SOURCE[0]}")/../lib/make-probe-kernel" "--$mode" "$1"
  fi
}

# stale_socket PATH: a Unix socket file nobody listens on (bound, never unlinked).
stale_socket() {
  timeout 1 socat -u "UNIX-LISTEN:$1,unlink-close=0" /dev/null 2>/dev/null
  [ -S "$1" ]
}

# sparse_copy SRC DST: a copy that keeps holes where cp can (busybox's cp, in the nested test host,
# has no --sparse).
sparse_copy() { cp --sparse=always "$1" "$2" 2>/dev/null || cp "$1" "$2"; }

# The counting probe guests (make-probe-kernel --counter, --dirtier) write 'a' + n % 26 to COM1.
# console LOG: those characters on a process's console (vireo's own log goes to --log-path).
console() { tr -cd 'a-z' < "$1"; }
# wait_chars LOG N [SECONDS]: until the console has N characters (at most SECONDS, default 20).
wait_chars() {
  for _ in $(seq 1 $((${3:-20} * 10))); do
    [ "$(console "$1" | wc -c)" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# cyclic TEXT: every character is the one after its predecessor in a..z, cyclically (a restart,
# a lost register or byte, a repeat or a gap breaks it).
cyclic() {
  awk -v t="$1" 'BEGIN {
    a = "abcdefghijklmnopqrstuvwxyz"
    n = length(t)
    for (i = 2; i <= n; i++) {
      p = index(a, substr(t, i - 1, 1)); c = index(a, substr(t, i, 1))
      if (p == 0 || c == 0 || c != p % 26 + 1) {
        printf "  breaks at %d of %d: ...%s|%s...\n", i - 1, n, substr(t, i > 10 ? i - 10 : 1, i > 10 ? 10 : i - 1), substr(t, i, 10)
        exit 1
      }
    }
    exit n < 2 ? 1 : 0
  }'
}

# summary: the closing line and the script's status.
summary() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}
