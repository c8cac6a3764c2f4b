// Parsing and printing of memory sizes as the CLI takes them ("512M", "2G").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vireo {

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;
inline constexpr std::uint64_t GiB = 1024 * MiB;

// Accepts a decimal number with an optional suffix K, M, G or T (case-insensitive, an optional
// trailing "iB"/"B"). A bare number is in units of `default_unit` bytes (QEMU's -m takes MiB).
// Rejects empty strings, junk, zero and values that overflow 64 bits.
Result<std::uint64_t> parse_size(std::string_view text, std::uint64_t default_unit = MiB);

// 536870912 -> "512 MiB"; exact multiples only get the larger unit.
std::string format_size(std::uint64_t bytes);

}  // namespace vireo
