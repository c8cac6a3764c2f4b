#include "jailer/cgroup_v2.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "jailer/small_file.h"

namespace vireo::jailer {

namespace {

// /proc/mounts escapes ' ', '\t', '\n' and '\\' as \ooo.
std::string unescape_mount_field(std::string_view field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
            field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
            field[i + 3] >= '0' && field[i + 3] <= '7') {
            out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                            (field[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(field[i]);
        }
    }
    return out;
}

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string w; in >> w;) {
        out.push_back(w);
    }
    return out;
}

}  // namespace

Result<std::string> CgroupV2::find_mount(std::string_view proc_mounts) {
    std::istringstream in{std::string(proc_mounts)};
    for (std::string line; std::getline(in, line);) {
        const auto f = words(line);
        if (f.size() >= 3 && f[2] == "cgroup2") {
            return unescape_mount_field(f[1]);
        }
    }
    return Error(
        "--cgroup: no cgroup2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

std::string CgroupV2::controller_of(std::string_view file) {
    const std::string_view controller = file.substr(0, file.find('.'));
    return controller == "cgroup" ? std::string() : std::string(controller);
}

Result<CgroupV2> CgroupV2::prepare(std::string mount, const JailerConfig& config) {
    CgroupV2 cg;
    cg.m_mount = std::move(mount);
    cg.m_settings = config.cgroups;
    std::string rel;
    for (size_t start = 0; start <= config.parent_cgroup.size();) {
        const size_t slash = config.parent_cgroup.find('/', start);
        const size_t end = slash == std::string::npos ? config.parent_cgroup.size() : slash;
        rel += (rel.empty() ? "" : "/") + config.parent_cgroup.substr(start, end - start);
        cg.m_chain.push_back(rel);
        start = end + 1;
    }
    cg.m_chain.push_back(rel + "/" + config.id);
    cg.m_path = cg.m_mount + "/" + cg.m_chain.back();

    auto available = read_small_file(cg.m_mount + "/cgroup.controllers");
    if (!available) {
        return available.error().wrap(
            fmt::format("--cgroup: {} is not a cgroup2 hierarchy's root", cg.m_mount));
    }
    const auto have = words(*available);
    for (const auto& s : cg.m_settings) {
        const std::string controller = controller_of(s.file);
        if (controller.empty() || std::find(cg.m_controllers.begin(), cg.m_controllers.end(),
                                            controller) != cg.m_controllers.end()) {
            continue;
        }
        if (std::find(have.begin(), have.end(), controller) == have.end()) {
            return Error(fmt::format(
                "--cgroup {}={}: the '{}' controller is not available in the cgroup2 hierarchy "
                "at {} (cgroup.controllers: '{}'; is it bound to a cgroup v1 hierarchy?)",
                s.file, s.value, controller, cg.m_mount, fmt::join(have, " ")));
        }
        cg.m_controllers.push_back(controller);
    }
    return cg;
}

Result<void> CgroupV2::write_file(const std::string& path, std::string_view value) const {
    // O_NOFOLLOW: the folders are cgroupfs (no symlinks there), a planted link is refused.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
        return Error::from_errno(path);
    }
    // One write: cgroupfs parses each write() as one value.
    const ssize_t n = ::write(fd.get(), value.data(), value.size());
    if (n < 0) {
        return Error::from_errno(fmt::format("writing '{}' to {}", value, path));
    }
    if (static_cast<size_t>(n) != value.size()) {
        return Error(fmt::format("writing '{}' to {}: short write", value, path));
    }
    return ok();
}

Result<void> CgroupV2::create() {
    auto fail = [this](Error e) -> Result<void> {
        remove_created();
        return e;
    };
    // Every folder above the instance's: created when missing (an existing one, e.g. the
    // parent shared by every instance, is used as it is).
    for (size_t i = 0; i + 1 < m_chain.size(); ++i) {
        const std::string dir = m_mount + "/" + m_chain[i];
        if (::mkdir(dir.c_str(), 0755) == 0) {
            m_created.push_back(dir);
        } else if (errno != EEXIST) {
            return fail(Error::from_errno(fmt::format("--cgroup: creating {}", dir)));
        }
    }
    // Top-down: a cgroup can enable only what its parent enabled. The root cgroup and cgroups
    // without processes accept this (v2's "no internal processes" rule).
    for (const auto& controller : m_controllers) {
        for (size_t i = 0; i < m_chain.size(); ++i) {
            const std::string dir = i == 0 ? m_mount : m_mount + "/" + m_chain[i - 1];
            const std::string file = dir + "/cgroup.subtree_control";
            auto enabled = read_small_file(file);
            if (enabled) {
                const auto on = words(*enabled);
                if (std::find(on.begin(), on.end(), controller) != on.end()) {
                    continue;
                }
            }
            if (auto r = write_file(file, "+" + controller); !r) {
                return fail(r.error().wrap(
                    fmt::format("--cgroup: enabling the {} controller", controller)));
            }
        }
    }
    // The instance's own cgroup: Firecracker reuses an existing one, so does this.
    if (::mkdir(m_path.c_str(), 0755) == 0) {
        m_created.push_back(m_path);
    } else if (errno != EEXIST) {
        return fail(Error::from_errno(fmt::format("--cgroup: creating {}", m_path)));
    }
    for (const auto& s : m_settings) {
        if (auto r = write_file(m_path + "/" + s.file, s.value); !r) {
            return fail(r.error().wrap(fmt::format("--cgroup {}={}", s.file, s.value)));
        }
    }
    return ok();
}

Result<void> CgroupV2::attach(pid_t pid) {
    if (auto r = write_file(m_path + "/cgroup.procs", std::to_string(pid)); !r) {
        return r.error().wrap("--cgroup: moving the process in");
    }
    return ok();
}

void CgroupV2::remove_created() {
    for (auto it = m_created.rbegin(); it != m_created.rend(); ++it) {
        static_cast<void>(::rmdir(it->c_str()));
    }
    m_created.clear();
}

}  // namespace vireo::jailer
