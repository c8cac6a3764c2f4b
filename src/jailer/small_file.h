// Whole small text files: /proc and cgroupfs entries (st_size 0, read until EOF).
#pragma once

#include <string>

#include "base/result.h"

namespace vireo::jailer {

// At most `max_size` bytes; more is an error.
Result<std::string> read_small_file(const std::string& path, size_t max_size = 1 << 20);

}  // namespace vireo::jailer
