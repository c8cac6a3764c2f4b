#include "base/mac_address.h"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include <fmt/format.h>

namespace vireo {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

Result<MacAddress> MacAddress::parse(std::string_view text) {
    const auto fail = [&](std::string_view why) {
        return Error(fmt::format("invalid MAC address '{}': {}", text, why));
    };
    constexpr std::size_t kTextSize = kSize * 3 - 1;  // "aa:bb:cc:dd:ee:ff"
    if (text.size() != kTextSize) {
        return fail(
            fmt::format("expected 6 hex pairs like 52:54:00:12:34:56 ({} characters), got "
                        "{} characters",
                        kTextSize, text.size()));
    }
    Bytes bytes{};
    for (std::size_t i = 0; i < kSize; ++i) {
        const std::size_t at = i * 3;
        if (i > 0 && text[at - 1] != ':') {
            return fail(fmt::format("expected ':' at position {}", at - 1));
        }
        const int hi = hex_digit(text[at]);
        const int lo = hex_digit(text[at + 1]);
        if (hi < 0 || lo < 0) {
            return fail(
                fmt::format("octet {} '{}' is not two hex digits", i + 1, text.substr(at, 2)));
        }
        bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    const MacAddress mac(bytes);
    if (mac.is_multicast()) {
        return fail(
            "multicast bit (bit 0 of the first octet) is set; a NIC needs a unicast address");
    }
    return mac;
}

MacAddress MacAddress::random_local() {
    Bytes bytes{};
    if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
        // No getrandom (seccomp, very old kernel): time and pid still make collisions between
        // VMs on one host unlikely; this is an address, not a secret.
        std::seed_seq seed{
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
            static_cast<std::uint64_t>(::getpid())};
        std::mt19937_64 gen(seed);
        const std::uint64_t r = gen();
        for (std::size_t i = 0; i < kSize; ++i) {
            bytes[i] = static_cast<std::uint8_t>(r >> (8 * i));
        }
    }
    bytes[0] = static_cast<std::uint8_t>((bytes[0] & ~0x01) | 0x02);  // unicast, local
    return MacAddress(bytes);
}

std::string MacAddress::to_string() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m_bytes[0], m_bytes[1],
                       m_bytes[2], m_bytes[3], m_bytes[4], m_bytes[5]);
}

}  // namespace vireo
