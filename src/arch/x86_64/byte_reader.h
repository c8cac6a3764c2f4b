// Bounds-checked, overflow-safe access to an untrusted kernel image. Every offset or size read from
// the file goes through these before it indexes anything.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace vireo::loader {

static_assert(std::endian::native == std::endian::little,
              "the x86 boot ABIs are little-endian and are read with memcpy");

// True when [offset, offset + len) lies inside a buffer of `size` bytes, without wrapping.
constexpr bool in_bounds(std::uint64_t size, std::uint64_t offset, std::uint64_t len) {
    return offset <= size && len <= size - offset;
}

// a + b, or false when it passes 2^64.
[[nodiscard]] constexpr bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    return !__builtin_add_overflow(a, b, &out);
}

// Rounds v up to a power-of-two `align`, or false when that passes 2^64.
[[nodiscard]] constexpr bool checked_align_up(std::uint64_t v, std::uint64_t align,
                                              std::uint64_t& out) {
    std::uint64_t sum = 0;
    if (!checked_add(v, align - 1, sum)) {
        return false;
    }
    out = sum & ~(align - 1);
    return true;
}

constexpr std::uint64_t align_down(std::uint64_t v, std::uint64_t align) {
    return v & ~(align - 1);
}

// A trivially copyable T read from `bytes` at `offset`, or nullopt when it does not fit.
template <typename T>
std::optional<T> read_at(std::span<const std::uint8_t> bytes, std::uint64_t offset) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!in_bounds(bytes.size(), offset, sizeof(T))) {
        return std::nullopt;
    }
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

}  // namespace vireo::loader
