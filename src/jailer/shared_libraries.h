// The shared libraries a dynamically linked exec file needs, so the jail can hold them at the
// same absolute paths (vireo is linked against Debian's shared fmt, spdlog, liburing, libstdc++,
// glibc; Firecracker avoids this by shipping a static musl binary).
//
// The list comes from the host's dynamic loader in trace mode (`<PT_INTERP> --list FILE`, what
// ldd runs): it resolves names exactly as the exec will (ld.so.cache, RUNPATH, glibc-hwcaps)
// without running the file's code. It runs with an empty environment, so LD_LIBRARY_PATH and
// LD_PRELOAD from the jailer's caller cannot steer it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vireo::jailer {

// PT_INTERP of the 64-bit ELF file open at `fd`; nullopt for a static executable.
Result<std::optional<std::string>> elf_interpreter(int fd);

// The absolute paths in the loader's `--list` output: "name => /path (0x...)" and "/path
// (0x...)" lines; "name => not found" is an error naming the library; the vDSO has no path.
Result<std::vector<std::string>> parse_loader_list(std::string_view output);

// Runs `interpreter --list /proc/self/fd/<fd>` and parses its output.
Result<std::vector<std::string>> list_shared_libraries(const std::string& interpreter, int exec_fd);

// True when `library` sits directly in one of glibc's compiled-in search folders on x86-64
// Debian (ld.so --help: /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib), so
// the loader finds it in the jail without /etc/ld.so.cache.
bool in_default_search_path(std::string_view library);

}  // namespace vireo::jailer
