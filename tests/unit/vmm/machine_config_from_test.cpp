// The API's drive and machine fields reach the machine with Firecracker's meaning (issue 12:
// nothing accepted and then dropped).
#include "vmm/machine_config_from.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

VmConfig with_drive(Drive d) {
    VmConfig c;
    c.boot_source = BootSource{.kernel_image_path = "/k"};
    c.drives.push_back(std::move(d));
    return c;
}

TEST(MachineConfigFrom, CacheTypeDecidesWhetherTheDiskOffersAFlush) {
    Drive d{.drive_id = "a", .path_on_host = "/a"};
    auto m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_TRUE(m->disks[0].flush);  // vireo's default: Writeback
    d.cache_type = CacheType::Unsafe;
    m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->disks[0].flush);
    d.cache_type = CacheType::Writeback;
    m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->disks[0].flush);
}

TEST(MachineConfigFrom, IoEngineChoosesTheBlockEngine) {
    Drive d{.drive_id = "a", .path_on_host = "/a"};
    auto m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->disks[0].engine, BlockEngineKind::Auto);
    d.io_engine = IoEngine::Sync;
    m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->disks[0].engine, BlockEngineKind::ThreadPool);
    d.io_engine = IoEngine::Async;
    m = machine_config_from(with_drive(d), false);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->disks[0].engine, BlockEngineKind::IoUring);
}

TEST(MachineConfigFrom, SmtAndDirtyTrackingReachTheMachine) {
    VmConfig c = with_drive(Drive{.drive_id = "a", .path_on_host = "/a"});
    c.machine_config.vcpu_count = 4;
    c.machine_config.smt = true;
    c.machine_config.track_dirty_pages = true;
    auto m = machine_config_from(c, false);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->smt);
    EXPECT_TRUE(m->track_dirty_pages);
    EXPECT_EQ(m->cpus, 4U);
}

TEST(MachineConfigFrom, TheRootDriveIsTheFirstDisk) {
    VmConfig c;
    c.boot_source = BootSource{.kernel_image_path = "/k"};
    c.drives.push_back(Drive{.drive_id = "data", .path_on_host = "/d"});
    c.drives.push_back(Drive{.drive_id = "root", .path_on_host = "/r", .is_root_device = true});
    auto m = machine_config_from(c, false);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->disks.size(), 2U);
    EXPECT_EQ(m->disks[0].path, "/r");
    EXPECT_NE(m->cmdline.find("root=/dev/vda rw"), std::string::npos) << m->cmdline;
}

TEST(MachineConfigFrom, NoBootSourceIsAnError) {
    auto m = machine_config_from(VmConfig{}, false);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("boot source"), std::string::npos);
}

TEST(MachineConfigFrom, TheBalloonReachesTheMachine) {
    VmConfig c = with_drive(Drive{.drive_id = "a", .path_on_host = "/a"});
    auto m = machine_config_from(c, false);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->balloon);
    c.balloon = BalloonConfig{.amount_mib = 128,
                              .deflate_on_oom = true,
                              .stats_polling_interval_s = 3,
                              .free_page_reporting = true};
    m = machine_config_from(c, false);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->balloon, c.balloon);
}

// machine-config may shrink RAM after PUT /balloon: the target is checked again.
TEST(MachineConfigFrom, ABalloonLargerThanRamIsAnError) {
    VmConfig c = with_drive(Drive{.drive_id = "a", .path_on_host = "/a"});
    c.machine_config.mem_size_mib = 64;
    c.balloon = BalloonConfig{.amount_mib = 65};
    auto m = machine_config_from(c, false);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().message(),
              "the balloon's target of 65 MiB is more than the guest's 64 MiB of RAM");
}

}  // namespace
}  // namespace vireo
