// An Ethernet MAC address (IEEE 802-2014 §8.2): six octets, written aa:bb:cc:dd:ee:ff. Bit 0 of
// the first octet is the I/G (multicast) bit, bit 1 the U/L (locally administered) bit.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vireo {

class MacAddress {
public:
    static constexpr std::size_t kSize = 6;
    using Bytes = std::array<std::uint8_t, kSize>;

    constexpr MacAddress() = default;  // 00:00:00:00:00:00
    constexpr explicit MacAddress(const Bytes& bytes) : m_bytes(bytes) {}

    // Exactly six pairs of hex digits (either case) separated by ':'. A guest NIC needs a unicast
    // address, so the multicast bit is refused; errors name what is wrong.
    static Result<MacAddress> parse(std::string_view text);
    // A random unicast, locally administered address (x2:, x6:, xa:, xe:...), from getrandom(2).
    static MacAddress random_local();

    // Lowercase aa:bb:cc:dd:ee:ff.
    std::string to_string() const;
    const Bytes& bytes() const { return m_bytes; }
    bool is_multicast() const { return (m_bytes[0] & 0x01) != 0; }
    bool is_locally_administered() const { return (m_bytes[0] & 0x02) != 0; }

    friend bool operator==(const MacAddress&, const MacAddress&) = default;

private:
    Bytes m_bytes{};
};

}  // namespace vireo
