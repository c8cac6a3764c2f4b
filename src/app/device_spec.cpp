#include "app/device_spec.h"

#include <charconv>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "base/size.h"

namespace vireo {

namespace {

// Splits "k1=v1,k2=v2" into keys and values; a key given twice, an empty key or a missing '='
// is an error.
Result<std::map<std::string, std::string>> split_spec(std::string_view spec,
                                                      std::string_view what) {
    std::map<std::string, std::string> out;
    while (!spec.empty()) {
        const auto comma = spec.find(',');
        const std::string_view item = spec.substr(0, comma);
        const auto eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return Error(fmt::format("{}: '{}' is not key=value", what, item));
        }
        std::string key(item.substr(0, eq));
        if (out.count(key) != 0) {
            return Error(fmt::format("{}: '{}' given twice", what, key));
        }
        out.emplace(std::move(key), std::string(item.substr(eq + 1)));
        if (comma == std::string_view::npos) {
            break;
        }
        spec.remove_prefix(comma + 1);
        if (spec.empty()) {
            return Error(fmt::format("{}: trailing ','", what));
        }
    }
    return out;
}

Result<bool> parse_switch(const std::string& value, std::string_view what) {
    if (value == "on" || value == "true" || value == "yes" || value == "1") {
        return true;
    }
    if (value == "off" || value == "false" || value == "no" || value == "0") {
        return false;
    }
    return Error(fmt::format("{}: '{}' is not on or off", what, value));
}

// A decimal count without suffix: 1..2^64-1.
Result<std::uint64_t> parse_count(std::string_view text, std::string_view what) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v == 0) {
        return Error(fmt::format("{}: '{}' is not a positive whole number", what, text));
    }
    return v;
}

// A decimal number without suffix: 0..max; `why` explains the bound.
Result<std::uint64_t> parse_number(std::string_view text, std::uint64_t max, std::string_view what,
                                   std::string_view why) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
        end != text.data() + text.size()) {
        return Error(fmt::format("{}: '{}' is not a whole number", what, text));
    }
    if (ec == std::errc::result_out_of_range || v > max) {
        return Error(fmt::format("{}: {} is more than {} ({})", what, text, max, why));
    }
    return v;
}

}  // namespace

Result<BucketConfig> parse_bucket_spec(std::string_view text, bool bytes, std::string_view what) {
    // AMOUNT[/MS][+BURST]
    BucketConfig b;
    b.refill_time_ms = 1000;
    std::string_view amount = text;
    std::string_view burst;
    if (const auto plus = amount.find('+'); plus != std::string_view::npos) {
        burst = amount.substr(plus + 1);
        amount = amount.substr(0, plus);
        if (burst.empty()) {
            return Error(fmt::format("{}: nothing after '+' in '{}'", what, text));
        }
    }
    if (const auto slash = amount.find('/'); slash != std::string_view::npos) {
        auto ms = parse_count(amount.substr(slash + 1), what);
        if (!ms) {
            return ms.error();
        }
        if (*ms > kMaxRefillTimeMs) {
            return Error(fmt::format("{}: a refill time of {} ms is too long", what, *ms));
        }
        b.refill_time_ms = *ms;
        amount = amount.substr(0, slash);
    }
    const auto number = [&](std::string_view t) -> Result<std::uint64_t> {
        if (!bytes) {
            return parse_count(t, what);
        }
        auto v = parse_size(t, 1);
        if (!v) {
            return v.error().wrap(what);
        }
        return v;
    };
    auto size = number(amount);
    if (!size) {
        return size.error();
    }
    b.size = *size;
    if (!burst.empty()) {
        auto extra = number(burst);
        if (!extra) {
            return extra.error();
        }
        b.one_time_burst = *extra;
    }
    return b;
}

Result<DiskConfig> parse_disk_spec(std::string_view spec) {
    auto kv = split_spec(spec, "--disk");
    if (!kv) {
        return kv.error();
    }
    DiskConfig d;
    for (const auto& [key, value] : *kv) {
        if (key == "path") {
            d.path = value;
        } else if (key == "readonly") {
            auto b = parse_switch(value, "--disk readonly");
            if (!b) {
                return b.error();
            }
            d.read_only = *b;
        } else if (key == "direct") {
            auto b = parse_switch(value, "--disk direct");
            if (!b) {
                return b.error();
            }
            d.direct = *b;
        } else if (key == "serial") {
            if (value.size() > 20) {
                return Error(fmt::format("--disk serial: '{}' is longer than 20 bytes", value));
            }
            d.serial = value;
        } else if (key == "bw" || key == "iops") {
            auto b = parse_bucket_spec(value, key == "bw", "--disk " + key);
            if (!b) {
                return b.error();
            }
            (key == "bw" ? d.rate_limiter.bandwidth : d.rate_limiter.ops) = *b;
        } else {
            return Error(fmt::format(
                "--disk: unknown key '{}' (path, readonly, direct, serial, bw, iops)", key));
        }
    }
    if (d.path.empty()) {
        return Error("--disk: path=FILE is required");
    }
    return d;
}

Result<NetConfig> parse_net_spec(std::string_view spec) {
    auto kv = split_spec(spec, "--net");
    if (!kv) {
        return kv.error();
    }
    NetConfig n;
    for (const auto& [key, value] : *kv) {
        if (key == "tap") {
            n.tap = value;
        } else if (key == "mac") {
            auto mac = MacAddress::parse(value);
            if (!mac) {
                return mac.error().wrap("--net mac");
            }
            n.mac = *mac;
        } else if (key == "rx_bw" || key == "rx_ops" || key == "tx_bw" || key == "tx_ops") {
            auto b = parse_bucket_spec(value, key.ends_with("bw"), "--net " + key);
            if (!b) {
                return b.error();
            }
            RateLimiterConfig& r = key.starts_with("rx") ? n.rx_rate_limiter : n.tx_rate_limiter;
            (key.ends_with("bw") ? r.bandwidth : r.ops) = *b;
        } else {
            return Error(fmt::format(
                "--net: unknown key '{}' (tap, mac, rx_bw, rx_ops, tx_bw, tx_ops)", key));
        }
    }
    if (n.tap.empty()) {
        return Error("--net: tap=NAME is required");
    }
    return n;
}

Result<BalloonConfig> parse_balloon_spec(std::string_view spec) {
    auto kv = split_spec(spec, "--balloon");
    if (!kv) {
        return kv.error();
    }
    BalloonConfig b;
    bool amount_given = false;
    for (const auto& [key, value] : *kv) {
        if (key == "amount_mib") {
            auto v = parse_number(value, kMaxBalloonMib, "--balloon amount_mib",
                                  "MiB; 256 pages per MiB must fit the 32-bit num_pages");
            if (!v) {
                return v.error();
            }
            b.amount_mib = static_cast<std::uint32_t>(*v);  // <= kMaxBalloonMib
            amount_given = true;
        } else if (key == "stats_interval") {
            auto v = parse_number(value, std::numeric_limits<std::uint32_t>::max(),
                                  "--balloon stats_interval", "seconds");
            if (!v) {
                return v.error();
            }
            b.stats_polling_interval_s = static_cast<std::uint32_t>(*v);  // <= UINT32_MAX
        } else if (key == "deflate_on_oom" || key == "free_page_reporting") {
            auto on = parse_switch(value, "--balloon " + key);
            if (!on) {
                return on.error();
            }
            (key == "deflate_on_oom" ? b.deflate_on_oom : b.free_page_reporting) = *on;
        } else {
            return Error(fmt::format(
                "--balloon: unknown key '{}' (amount_mib, deflate_on_oom, stats_interval, "
                "free_page_reporting)",
                key));
        }
    }
    if (!amount_given) {
        return Error("--balloon: amount_mib=N is required");
    }
    return b;
}

Result<void> check_balloon_fits(const BalloonConfig& balloon, std::uint64_t memory) {
    if ((std::uint64_t{balloon.amount_mib} << 20) > memory) {
        return Error(fmt::format(
            "--balloon: the balloon's target of {} MiB is more than the guest's {} MiB of RAM "
            "(--memory)",
            balloon.amount_mib, memory >> 20));
    }
    return ok();
}

}  // namespace vireo
