#include "api/snapshot_paths.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

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

}  // namespace vireo
