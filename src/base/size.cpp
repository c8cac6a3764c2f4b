#include "base/size.h"

#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace vireo {

Result<std::uint64_t> parse_size(std::string_view text, std::uint64_t default_unit) {
    const auto bad = [&](std::string_view why) {
        return Error(fmt::format("invalid size '{}': {}", text, why));
    };
    std::size_t i = 0;
    std::uint64_t number = 0;
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
        const auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (number > (max - digit) / 10) {
            return bad("too large");
        }
        number = number * 10 + digit;
        ++i;
    }
    if (i == 0) {
        return bad("expected a number, e.g. 512M or 2G");
    }
    std::uint64_t unit = default_unit;
    std::string_view suffix = text.substr(i);
    if (!suffix.empty()) {
        switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
            case 'B':
                unit = 1;
                break;
            case 'K':
                unit = KiB;
                break;
            case 'M':
                unit = MiB;
                break;
            case 'G':
                unit = GiB;
                break;
            case 'T':
                unit = 1024 * GiB;
                break;
            default:
                return bad("unknown unit (use K, M, G or T)");
        }
        std::string_view rest = suffix.substr(1);
        if (unit != 1 &&
            (rest == "iB" || rest == "IB" || rest == "ib" || rest == "B" || rest == "b")) {
            rest = {};
        }
        if (!rest.empty()) {
            return bad("unknown unit (use K, M, G or T)");
        }
    }
    if (number == 0) {
        return bad("must be greater than zero");
    }
    if (number > max / unit) {
        return bad("too large");
    }
    return number * unit;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t u = 0;
    while (u + 1 < std::size(units) && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++u;
    }
    return fmt::format("{} {}", bytes, units[u]);
}

}  // namespace vireo
