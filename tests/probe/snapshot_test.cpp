// Snapshot and restore of a running vCPU on /dev/kvm: a CPL3 loop counts in RBX and stores the
// count in RAM, reporting each value with an OUT. After a few counts the vCPU is stopped, its
// state and RAM go to a state file (the real container: magic, version, CRC) and a memory file,
// and a NEW PROCESS (fork, then a fresh /dev/kvm VM) restores them: its first report must be the
// next count, and the RAM cell must hold the last one, so nothing restarted.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#include "base/state_archive.h"
#include "probe_fixture.h"
#include "snapshot/snapshot_file.h"

namespace vireo::probe {
namespace {

constexpr std::uint8_t kReportPort = 0xe0;
constexpr std::uint64_t kCounterCell = 0x100000;
constexpr std::uint32_t kStopAt = 5;

Asm counter_loop() {
    Asm a;
    const auto top = a.here();
    a.mov_rcx(100000);  // a delay at native speed, so the count moves at a readable pace
    const auto delay = a.here();
    a.dec_rcx().jnz(delay);
    a.inc_rbx();
    a.mov_rax(kCounterCell).mov_mem_rax_ebx();
    a.mov_eax_ebx().mov_dx(kReportPort).out_dx_eax();
    a.jmp(top);
    return a;
}

// Runs until the guest reports `until` (or up to a watchdog) and returns the last reported value.
std::uint32_t run_until(ProbeGuest& g, std::uint32_t until, std::uint32_t* first = nullptr) {
    RecordingIo io;
    std::atomic<std::uint32_t> last{0};
    std::atomic<bool> seen_first{false};
    Vcpu& vcpu = g.vcpu();
    io.on_access([&](const IoAccess& acc) {
        if (acc.kind != IoAccess::Kind::PioWrite || acc.address != kReportPort) {
            return;
        }
        const auto v = static_cast<std::uint32_t>(acc.value);
        if (first && !seen_first.exchange(true)) {
            *first = v;
        }
        last = v;
        if (v >= until) {
            vcpu.request_exit();
        }
    });
    auto exit = g.run(io, std::chrono::seconds(20));
    EXPECT_TRUE(exit.ok());
    EXPECT_FALSE(g.timed_out()) << "the counter never reached " << until;
    return last;
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST_F(ProbeTest, CounterContinuesInANewProcessAfterRestore) {
    auto g = guest(CpuMode::User64, counter_loop());
    ASSERT_TRUE(g);
    ASSERT_EQ(run_until(*g, kStopAt), kStopAt);

    // The vCPU is out of KVM_RUN with its last OUT completed: save it.
    auto vcpu_state = g->vcpu().save_state();
    ASSERT_TRUE(vcpu_state.ok()) << vcpu_state.error().message();
    EXPECT_FALSE(vcpu_state->msrs.empty());
    char dir_template[] = "/tmp/vireo-probe-snap-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string dir = dir_template;
    SnapshotContents contents;
    contents.vireo_version = "probe";
    contents.add("vcpu0", save_to_bytes(*vcpu_state));
    ASSERT_TRUE(write_snapshot_file(dir + "/state", contents).ok());
    {
        const auto& region = g->memory().regions()[0];
        std::ofstream mem(dir + "/mem", std::ios::binary);
        mem.write(reinterpret_cast<const char*>(region.host),
                  static_cast<std::streamsize>(region.size));
    }
    g.reset();  // the original VM is gone before the restore starts

    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child: a fresh accelerator, VM and vCPU from the files alone.
        int code = 10;
        auto accel = open_probe_accelerator();
        auto file = read_snapshot_file(dir + "/state");
        if (accel && file) {
            code = 11;
            const auto* section = file->find("vcpu0");
            auto state = section ? load_from_bytes<VcpuState>(section->data)
                                 : Result<VcpuState>(Error("no vcpu0"));
            const auto ram = read_file(dir + "/mem");
            if (state) {
                code = 12;
                auto restored = ProbeGuest::restore(**accel, ram, *state);
                if (restored) {
                    code = 13;
                    const auto cell =
                        (*restored)->memory().read_obj<std::uint32_t>(GuestAddress(kCounterCell));
                    std::uint32_t first = 0;
                    const auto last = run_until(**restored, kStopAt + 3, &first);
                    std::fprintf(stderr, "restored: RAM cell %u, first report %u, last %u\n",
                                 cell ? *cell : 0, first, last);
                    if (cell && *cell == kStopAt && first == kStopAt + 1 && last == kStopAt + 3) {
                        code = 0;
                    }
                } else {
                    std::fprintf(stderr, "restore: %s\n", restored.error().message().c_str());
                }
            }
        }
        std::fflush(stderr);
        ::_exit(code);
    }
    // The child has its own 20 s watchdog on the vCPU; if it still has not finished after 60 s,
    // it is killed and the test fails rather than hanging the suite.
    int status = 0;
    pid_t waited = 0;
    for (int i = 0; i < 600 && waited == 0; ++i) {
        waited = ::waitpid(pid, &status, WNOHANG);
        if (waited == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    if (waited == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "the restored process did not finish within 60 s";
    }
    ASSERT_EQ(waited, pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "the restored process failed at stage " << WEXITSTATUS(status);
    std::remove((dir + "/state").c_str());
    std::remove((dir + "/mem").c_str());
    ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace vireo::probe
