// Reading a whole input file (a kernel, an initrd, a state file, a config file) with a size cap:
// such files come from outside and must not make vireo allocate without bound.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace vireo {

// The bytes of the regular file `path`, which must hold at most `max_size` bytes: checked before
// anything is allocated; a FIFO or device is refused without blocking (base/file_open.h), and an
// allocation that fails is an error, not an exception. The error
// names neither the path nor the file's role: callers wrap it ("kernel /x: ...").
Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path, std::uint64_t max_size);

}  // namespace vireo
