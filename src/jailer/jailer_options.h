// vireo-jailer's command line (Firecracker's jailer flags, docs/jailer.md there): what was given,
// and the checked form the jailer acts on. Parsing here touches no file: host paths are checked
// by jail_paths.h before anything is created.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vireo::jailer {

// The flags as strings, as the command line gave them.
struct JailerArgs {
    std::string id;
    std::string exec_file;
    std::string uid;
    std::string gid;
    std::string chroot_base_dir = "/srv/jailer";
    std::string netns;
    std::vector<std::string> cgroups;  // FILE=VALUE, repeatable
    std::string cgroup_version = "2";
    std::string parent_cgroup;
    std::vector<std::string> resource_limits;  // fsize=N, no-file=N, repeatable
    bool daemonize = false;
    bool new_pid_ns = false;
    std::vector<std::string> exec_args;  // after `--`: passed on to the exec file
};

// `--resource-limit NAME=VALUE`: setrlimit(resource) with soft = hard = value.
struct ResourceLimit {
    std::string name;
    int resource = 0;
    rlim_t value = 0;
};

// `--cgroup FILE=VALUE`: VALUE written to FILE in the instance's cgroup.
struct CgroupSetting {
    std::string file;
    std::string value;
};

struct JailerConfig {
    std::string id;
    std::string exec_file;  // as given
    std::string exec_name;  // its last path component: the jail's folder and the copy's name
    uid_t uid = 0;
    gid_t gid = 0;
    std::string chroot_base;  // no trailing '/'
    std::string netns_path;   // empty: stay in the jailer's network namespace
    std::vector<CgroupSetting> cgroups;
    std::string parent_cgroup;     // relative to the cgroup2 mount; default exec_name
    bool place_in_cgroup = false;  // --cgroup or --parent-cgroup given
    std::vector<ResourceLimit> resource_limits;
    bool daemonize = false;
    bool new_pid_ns = false;
    std::vector<std::string> exec_args;

    // <chroot_base>/<exec_name>/<id>: the instance's folder, which must not exist yet.
    std::string instance_dir() const;
    // <instance_dir>/root: the jail's "/" once pivot_root is done.
    std::string root_dir() const;
};

// Firecracker's rule: 1 to 64 characters, ASCII letters, digits and '-'.
Result<void> validate_instance_id(std::string_view id);
Result<ResourceLimit> parse_resource_limit(std::string_view arg);
Result<CgroupSetting> parse_cgroup_setting(std::string_view arg);
// Checks every flag's syntax; reads no file.
Result<JailerConfig> parse_jailer_args(const JailerArgs& args);

}  // namespace vireo::jailer
