#include "api/snapshot_paths.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "base/file_open.h"

namespace vireo {

Result<void> check_snapshot_drive_paths(const VmConfig& config, const SnapshotLoadParams& params) {
    for (const Drive& d : config.drives) {
        const bool overridden =
            std::any_of(params.drive_overrides.begin(), params.drive_overrides.end(),
                        [&](const DriveOverride& o) { return o.drive_id == d.drive_id; });
        if (overridden) {
            continue;  // the caller named this path in the request
        }
        struct stat st {};
        if (::stat(d.path_on_host.c_str(), &st) != 0) {
            return Error::from_errno("drive " + d.drive_id + ": the state file's path " +
                                     d.path_on_host);
        }
        if (S_ISREG(st.st_mode) || (S_ISBLK(st.st_mode) && params.allow_block_devices)) {
            continue;
        }
        std::string why = "drive " + d.drive_id + ": the state file names " + d.path_on_host +
                          ", which is " + file_type_name(st.st_mode) +
                          "; drive paths from a state file must be regular files";
        why += S_ISBLK(st.st_mode)
                   ? " (name it in drive_overrides, or allow it with allow_block_devices)"
                   : " (name another image in drive_overrides)";
        return Error(why, EPERM);
    }
    return ok();
}

Result<void> apply_overrides(VmConfig& config, std::span<const NetworkOverride> networks,
                             std::span<const DriveOverride> drives, std::string_view context) {
    for (const NetworkOverride& o : networks) {
        auto it = std::find_if(config.network_interfaces.begin(), config.network_interfaces.end(),
                               [&](const NetworkInterface& n) { return n.iface_id == o.iface_id; });
        if (it == config.network_interfaces.end()) {
            return Error(fmt::format("{}: network_overrides: the VM has no interface {}", context,
                                     o.iface_id));
        }
        it->host_dev_name = o.host_dev_name;
    }
    for (const DriveOverride& o : drives) {
        auto it = std::find_if(config.drives.begin(), config.drives.end(),
                               [&](const Drive& d) { return d.drive_id == o.drive_id; });
        if (it == config.drives.end()) {
            return Error(
                fmt::format("{}: drive_overrides: the VM has no drive {}", context, o.drive_id));
        }
        it->path_on_host = o.path_on_host;
    }
    return ok();
}

}  // namespace vireo
