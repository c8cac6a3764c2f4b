// Little-endian byte emission shared by the AML builder and the table builders. ACPI encodes
// every multi-byte field little-endian (ACPI 6.4 §5.2 and §20.2.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace vireo::acpi {

template <typename T>
void append_le(std::vector<std::uint8_t>& out, T value) {
    static_assert(std::is_unsigned_v<T>);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}

}  // namespace vireo::acpi
