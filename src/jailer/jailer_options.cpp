#include "jailer/jailer_options.h"

#include <charconv>

#include <fmt/format.h>

namespace vireo::jailer {

namespace {

constexpr size_t kMaxIdLength = 64;

// Decimal digits only (no sign, no spaces), within [0, max].
bool parse_decimal(std::string_view s, unsigned long long max, unsigned long long& out) {
    if (s.empty()) {
        return false;
    }
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out <= max;
}

// A relative path of plain names: no "", ".", ".." component, no leading '/'.
bool plain_relative_path(std::string_view path) {
    if (path.empty() || path.front() == '/') {
        return false;
    }
    size_t start = 0;
    while (start <= path.size()) {
        const size_t slash = path.find('/', start);
        const size_t end = slash == std::string_view::npos ? path.size() : slash;
        const std::string_view part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") {
            return false;
        }
        start = end + 1;
    }
    return true;
}

}  // namespace

std::string JailerConfig::instance_dir() const {
    return fmt::format("{}/{}/{}", chroot_base, exec_name, id);
}

std::string JailerConfig::root_dir() const {
    return instance_dir() + "/root";
}

Result<void> validate_instance_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxIdLength) {
        return Error(fmt::format("--id '{}': an id has 1 to {} characters (this one has {})", id,
                                 kMaxIdLength, id.size()));
    }
    for (const char c : id) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-') {
            return Error(fmt::format(
                "--id '{}': only letters, digits and '-' are allowed (found '{}')", id, c));
        }
    }
    return ok();
}

Result<ResourceLimit> parse_resource_limit(std::string_view arg) {
    const size_t eq = arg.find('=');
    if (eq == std::string_view::npos) {
        return Error(fmt::format("--resource-limit '{}': expected RESOURCE=VALUE", arg));
    }
    ResourceLimit limit;
    limit.name = std::string(arg.substr(0, eq));
    if (limit.name == "fsize") {
        limit.resource = RLIMIT_FSIZE;
    } else if (limit.name == "no-file") {
        limit.resource = RLIMIT_NOFILE;
    } else {
        return Error(
            fmt::format("--resource-limit '{}': unknown resource '{}' (known: fsize, no-file)", arg,
                        limit.name));
    }
    unsigned long long value = 0;
    if (!parse_decimal(arg.substr(eq + 1), RLIM_INFINITY - 1, value)) {
        return Error(fmt::format("--resource-limit '{}': the value is not a decimal number", arg));
    }
    limit.value = static_cast<rlim_t>(value);
    return limit;
}

Result<CgroupSetting> parse_cgroup_setting(std::string_view arg) {
    // The value may itself hold '=' (io.max "8:0 rbps=1048576"): split at the first one.
    const size_t eq = arg.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == arg.size()) {
        return Error(fmt::format("--cgroup '{}': expected FILE=VALUE (e.g. memory.max=256M)", arg));
    }
    CgroupSetting setting{std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1))};
    // Interface files are "<controller>.<name>" directly in the cgroup's folder.
    const std::string& file = setting.file;
    if (file.find('/') != std::string::npos || file.front() == '.' ||
        file.find('.') == std::string::npos) {
        return Error(
            fmt::format("--cgroup '{}': '{}' is not a cgroup interface file name (CONTROLLER.NAME)",
                        arg, file));
    }
    if (setting.value.find('\n') != std::string::npos) {
        return Error(fmt::format("--cgroup '{}': the value holds a newline", arg));
    }
    return setting;
}

Result<JailerConfig> parse_jailer_args(const JailerArgs& args) {
    JailerConfig c;
    if (auto r = validate_instance_id(args.id); !r) {
        return r.error();
    }
    c.id = args.id;

    if (args.exec_file.empty()) {
        return Error("--exec-file is required");
    }
    c.exec_file = args.exec_file;
    const size_t slash = args.exec_file.rfind('/');
    c.exec_name = slash == std::string::npos ? args.exec_file : args.exec_file.substr(slash + 1);
    if (c.exec_name.empty() || c.exec_name == "." || c.exec_name == "..") {
        return Error(fmt::format("--exec-file '{}' does not name a file", args.exec_file));
    }

    // (uid_t)-1 means "unchanged" to setresuid: not a uid one can run as.
    unsigned long long id_value = 0;
    if (!parse_decimal(args.uid, 0xfffffffeULL, id_value)) {
        return Error(fmt::format("--uid '{}': expected a numeric user id", args.uid));
    }
    c.uid = static_cast<uid_t>(id_value);
    if (!parse_decimal(args.gid, 0xfffffffeULL, id_value)) {
        return Error(fmt::format("--gid '{}': expected a numeric group id", args.gid));
    }
    c.gid = static_cast<gid_t>(id_value);

    std::string base = args.chroot_base_dir;
    while (base.size() > 1 && base.back() == '/') {
        base.pop_back();
    }
    if (base.empty() || base.front() != '/' || base == "/") {
        return Error(fmt::format("--chroot-base-dir '{}': expected an absolute path other than /",
                                 args.chroot_base_dir));
    }
    c.chroot_base = base;

    if (!args.netns.empty()) {
        // Firecracker takes a path; a bare name is `ip netns add NAME`'s file.
        c.netns_path =
            args.netns.find('/') == std::string::npos ? "/var/run/netns/" + args.netns : args.netns;
    }

    if (args.cgroup_version == "1") {
        return Error(
            "--cgroup-version 1: not supported; vireo-jailer places the process in the unified "
            "cgroup v2 hierarchy (--cgroup-version 2)");
    }
    if (args.cgroup_version != "2") {
        return Error(fmt::format("--cgroup-version '{}': expected 2", args.cgroup_version));
    }
    for (const auto& arg : args.cgroups) {
        auto setting = parse_cgroup_setting(arg);
        if (!setting) {
            return setting.error();
        }
        c.cgroups.push_back(std::move(*setting));
    }
    if (!args.parent_cgroup.empty()) {
        std::string parent = args.parent_cgroup;
        while (parent.size() > 1 && parent.back() == '/') {
            parent.pop_back();
        }
        if (!plain_relative_path(parent)) {
            return Error(fmt::format(
                "--parent-cgroup '{}': expected a relative path without '.' or '..' components",
                args.parent_cgroup));
        }
        c.parent_cgroup = parent;
    } else {
        c.parent_cgroup = c.exec_name;
    }
    c.place_in_cgroup = !args.cgroups.empty() || !args.parent_cgroup.empty();

    for (const auto& arg : args.resource_limits) {
        auto limit = parse_resource_limit(arg);
        if (!limit) {
            return limit.error();
        }
        c.resource_limits.push_back(std::move(*limit));
    }
    c.daemonize = args.daemonize;
    c.new_pid_ns = args.new_pid_ns;
    c.exec_args = args.exec_args;
    return c;
}

}  // namespace vireo::jailer
