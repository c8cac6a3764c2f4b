// CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all-ones): the checksum that guards
// snapshot state files. check("123456789") == 0x995dc9bbdf1939fa.
#pragma once

#include <cstdint>
#include <span>

namespace vireo {

class Crc64 {
public:
    void update(std::span<const std::uint8_t> data);
    std::uint64_t value() const { return ~m_crc; }

    static std::uint64_t of(std::span<const std::uint8_t> data) {
        Crc64 c;
        c.update(data);
        return c.value();
    }

private:
    std::uint64_t m_crc = ~0ULL;
};

}  // namespace vireo
