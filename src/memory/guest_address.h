// A guest-physical address. A distinct type so it never mixes with host pointers or sizes.
#pragma once

#include <compare>
#include <cstdint>

namespace vireo {

struct GuestAddress {
    std::uint64_t value = 0;

    constexpr GuestAddress() = default;
    constexpr explicit GuestAddress(std::uint64_t v) : value(v) {}
    constexpr auto operator<=>(const GuestAddress&) const = default;
    // Wraps on overflow like the hardware adder; callers that must not wrap use checked_add.
    constexpr GuestAddress operator+(std::uint64_t offset) const {
        return GuestAddress(value + offset);
    }
    // False when value + offset would pass 2^64.
    [[nodiscard]] constexpr bool checked_add(std::uint64_t offset, GuestAddress& out) const {
        if (offset > UINT64_MAX - value) {
            return false;
        }
        out = GuestAddress(value + offset);
        return true;
    }
};

}  // namespace vireo
