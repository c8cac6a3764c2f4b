// The VMM's lifecycle with a guest that really runs, in-process (issue 12: every state transition
// under unit test): the software CPU (accel/soft) runs tests/lib/make-probe-kernel's guests on
// this machine, so InstanceStart, Running <-> Paused, a snapshot and its restore into a second
// controller, the guest's power-off and the VMM's stop all happen here, with real files.
//
//   counter.elf   counts forever, writing 'b'..'z','a',.. to COM1: progress is the console's size
//   poweroff.elf  writes S5 to the ACPI sleep-control register at once
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "accel/soft/soft_accelerator.h"
#include "base/test_files.h"
#include "vmm/exit_status.h"
#include "vmm/vmm_harness.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using test::fault;
using test::grows_past;
using test::kernel;
using test::size_of;
using test::Vmm;

class VmmLifecycleTest : public ::testing::Test {
protected:
    void configure(Vmm& vmm, const char* guest) {
        ASSERT_EQ(vmm.send(BootSource{.kernel_image_path = kernel(guest)}).status, 204);
        ASSERT_EQ(vmm.send(MachineConfiguration{.vcpu_count = 1, .mem_size_mib = 64}).status, 204);
    }

    test::TempDir m_dir;
    SoftAccelerator m_accel;
};

TEST_F(VmmLifecycleTest, StartPauseResumeStop) {
    const auto out = m_dir.file("console");
    Vmm vmm(m_accel, out);
    configure(vmm, "counter.elf");
    EXPECT_EQ(vmm.state(), InstanceState::NotStarted);
    auto r = vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart});
    ASSERT_EQ(r.status, 204) << fault(r);
    EXPECT_EQ(vmm.state(), InstanceState::Running);
    ASSERT_TRUE(grows_past(out, 0)) << "the guest never wrote to its console";

    // Running: the boot configuration is fixed, and a second start is refused.
    EXPECT_EQ(vmm.send(BootSource{.kernel_image_path = kernel("poweroff.elf")}).status, 400);
    EXPECT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 400);
    EXPECT_EQ(vmm.state(), InstanceState::Running);

    // Paused: the guest makes no progress; pausing again is fine.
    ASSERT_EQ(vmm.send(VmState{VmStateRequest::Paused}).status, 204);
    EXPECT_EQ(vmm.state(), InstanceState::Paused);
    const auto at_pause = size_of(out);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(size_of(out), at_pause);
    EXPECT_EQ(vmm.send(VmState{VmStateRequest::Paused}).status, 204);

    // Resumed: it goes on.
    ASSERT_EQ(vmm.send(VmState{VmStateRequest::Resumed}).status, 204);
    EXPECT_EQ(vmm.state(), InstanceState::Running);
    EXPECT_TRUE(grows_past(out, at_pause));

    // The VMM's stop ends the VM: exit status 0.
    EXPECT_EQ(vmm.stop(), kExitOk);
}

TEST_F(VmmLifecycleTest, TheGuestsPowerOffEndsTheVmm) {
    Vmm vmm(m_accel, m_dir.file("console"));
    configure(vmm, "poweroff.elf");
    ASSERT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 204);
    ASSERT_TRUE(vmm.ended_within(20s)) << "run() did not return after the guest powered off";
    EXPECT_EQ(vmm.status(), kExitOk);
}

TEST_F(VmmLifecycleTest, SnapshotOfAPausedVmRestoresInAnotherController) {
    const auto out1 = m_dir.file("console1");
    const auto out2 = m_dir.file("console2");
    const auto state = m_dir.file("vm.snap");
    const auto mem = m_dir.file("vm.mem");
    {
        Vmm vmm(m_accel, out1);
        configure(vmm, "counter.elf");
        ASSERT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 204);
        ASSERT_TRUE(grows_past(out1, 0));
        // Only a paused VM is snapshotted.
        auto r = vmm.send(SnapshotCreateParams{.snapshot_path = state, .mem_file_path = mem});
        EXPECT_EQ(r.status, 400) << fault(r);
        ASSERT_EQ(vmm.send(VmState{VmStateRequest::Paused}).status, 204);
        r = vmm.send(SnapshotCreateParams{.snapshot_path = state, .mem_file_path = mem});
        ASSERT_EQ(r.status, 204) << fault(r);
        EXPECT_EQ(vmm.state(), InstanceState::Paused);
        EXPECT_EQ(size_of(mem), 64U << 20);
        EXPECT_EQ(vmm.stop(), kExitOk);
    }
    Vmm vmm(m_accel, out2);
    // A load names files that exist: one that does not is the request's fault (400), and the
    // instance stays as it was.
    auto r =
        vmm.send(SnapshotLoadParams{.snapshot_path = m_dir.file("none"), .mem_file_path = mem});
    EXPECT_EQ(r.status, 400) << fault(r);
    EXPECT_EQ(vmm.state(), InstanceState::NotStarted);
    r = vmm.send(SnapshotLoadParams{.snapshot_path = state, .mem_file_path = mem});
    ASSERT_EQ(r.status, 204) << fault(r);
    EXPECT_EQ(vmm.state(), InstanceState::Paused);
    EXPECT_EQ(size_of(out2), 0U);
    ASSERT_EQ(vmm.send(VmState{VmStateRequest::Resumed}).status, 204);
    EXPECT_EQ(vmm.state(), InstanceState::Running);
    // The restored guest counts on from where it stopped: its first letter follows the last one
    // the first VM wrote ('b', 'c', ... 'z', 'a').
    ASSERT_TRUE(grows_past(out2, 0)) << "the restored guest does not run";
    const std::string before = test::read_text(out1);
    const std::string after = test::read_text(out2);
    ASSERT_FALSE(before.empty());
    const char expected = before.back() == 'z' ? 'a' : static_cast<char>(before.back() + 1);
    EXPECT_EQ(after.front(), expected)
        << "before: ..." << before.substr(before.size() - 10) << " after: " << after.substr(0, 10);
    EXPECT_EQ(vmm.stop(), kExitOk);
}

}  // namespace
}  // namespace vireo
