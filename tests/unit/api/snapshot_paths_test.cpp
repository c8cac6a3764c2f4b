#include "api/snapshot_paths.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "base/test_files.h"

namespace vireo {
namespace {

using test::TempDir;
using test::write_text;

// Any block device of this machine (only stat()ed, never opened).
std::string some_block_device() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/dev", ec)) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
            return e.path().string();
        }
    }
    return "";
}

VmConfig with_drive(const std::string& path) {
    VmConfig c;
    Drive d;
    d.drive_id = "rootfs";
    d.path_on_host = path;
    c.drives.push_back(d);
    return c;
}

TEST(SnapshotDrivePaths, RegularFilesPass) {
    TempDir dir;
    write_text(dir.file("disk.img"), "x");
    EXPECT_TRUE(check_snapshot_drive_paths(with_drive(dir.file("disk.img")), {}));
}

TEST(SnapshotDrivePaths, ABlockDeviceNeedsTheOptIn) {
    const std::string dev = some_block_device();
    if (dev.empty()) {
        GTEST_SKIP() << "no block device in /dev";
    }
    auto refused = check_snapshot_drive_paths(with_drive(dev), {});
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("drive rootfs: the state file names " + dev +
                                             ", which is a block device"),
              std::string::npos)
        << refused.error().message();
    EXPECT_NE(refused.error().message().find("allow_block_devices"), std::string::npos);
    SnapshotLoadParams allowed;
    allowed.allow_block_devices = true;
    EXPECT_TRUE(check_snapshot_drive_paths(with_drive(dev), allowed));
    SnapshotLoadParams overridden;  // the request named the path itself
    overridden.drive_overrides.push_back({"rootfs", dev});
    EXPECT_TRUE(check_snapshot_drive_paths(with_drive(dev), overridden));
}

TEST(SnapshotDrivePaths, ASymlinkToADeviceIsJudgedByItsTarget) {
    TempDir dir;
    ASSERT_EQ(::symlink("/dev/null", dir.file("disk.img").c_str()), 0);
    SnapshotLoadParams allowed;
    allowed.allow_block_devices = true;  // a character device is never allowed
    auto r = check_snapshot_drive_paths(with_drive(dir.file("disk.img")), allowed);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("character device"), std::string::npos);
}

}  // namespace
}  // namespace vireo
