// The balloon's requests in the VMM controller (vmm_balloon.cpp), in-process: the pre-boot rules
// (PUT only before boot, the target never above the guest's RAM at PUT and again at
// InstanceStart, PATCH /balloon only once the VM runs, the statistics' interval freely before
// boot), then a running probe guest on the software CPU with a balloon: PATCH moves the device's
// target and the stored configuration with it, statistics are read or refused as the device
// says, and a snapshot carries the target. The probe guests have no balloon driver, so nothing
// inflates here: the driver's side is nested.balloon's.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "accel/soft/soft_accelerator.h"
#include "base/test_files.h"
#include "vmm/exit_status.h"
#include "vmm/vmm_harness.h"

namespace vireo {
namespace {

using test::fault;
using test::grows_past;
using test::kernel;
using test::Vmm;

class VmmBalloonTest : public ::testing::Test {
protected:
    void configure(Vmm& vmm) {
        ASSERT_EQ(vmm.send(BootSource{.kernel_image_path = kernel("counter.elf")}).status, 204);
        ASSERT_EQ(vmm.send(MachineConfiguration{.vcpu_count = 1, .mem_size_mib = 64}).status, 204);
    }
    static BalloonConfig balloon_of(Vmm& vmm) {
        auto r = vmm.send(GetBalloon{});
        EXPECT_EQ(r.status, 200) << fault(r);
        return r.status == 200 ? std::get<BalloonConfig>(r.body) : BalloonConfig{};
    }
    static std::optional<BalloonConfig> vm_config_balloon(Vmm& vmm) {
        auto r = vmm.send(GetVmConfig{});
        EXPECT_EQ(r.status, 200);
        return r.status == 200 ? std::get<VmConfig>(r.body).balloon : std::nullopt;
    }

    test::TempDir m_dir;
    SoftAccelerator m_accel;
};

TEST_F(VmmBalloonTest, WithoutABalloonEveryBalloonRequestIs400) {
    Vmm vmm(m_accel, m_dir.file("console"));
    for (ApiRequest request : {ApiRequest(GetBalloon{}), ApiRequest(GetBalloonStats{}),
                               ApiRequest(BalloonUpdate{.amount_mib = 1}),
                               ApiRequest(BalloonStatsUpdate{.stats_polling_interval_s = 1})}) {
        auto r = vmm.send(request);
        EXPECT_EQ(r.status, 400) << request.index();
        EXPECT_NE(fault(r).find("no balloon device"), std::string::npos) << fault(r);
    }
    EXPECT_FALSE(vm_config_balloon(vmm));
}

TEST_F(VmmBalloonTest, PutBeforeBootIsStoredAndCheckedAgainstRam) {
    Vmm vmm(m_accel, m_dir.file("console"));
    configure(vmm);
    const BalloonConfig b{.amount_mib = 64, .deflate_on_oom = true, .stats_polling_interval_s = 1};
    ASSERT_EQ(vmm.send(b).status, 204);  // all of the guest's 64 MiB
    EXPECT_EQ(balloon_of(vmm), b);
    EXPECT_EQ(vm_config_balloon(vmm), b);
    // More than the guest has: 400, and the balloon stays as it was.
    auto r = vmm.send(BalloonConfig{.amount_mib = 65});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(fault(r), "the balloon's target of 65 MiB is more than the guest's 64 MiB of RAM");
    EXPECT_EQ(balloon_of(vmm), b);
    // A second PUT replaces the first.
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 8}).status, 204);
    EXPECT_EQ(balloon_of(vmm), BalloonConfig{.amount_mib = 8});
}

TEST_F(VmmBalloonTest, PatchesBeforeBoot) {
    Vmm vmm(m_accel, m_dir.file("console"));
    configure(vmm);
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 16}).status, 204);
    // The target moves only once the VM runs; before, PUT says it.
    auto r = vmm.send(BalloonUpdate{.amount_mib = 8});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("only allowed once the VM runs"), std::string::npos) << fault(r);
    EXPECT_EQ(balloon_of(vmm).amount_mib, 16U);
    // No statistics before the VM runs.
    r = vmm.send(GetBalloonStats{});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("before the VM runs"), std::string::npos) << fault(r);
    // The interval is a setting until boot: on, changed and off again are all taken.
    for (std::uint32_t s : {5U, 1U, 0U, 4294967295U}) {
        r = vmm.send(BalloonStatsUpdate{.stats_polling_interval_s = s});
        ASSERT_EQ(r.status, 204) << fault(r);
        EXPECT_EQ(balloon_of(vmm).stats_polling_interval_s, s);
    }
}

TEST_F(VmmBalloonTest, InstanceStartChecksTheTargetAgainstRamAgain) {
    Vmm vmm(m_accel, m_dir.file("console"));
    configure(vmm);
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 64}).status, 204);
    // machine-config shrinks RAM after the PUT: the start is refused, nothing is built.
    ASSERT_EQ(vmm.send(MachineConfigurationPatch{.mem_size_mib = 32}).status, 204);
    auto r = vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(fault(r), "the balloon's target of 64 MiB is more than the guest's 32 MiB of RAM");
    EXPECT_EQ(vmm.state(), InstanceState::NotStarted);
    // Put right, it starts.
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 32}).status, 204);
    r = vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart});
    ASSERT_EQ(r.status, 204) << fault(r);
    EXPECT_EQ(vmm.state(), InstanceState::Running);
}

TEST_F(VmmBalloonTest, ABalloonMakesTheVmmNoLongerFresh) {
    Vmm vmm(m_accel, m_dir.file("console"));
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 1}).status, 204);
    // A snapshot or a migration brings its own balloon; one configured here would be lost.
    auto r = vmm.send(
        SnapshotLoadParams{.snapshot_path = m_dir.file("s"), .mem_file_path = m_dir.file("m")});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("balloon"), std::string::npos) << fault(r);
    r = vmm.send(MigrationReceiveParams{.receiver_url = "unix:" + m_dir.file("mig.sock")});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("needs a fresh vireo"), std::string::npos) << fault(r);
}

TEST_F(VmmBalloonTest, ARunningVmsTargetMovesWithPatch) {
    const auto out = m_dir.file("console");
    Vmm vmm(m_accel, out);
    configure(vmm);
    const BalloonConfig b{.amount_mib = 16, .deflate_on_oom = true, .stats_polling_interval_s = 1};
    ASSERT_EQ(vmm.send(b).status, 204);
    auto r = vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart});
    ASSERT_EQ(r.status, 204) << fault(r);
    ASSERT_TRUE(grows_past(out, 0));

    // PUT is a boot setting.
    r = vmm.send(BalloonConfig{.amount_mib = 1});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(fault(r), "PUT /balloon is not allowed while the VM is 'Running'");
    EXPECT_EQ(balloon_of(vmm), b);

    ASSERT_EQ(vmm.send(BalloonUpdate{.amount_mib = 48}).status, 204);
    EXPECT_EQ(balloon_of(vmm).amount_mib, 48U);  // the device's target
    EXPECT_EQ(vm_config_balloon(vmm)->amount_mib, 48U);
    r = vmm.send(BalloonUpdate{.amount_mib = 65});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(fault(r), "the balloon's target of 65 MiB is more than the guest's 64 MiB of RAM");
    EXPECT_EQ(balloon_of(vmm).amount_mib, 48U);
    EXPECT_EQ(vm_config_balloon(vmm)->amount_mib, 48U);

    // Statistics: the device's figures (no driver: nothing held, no guest figures).
    r = vmm.send(GetBalloonStats{});
    ASSERT_EQ(r.status, 200) << fault(r);
    const auto& stats = std::get<BalloonStats>(r.body);
    EXPECT_EQ(stats.target_mib, 48U);
    EXPECT_EQ(stats.target_pages, 48U * 256);
    EXPECT_EQ(stats.actual_pages, 0U);
    EXPECT_EQ(stats.actual_mib, 0U);

    // The interval changes; statistics cannot be switched off once the device exists.
    ASSERT_EQ(vmm.send(BalloonStatsUpdate{.stats_polling_interval_s = 3}).status, 204);
    EXPECT_EQ(balloon_of(vmm).stats_polling_interval_s, 3U);
    EXPECT_EQ(vm_config_balloon(vmm)->stats_polling_interval_s, 3U);
    r = vmm.send(BalloonStatsUpdate{.stats_polling_interval_s = 0});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("cannot be switched off"), std::string::npos) << fault(r);
    EXPECT_EQ(vm_config_balloon(vmm)->stats_polling_interval_s, 3U);

    // Paused, the target still moves (Firecracker's runtime requests).
    ASSERT_EQ(vmm.send(VmState{VmStateRequest::Paused}).status, 204);
    ASSERT_EQ(vmm.send(BalloonUpdate{.amount_mib = 0}).status, 204);
    EXPECT_EQ(balloon_of(vmm).amount_mib, 0U);
    EXPECT_EQ(vmm.stop(), kExitOk);
}

TEST_F(VmmBalloonTest, StatisticsOffAreRefusedAfterBoot) {
    const auto out = m_dir.file("console");
    Vmm vmm(m_accel, out);
    configure(vmm);
    ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 0}).status, 204);
    ASSERT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 204);
    auto r = vmm.send(GetBalloonStats{});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("statistics are off"), std::string::npos) << fault(r);
    r = vmm.send(BalloonStatsUpdate{.stats_polling_interval_s = 1});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("cannot be switched on"), std::string::npos) << fault(r);
    EXPECT_EQ(vm_config_balloon(vmm)->stats_polling_interval_s, 0U);
    EXPECT_EQ(vmm.stop(), kExitOk);
}

TEST_F(VmmBalloonTest, ASnapshotKeepsTheTarget) {
    const auto state = m_dir.file("vm.snap");
    const auto mem = m_dir.file("vm.mem");
    {
        const auto out = m_dir.file("console1");
        Vmm vmm(m_accel, out);
        configure(vmm);
        ASSERT_EQ(vmm.send(BalloonConfig{.amount_mib = 4, .deflate_on_oom = true}).status, 204);
        ASSERT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 204);
        ASSERT_TRUE(grows_past(out, 0));
        ASSERT_EQ(vmm.send(BalloonUpdate{.amount_mib = 24}).status, 204);
        ASSERT_EQ(vmm.send(VmState{VmStateRequest::Paused}).status, 204);
        auto r = vmm.send(SnapshotCreateParams{.snapshot_path = state, .mem_file_path = mem});
        ASSERT_EQ(r.status, 204) << fault(r);
        EXPECT_EQ(vmm.stop(), kExitOk);
    }
    Vmm vmm(m_accel, m_dir.file("console2"));
    auto r = vmm.send(SnapshotLoadParams{.snapshot_path = state, .mem_file_path = mem});
    ASSERT_EQ(r.status, 204) << fault(r);
    const BalloonConfig expected{.amount_mib = 24, .deflate_on_oom = true};
    EXPECT_EQ(balloon_of(vmm), expected);
    EXPECT_EQ(vm_config_balloon(vmm), expected);
    ASSERT_EQ(vmm.send(BalloonUpdate{.amount_mib = 2}).status, 204);
    EXPECT_EQ(balloon_of(vmm).amount_mib, 2U);
    EXPECT_EQ(vmm.stop(), kExitOk);
}

}  // namespace
}  // namespace vireo
