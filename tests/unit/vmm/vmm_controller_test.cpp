// The VMM's lifecycle state machine in-process (issue 12: the VMM core as a library): requests are
// applied on the controller's thread, requests the state does not allow answer 400 and change
// nothing, and a VM that cannot be built leaves the instance "Not started" with the reason. The
// transitions with a running guest (Running <-> Paused, snapshot and restore, power-off, stop)
// are in vmm_lifecycle_test.cpp, on the software CPU; on real KVM, cli.api, cli.snapshot and
// nested.api run them again.
#include "vmm/vmm_controller.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <thread>

#include "base/test_files.h"
#include "vmm/exit_status.h"

namespace vireo {
namespace {

// An accelerator that cannot create VMs: InstanceStart fails after the configuration was
// accepted, as on a host whose /dev/kvm refuses KVM_CREATE_VM (with `error`).
class NoVmAccelerator final : public Accelerator {
public:
    const char* name() const override { return "none"; }
    Result<std::unique_ptr<Vm>> create_vm(const VmOptions&) override { return error; }
    Error error = Error::from_errno("KVM_CREATE_VM (no VMs in this test)", EMFILE);
    Result<std::vector<CpuidEntry>> supported_cpuid() override { return std::vector<CpuidEntry>{}; }
};

class VmmControllerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto console = open_console("file:/dev/null");
        ASSERT_TRUE(console) << console.error().message();
        m_console = std::move(console).value();
        auto c = VmmController::create(m_accel, *m_console, VmmOptions{});
        ASSERT_TRUE(c) << c.error().message();
        m_controller = std::move(c).value();
        m_thread = std::thread([this] { m_status = m_controller->run(); });
    }
    void TearDown() override {
        if (m_controller) {
            m_controller->stop("test end");
        }
        if (m_thread.joinable()) {
            m_thread.join();
        }
    }

    ApiResponse send(ApiRequest r) { return m_controller->handle(std::move(r)); }
    InstanceState state() {
        auto r = send(GetInstanceInfo{});
        EXPECT_EQ(r.status, 200);
        return std::get<InstanceInfo>(r.body).state;
    }
    std::string fault(const ApiResponse& r) {
        const auto* f = std::get_if<Fault>(&r.body);
        return f != nullptr ? f->fault_message : std::string();
    }

    test::TempDir m_dir;
    NoVmAccelerator m_accel;
    std::unique_ptr<Console> m_console;
    std::unique_ptr<VmmController> m_controller;
    std::thread m_thread;
    int m_status = -1;
};

TEST_F(VmmControllerTest, StartsNotStartedAndTakesConfiguration) {
    EXPECT_EQ(state(), InstanceState::NotStarted);
    EXPECT_EQ(send(MachineConfiguration{.vcpu_count = 2, .mem_size_mib = 256}).status, 204);
    auto got = send(GetMachineConfig{});
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(std::get<MachineConfiguration>(got.body).vcpu_count, 2U);
    EXPECT_EQ(std::get<MachineConfiguration>(got.body).mem_size_mib, 256U);
    EXPECT_EQ(state(), InstanceState::NotStarted);
    // A PATCH is checked against the whole result, as a PUT is: 2 vCPUs take smt, 3 do not, and
    // a refused PATCH changes nothing.
    EXPECT_EQ(send(MachineConfigurationPatch{.smt = true}).status, 204);
    auto odd = send(MachineConfigurationPatch{.vcpu_count = 3});
    EXPECT_EQ(odd.status, 400);
    EXPECT_NE(fault(odd).find("1 or even"), std::string::npos) << fault(odd);
    got = send(GetMachineConfig{});
    EXPECT_EQ(std::get<MachineConfiguration>(got.body).vcpu_count, 2U);
    EXPECT_TRUE(std::get<MachineConfiguration>(got.body).smt);
}

TEST_F(VmmControllerTest, PauseAndResumeBeforeStartAreRefused) {
    for (auto s : {VmStateRequest::Paused, VmStateRequest::Resumed}) {
        auto r = send(VmState{s});
        EXPECT_EQ(r.status, 400);
        EXPECT_FALSE(fault(r).empty());
        EXPECT_EQ(state(), InstanceState::NotStarted);
    }
    auto snap = send(
        SnapshotCreateParams{.snapshot_path = m_dir.file("s"), .mem_file_path = m_dir.file("m")});
    EXPECT_EQ(snap.status, 400) << fault(snap);
    EXPECT_EQ(state(), InstanceState::NotStarted);
}

TEST_F(VmmControllerTest, StartWithoutABootSourceIsRefused) {
    auto r = send(InstanceActionInfo{InstanceActionType::InstanceStart});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("boot"), std::string::npos) << fault(r);
    EXPECT_EQ(state(), InstanceState::NotStarted);
}

TEST_F(VmmControllerTest, AVmThatCannotBeBuiltLeavesItNotStarted) {
    const auto kernel = m_dir.file("vmlinux");
    test::write_text(kernel, std::string(4096, '\0'));
    ASSERT_EQ(send(BootSource{.kernel_image_path = kernel}).status, 204);
    auto r = send(InstanceActionInfo{InstanceActionType::InstanceStart});
    // The host failed a request that was fine: 500, not 400.
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(fault(r).find("no VMs in this test"), std::string::npos) << fault(r);
    EXPECT_EQ(state(), InstanceState::NotStarted);
    // Still configurable, and a second attempt fails the same way.
    EXPECT_EQ(send(MachineConfiguration{.vcpu_count = 1, .mem_size_mib = 128}).status, 204);
    EXPECT_EQ(send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 500);
}

// What the request names is at fault: 400, and nothing is built.
TEST_F(VmmControllerTest, ABadRequestIs400AndAHostFailure500) {
    auto r = send(BootSource{.kernel_image_path = m_dir.file("no-such-kernel")});
    EXPECT_EQ(r.status, 400) << fault(r);
    EXPECT_NE(fault(r).find("no-such-kernel"), std::string::npos) << fault(r);
    // An accelerator that refuses the configuration itself (not a host failure) is a 400 too.
    const auto kernel = m_dir.file("vmlinux");
    test::write_text(kernel, std::string(4096, '\0'));
    ASSERT_EQ(send(BootSource{.kernel_image_path = kernel}).status, 204);
    m_accel.error = Error("this accelerator takes no such VM");
    r = send(InstanceActionInfo{InstanceActionType::InstanceStart});
    EXPECT_EQ(r.status, 400) << fault(r);
    EXPECT_EQ(state(), InstanceState::NotStarted);
}

TEST(ErrorKind, FollowsTheErrnoAndSurvivesWrap) {
    EXPECT_EQ(Error("bad value").kind(), ErrorKind::Invalid);
    EXPECT_EQ(Error::host("mmap").kind(), ErrorKind::Host);
    for (int e : {ENOENT, ENOTDIR, EISDIR, EACCES, EPERM, ELOOP, ENAMETOOLONG, EEXIST, EROFS}) {
        EXPECT_EQ(Error::from_errno("open x", e).kind(), ErrorKind::Invalid) << e;
    }
    for (int e : {ENOMEM, EIO, ENOSPC, EMFILE, EINVAL, EFAULT, EBUSY}) {
        EXPECT_EQ(Error::from_errno("ioctl", e).kind(), ErrorKind::Host) << e;
    }
    const Error wrapped = Error::from_errno("write", ENOSPC).wrap("snapshot");
    EXPECT_EQ(wrapped.kind(), ErrorKind::Host);
    EXPECT_EQ(wrapped.sys_errno(), ENOSPC);
    EXPECT_EQ(ApiResponse::failure(wrapped).status, 500);
    EXPECT_EQ(ApiResponse::failure(Error("no")).status, 400);
}

TEST_F(VmmControllerTest, StopEndsRunWithoutAVm) {
    m_controller->stop("test");
    m_thread.join();
    EXPECT_EQ(m_status, kExitOk);
}

}  // namespace
}  // namespace vireo
