#include "api/config_file.h"

#include "base/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <set>
#include <string>

#include "api/api_json.h"
#include "api/api_parser.h"
#include "api/json_reader.h"
#include "api/section_readers.h"
#include "base/unique_fd.h"

namespace vireo {

namespace {

using api_detail::Json;
using api_detail::quote_text;

struct Unsupported {
    std::string_view key;
    std::string_view what;
};

// FullVmConfiguration's sections that vireo cannot configure yet.
constexpr std::array kUnsupportedSections{
    Unsupported{"vsock", "vsock devices"},
    Unsupported{"mmds-config", "the microVM metadata service (MMDS)"},
    Unsupported{"cpu-config", "custom CPU templates"},
    Unsupported{"pmem", "virtio-pmem devices"},
    Unsupported{"memory-hotplug", "memory hotplug (virtio-mem)"},
    Unsupported{"serial", "serial output configuration"},
};

constexpr std::array<std::string_view, 8> kSections{
    "boot-source", "drives",  "machine-config", "network-interfaces",
    "logger",      "metrics", "entropy",        "balloon",
};

// Reads every entry of the array section `key` with `read`, appending to `out`.
template <typename T>
Result<void> read_array(const Json& root, std::string_view key,
                        Result<T> (*read)(const Json&, const std::string&), std::vector<T>& out) {
    auto it = root.find(std::string(key));
    if (it == root.end() || it->is_null()) {
        return ok();
    }
    if (!it->is_array()) {
        return Error("`" + std::string(key) + "` must be an array, not " + it->type_name());
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
        auto value = read((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
        if (!value) {
            return value.error();
        }
        out.push_back(std::move(value).value());
    }
    return ok();
}

// Reads the object section `key` with `read` into `out`; absent or null leaves it unset.
template <typename T>
Result<void> read_object(const Json& root, std::string_view key,
                         Result<T> (*read)(const Json&, const std::string&),
                         std::optional<T>& out) {
    auto it = root.find(std::string(key));
    if (it == root.end() || it->is_null()) {
        return ok();
    }
    auto value = read(*it, std::string(key));
    if (!value) {
        return value.error();
    }
    out = std::move(value).value();
    return ok();
}

Result<void> check_sections(const Json& root) {
    for (const auto& item : root.items()) {
        const std::string& key = item.key();
        const Json& value = item.value();
        if (std::find(kSections.begin(), kSections.end(), key) != kSections.end()) {
            continue;
        }
        auto unsupported = std::find_if(kUnsupportedSections.begin(), kUnsupportedSections.end(),
                                        [&](const Unsupported& u) { return u.key == key; });
        if (unsupported != kUnsupportedSections.end()) {
            if (value.is_null()) {
                continue;
            }
            return Error("section `" + key + "` (" + std::string(unsupported->what) +
                         ") is not supported by vireo yet");
        }
        std::string expected;
        for (auto s : kSections) {
            expected += (expected.empty() ? "`" : ", `") + std::string(s) + "`";
        }
        return Error("unknown section " + quote_text(key) + "; expected one of " + expected);
    }
    return ok();
}

// Ids, taps and MACs name one device each; one root device at most (Firecracker's rules).
Result<void> check_unique(const VmConfig& config) {
    std::set<std::string> drive_ids;
    const Drive* root = nullptr;
    for (const auto& d : config.drives) {
        if (!drive_ids.insert(d.drive_id).second) {
            return Error("drives: `drive_id` " + quote_text(d.drive_id) + " is used twice");
        }
        if (d.is_root_device) {
            if (root != nullptr) {
                return Error("drives: " + quote_text(root->drive_id) + " and " +
                             quote_text(d.drive_id) + " are both root devices; at most one may be");
            }
            root = &d;
        }
    }
    std::set<std::string> iface_ids;
    std::set<std::string> taps;
    std::set<GuestMac> macs;
    for (const auto& n : config.network_interfaces) {
        if (!iface_ids.insert(n.iface_id).second) {
            return Error("network-interfaces: `iface_id` " + quote_text(n.iface_id) +
                         " is used twice");
        }
        if (!taps.insert(n.host_dev_name).second) {
            return Error("network-interfaces: `host_dev_name` " + quote_text(n.host_dev_name) +
                         " is used twice");
        }
        if (n.guest_mac && !macs.insert(*n.guest_mac).second) {
            return Error("network-interfaces: `guest_mac` " + format_guest_mac(*n.guest_mac) +
                         " is used twice");
        }
    }
    return ok();
}

Result<VmConfig> parse_sections(std::string_view text) {
    if (text.size() > kMaxConfigFileSize) {
        return Error("larger than " + std::to_string(kMaxConfigFileSize) + " bytes");
    }
    auto parsed = api_detail::parse_json(text);
    if (!parsed) {
        return parsed.error();
    }
    const Json& root = *parsed;
    if (!root.is_object()) {
        return Error(std::string("expected a JSON object, not ") + root.type_name());
    }
    if (auto sections = check_sections(root); !sections) {
        return sections.error();
    }
    VmConfig config;
    if (auto r = read_object(root, "boot-source", api_detail::read_boot_source, config.boot_source);
        !r) {
        return r.error();
    }
    if (!config.boot_source) {
        return Error("missing required section `boot-source`");
    }
    std::optional<MachineConfiguration> machine;
    if (auto r =
            read_object(root, "machine-config", api_detail::read_machine_configuration, machine);
        !r) {
        return r.error();
    }
    config.machine_config = machine.value_or(MachineConfiguration{});
    if (auto r = read_array(root, "drives", api_detail::read_drive, config.drives); !r) {
        return r.error();
    }
    if (auto r = read_array(root, "network-interfaces", api_detail::read_network_interface,
                            config.network_interfaces);
        !r) {
        return r.error();
    }
    if (auto r = read_object(root, "logger", api_detail::read_logger, config.logger); !r) {
        return r.error();
    }
    if (auto r = read_object(root, "metrics", api_detail::read_metrics, config.metrics); !r) {
        return r.error();
    }
    if (auto r = read_object(root, "entropy", api_detail::read_entropy_device, config.entropy);
        !r) {
        return r.error();
    }
    if (auto r = read_object(root, "balloon", api_detail::read_balloon, config.balloon); !r) {
        return r.error();
    }
    if (auto r = check_unique(config); !r) {
        return r.error();
    }
    if (config.balloon) {
        // Firecracker configures the machine before the balloon, and checks it against RAM.
        if (auto r = validate_balloon_target(config.balloon->amount_mib,
                                             config.machine_config.mem_size_mib);
            !r) {
            return r.error().wrap("balloon");
        }
    }
    return config;
}

}  // namespace

Result<VmConfig> parse_config_file(std::string_view text) {
    auto config = parse_sections(text);
    if (!config) {
        return config.error().wrap("config file");
    }
    return config;
}

Result<VmConfig> load_config_file(const std::string& path) {
    auto bytes = read_whole_file(path, kMaxConfigFileSize);
    if (!bytes) {
        return bytes.error().wrap("config file " + path);
    }
    const std::string text(bytes->begin(), bytes->end());
    auto config = parse_sections(text);
    if (!config) {
        return config.error().wrap("config file " + path);
    }
    return config;
}

}  // namespace vireo
