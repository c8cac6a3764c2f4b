#include "app/device_spec.h"

#include <map>

#include <fmt/format.h>

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

}  // namespace

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
        } else {
            return Error(
                fmt::format("--disk: unknown key '{}' (path, readonly, direct, serial)", key));
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
        } else {
            return Error(fmt::format("--net: unknown key '{}' (tap, mac)", key));
        }
    }
    if (n.tap.empty()) {
        return Error("--net: tap=NAME is required");
    }
    return n;
}

}  // namespace vireo
