// The instance's cgroup in the unified (v2) hierarchy: <mount>/<parent>/<id>, created with the
// controllers its `--cgroup` files need enabled in every ancestor's cgroup.subtree_control (a v2
// controller's files appear in a cgroup only when its parent enables it), the values written,
// then the jailer's own pid moved in through cgroup.procs so the exec'd VMM (and, with
// --new-pid-ns, its child) start there.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "jailer/jailer_options.h"

namespace vireo::jailer {

class CgroupV2 {
public:
    // The first cgroup2 mount point in /proc/mounts' text (octal escapes such as \040 decoded).
    static Result<std::string> find_mount(std::string_view proc_mounts);
    // "memory.max" -> "memory"; core interface files ("cgroup.*") need none: "".
    static std::string controller_of(std::string_view file);

    // Checks, creating nothing, that every controller the settings need is available at the
    // hierarchy's root (its cgroup.controllers).
    static Result<CgroupV2> prepare(std::string mount, const JailerConfig& config);

    // Creates the folders, enables the controllers, writes the values. On failure, removes the
    // folders it created.
    Result<void> create();
    // Moves `pid` into the cgroup (cgroup.procs).
    Result<void> attach(pid_t pid);
    // Removes the folders create() made (the cgroup must hold no process).
    void remove_created();

    const std::string& path() const { return m_path; }

private:
    CgroupV2() = default;
    Result<void> write_file(const std::string& path, std::string_view value) const;

    std::string m_mount;
    std::vector<std::string> m_chain;  // relative folders from the mount down to the instance's
    std::string m_path;                // <mount>/<parent>/<id>
    std::vector<std::string> m_controllers;
    std::vector<CgroupSetting> m_settings;
    std::vector<std::string> m_created;  // absolute, in creation order
};

}  // namespace vireo::jailer
