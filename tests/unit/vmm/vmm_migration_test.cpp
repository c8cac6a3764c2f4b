// Live migration between two VMMs in one process (issue 14), on the software CPU: a counting
// guest (counter.elf writes 'b'..'z','a',.. to COM1) moves from one controller to another over a
// Unix socket and over loopback TCP and counts on without a repeat or a gap; and the failures that
// must leave the source running: no destination, a destination that vanishes mid-transfer, a
// corrupted byte, cancel, a destination that lacks a CPU feature. After each, a later migration
// succeeds.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "accel/soft/soft_accelerator.h"
#include "base/test_files.h"
#include "base/unique_fd.h"
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

// The soft CPU without SSE2 in leaf 1: a host that cannot give the guest what it was given.
class LackingAccelerator final : public Accelerator {
public:
    explicit LackingAccelerator(Accelerator& inner) : m_inner(inner) {}
    const char* name() const override { return "soft-without-sse2"; }
    Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override {
        return m_inner.create_vm(options);
    }
    Result<std::vector<CpuidEntry>> supported_cpuid() override {
        auto all = m_inner.supported_cpuid();
        if (all) {
            for (auto& e : *all) {
                if (e.function == 1) {
                    e.edx &= ~(1U << 26);
                }
            }
        }
        return all;
    }

private:
    Accelerator& m_inner;
};

MigrationInfo migration_of(Vmm& vmm) {
    auto r = vmm.send(GetMigration{});
    EXPECT_EQ(r.status, 200);
    return r.status == 200 ? std::get<MigrationInfo>(r.body) : MigrationInfo{};
}

// Waits (bounded) until GET /migration leaves "active".
MigrationInfo settled(Vmm& vmm, std::chrono::seconds limit = 60s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    MigrationInfo m = migration_of(vmm);
    while (m.state == "active" && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
        m = migration_of(vmm);
    }
    return m;
}

char next_letter(char c) {
    return c == 'z' ? 'a' : static_cast<char>(c + 1);
}

class VmmMigrationTest : public ::testing::Test {
protected:
    // counter.elf with an 8 MiB initrd of random bytes: guest RAM that takes a while to send
    // (the counter itself touches a few pages), so a link can be cut, slowed or corrupted mid-way.
    void start_counter(Vmm& vmm, const std::string& console,
                       MemoryBacking backing = MemoryBacking::Anonymous) {
        const std::string initrd = m_dir.file("random.img");
        std::string bytes(8 << 20, '\0');
        std::uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (std::size_t i = 0; i < bytes.size(); i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::memcpy(bytes.data() + i, &x, 8);
        }
        test::write_text(initrd, bytes);
        // A disk the guest never touches: its image's lock must move with the VM (the
        // destination opens the same path, shared storage, while the source still exists).
        const std::string disk = m_dir.file("disk.img");
        test::write_text(disk, std::string(1 << 20, '\0'));
        ASSERT_EQ(vmm.send(Drive{.drive_id = "data", .path_on_host = disk}).status, 204);
        ASSERT_EQ(
            vmm.send(BootSource{.kernel_image_path = kernel("counter.elf"), .initrd_path = initrd})
                .status,
            204);
        ASSERT_EQ(vmm.send(MachineConfiguration{
                               .vcpu_count = 1, .mem_size_mib = 64, .memory_backend = backing})
                      .status,
                  204);
        ASSERT_EQ(vmm.send(InstanceActionInfo{InstanceActionType::InstanceStart}).status, 204);
        ASSERT_TRUE(grows_past(console, 0));
    }
    // The source still runs its guest: the console keeps growing.
    void expect_still_running(Vmm& vmm, const std::string& console) {
        EXPECT_EQ(vmm.state(), InstanceState::Running);
        EXPECT_TRUE(grows_past(console, size_of(console))) << "the source's guest stopped";
    }
    // A full migration from `src` (running counter.elf, console `out1`) to a fresh destination
    // listening on `url`; checks the guest counts on at the destination.
    // `local`: RAM handed over as a memfd, not copied (the guest's RAM must be in one).
    void migrate_and_check(Vmm& src, const std::string& out1, const std::string& url,
                           Accelerator* dst_accel = nullptr, bool local = false) {
        const auto out2 = m_dir.file("console-dst-" + std::to_string(++m_round));
        Vmm dst(dst_accel != nullptr ? *dst_accel : m_accel, out2);
        auto r = dst.send(MigrationReceiveParams{.receiver_url = url, .local = local});
        ASSERT_EQ(r.status, 204) << fault(r);
        EXPECT_EQ(migration_of(dst).state, "active");
        r = src.send(MigrationSendParams{.destination_url = url, .local = local});
        ASSERT_EQ(r.status, 204) << fault(r);
        ASSERT_TRUE(src.ended_within(60s)) << "the source did not hand the VM over";
        EXPECT_EQ(src.status(), kExitOk);
        const MigrationInfo got = settled(dst);
        ASSERT_EQ(got.state, "completed") << got.error.value_or("");
        EXPECT_EQ(got.role, "receive");
        if (local) {
            // No page crossed the socket: the configuration and the device state did.
            EXPECT_EQ(got.iteration, 0U);
            EXPECT_EQ(got.pages, 0U);
            EXPECT_LT(got.bytes, 1U << 20) << "a local migration copied RAM";
        } else {
            EXPECT_GE(got.iteration, 1U);
        }
        EXPECT_EQ(dst.state(), InstanceState::Running);
        ASSERT_TRUE(grows_past(out2, 0)) << "the migrated guest does not run";
        const std::string before = test::read_text(out1);
        const std::string after = test::read_text(out2);
        ASSERT_FALSE(before.empty());
        // Not a repeat, not a gap: the first letter at the destination follows the last one the
        // source printed.
        EXPECT_EQ(after.front(), next_letter(before.back()))
            << "before: ..." << before.substr(before.size() - 10)
            << " after: " << after.substr(0, 10);
        EXPECT_EQ(dst.stop(), kExitOk);
    }

    test::TempDir m_dir;
    SoftAccelerator m_accel;
    int m_round = 0;
};

TEST_F(VmmMigrationTest, CounterMovesOverAUnixSocket) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

TEST_F(VmmMigrationTest, CounterMovesOverLoopbackTcp) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    const int port = 20000 + static_cast<int>(::getpid() % 20000);
    migrate_and_check(src, out1, "tcp:127.0.0.1:" + std::to_string(port));
}

TEST_F(VmmMigrationTest, APausedVmArrivesRunningOnlyIfItRan) {
    // A paused source stays paused through the transfer; the destination resumes what it gets.
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    ASSERT_EQ(src.send(VmState{VmStateRequest::Paused}).status, 204);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

TEST_F(VmmMigrationTest, RequestsThatMakeNoSenseAreRefused) {
    const auto out1 = m_dir.file("console-src");
    Vmm vmm(m_accel, out1);
    auto r = vmm.send(MigrationSendParams{.destination_url = "unix:/nonexistent"});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("has not started one"), std::string::npos) << fault(r);
    r = vmm.send(MigrationCancel{});
    EXPECT_EQ(r.status, 400);
    r = vmm.send(MigrationReceiveParams{.receiver_url = "tcp:1.2.3.4"});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("no port"), std::string::npos) << fault(r);
    // A path that cannot be bound: the answer says so and nothing waits.
    r = vmm.send(MigrationReceiveParams{.receiver_url = "unix:/nonexistent-dir/x.sock"});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("cannot listen"), std::string::npos) << fault(r);
    EXPECT_EQ(migration_of(vmm).state, "failed");
    start_counter(vmm, out1);
    r = vmm.send(MigrationReceiveParams{.receiver_url = "unix:" + m_dir.file("x.sock")});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("needs a fresh vireo"), std::string::npos) << fault(r);
    EXPECT_EQ(vmm.stop(), kExitOk);
}

TEST_F(VmmMigrationTest, NoDestinationLeavesTheSourceRunning) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    auto r = src.send(MigrationSendParams{.destination_url = "unix:" + m_dir.file("nobody.sock")});
    ASSERT_EQ(r.status, 204) << fault(r);
    const MigrationInfo got = settled(src);
    EXPECT_EQ(got.state, "failed");
    EXPECT_NE(got.error.value_or("").find("cannot connect"), std::string::npos)
        << got.error.value_or("");
    expect_still_running(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

// A relay between the source and a real destination, standing for the link: it can flip one
// bit at byte `corrupt_at`, cut the connection (both ways) after `cut_at` bytes, as a killed
// destination or a broken link does, or pass the bytes slowly (`slow`: 4 KiB every 20 ms).
struct Link {
    std::size_t corrupt_at = SIZE_MAX;
    std::size_t cut_at = SIZE_MAX;
    bool slow = false;
};

class Relay {
public:
    Relay(const std::string& listen_path, const std::string& to_path, Link link)
        : m_path(listen_path) {
        m_listener = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", listen_path.c_str());
        EXPECT_EQ(::bind(m_listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(m_listener.get(), 1), 0);
        m_thread = std::thread([this, to_path, link] { run(to_path, link); });
    }
    ~Relay() {
        m_stop.store(true);
        ::shutdown(m_listener.get(), SHUT_RDWR);
        m_thread.join();
        ::unlink(m_path.c_str());
    }
    std::size_t relayed() const { return m_relayed.load(); }

private:
    void run(const std::string& to_path, Link link) {
        UniqueFd in(::accept(m_listener.get(), nullptr, nullptr));
        if (in.get() < 0) {
            return;
        }
        UniqueFd out(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un b{};
        b.sun_family = AF_UNIX;
        std::snprintf(b.sun_path, sizeof b.sun_path, "%s", to_path.c_str());
        if (::connect(out.get(), reinterpret_cast<sockaddr*>(&b), sizeof b) != 0) {
            return;
        }
        // The destination's answers go back unchanged.
        std::thread back([&] {
            std::vector<char> buf(4096);
            for (;;) {
                const ssize_t n = ::read(out.get(), buf.data(), buf.size());
                if (n <= 0 ||
                    ::send(in.get(), buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
                    break;
                }
            }
            ::shutdown(in.get(), SHUT_RDWR);
        });
        std::vector<char> buf(link.slow ? 4096 : 65536);
        std::size_t offset = 0;
        bool cut = false;
        while (!m_stop.load() && !(cut = offset >= link.cut_at)) {
            const ssize_t n =
                ::read(in.get(), buf.data(), std::min(buf.size(), link.cut_at - offset));
            if (n <= 0) {
                break;
            }
            if (link.corrupt_at >= offset &&
                link.corrupt_at < offset + static_cast<std::size_t>(n)) {
                buf[link.corrupt_at - offset] ^= 0x10;
            }
            offset += static_cast<std::size_t>(n);
            m_relayed.store(offset);
            if (::send(out.get(), buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
                break;
            }
            if (link.slow) {
                std::this_thread::sleep_for(20ms);
            }
        }
        if (cut || m_stop.load()) {
            ::shutdown(in.get(), SHUT_RDWR);
            ::shutdown(out.get(), SHUT_RDWR);
        } else {
            // The source stopped sending, or the destination stopped taking: let what the
            // destination still says (an Abandon naming the problem) reach the source first.
            ::shutdown(out.get(), SHUT_WR);
        }
        back.join();
    }

    std::string m_path;
    UniqueFd m_listener;
    std::thread m_thread;
    std::atomic<bool> m_stop{false};
    std::atomic<std::size_t> m_relayed{0};
};

// A migration through a Relay over `link` to a real destination, which must fail; returns what
// the source reported. The destination discards everything and ends non-zero.
MigrationInfo failed_through(Vmm& src, Accelerator& accel, test::TempDir& dir, Link link,
                             const std::function<void(Relay&)>& meanwhile = {}) {
    const auto out2 = dir.file("console-failed");
    Vmm dst(accel, out2);
    const std::string real = dir.file("real.sock");
    EXPECT_EQ(dst.send(MigrationReceiveParams{.receiver_url = "unix:" + real}).status, 204);
    Relay relay(dir.file("relay.sock"), real, link);
    auto r = src.send(MigrationSendParams{.destination_url = "unix:" + dir.file("relay.sock")});
    EXPECT_EQ(r.status, 204) << fault(r);
    if (meanwhile) {
        meanwhile(relay);
    }
    const MigrationInfo got = settled(src);
    EXPECT_TRUE(dst.ended_within(30s)) << "the destination did not give up";
    EXPECT_EQ(dst.status(), kExitError);
    EXPECT_EQ(size_of(out2), 0U) << "the destination ran the guest";
    return got;
}

TEST_F(VmmMigrationTest, ALinkCutMidTransferLeavesTheSourceRunning) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    // Past Start, Config and its answer, into the memory pass.
    const MigrationInfo got = failed_through(src, m_accel, m_dir, Link{.cut_at = 2 << 20});
    EXPECT_EQ(got.state, "failed");
    EXPECT_NE(got.error.value_or("").find("connection"), std::string::npos)
        << got.error.value_or("");
    expect_still_running(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

TEST_F(VmmMigrationTest, CancelLeavesTheSourceRunning) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    const MigrationInfo got =
        failed_through(src, m_accel, m_dir, Link{.slow = true}, [&](Relay& relay) {
            for (int i = 0; i < 1000 && relay.relayed() < 64 * 1024; ++i) {
                std::this_thread::sleep_for(10ms);
            }
            EXPECT_EQ(migration_of(src).state, "active");
            // While it runs, nothing may change the VM under it.
            auto r = src.send(VmState{VmStateRequest::Paused});
            EXPECT_EQ(r.status, 400);
            EXPECT_NE(fault(r).find("migration is under way"), std::string::npos) << fault(r);
            r = src.send(MigrationSendParams{.destination_url = "unix:/x"});
            EXPECT_EQ(r.status, 400);
            ASSERT_EQ(src.send(MigrationCancel{}).status, 204);
        });
    EXPECT_EQ(got.state, "cancelled");
    expect_still_running(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

TEST_F(VmmMigrationTest, ACorruptedByteFailsTheDestinationAndLeavesTheSourceRunning) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    const MigrationInfo got = failed_through(src, m_accel, m_dir, Link{.corrupt_at = 3 << 20});
    EXPECT_EQ(got.state, "failed");
    EXPECT_NE(got.error.value_or("").find("checksum"), std::string::npos) << got.error.value_or("");
    expect_still_running(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

TEST_F(VmmMigrationTest, ADestinationLackingACpuFeatureRefusesBeforeMemoryMoves) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);
    LackingAccelerator lacking(m_accel);
    {
        Vmm dst(lacking, m_dir.file("console-lacking"));
        const std::string url = "unix:" + m_dir.file("lacking.sock");
        ASSERT_EQ(dst.send(MigrationReceiveParams{.receiver_url = url}).status, 204);
        ASSERT_EQ(src.send(MigrationSendParams{.destination_url = url}).status, 204);
        const MigrationInfo got = settled(src);
        EXPECT_EQ(got.state, "failed");
        EXPECT_NE(got.error.value_or("").find("leaf 0x1.0 edx bit 26"), std::string::npos)
            << got.error.value_or("");
        EXPECT_LT(got.bytes, 1U << 20) << "memory moved before the CPU check";
        ASSERT_TRUE(dst.ended_within(30s));
        EXPECT_EQ(dst.status(), kExitError);
    }
    expect_still_running(src, out1);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

// A live upgrade on one host: guest RAM in a memfd handed over a Unix socket, never copied.
TEST_F(VmmMigrationTest, LocalMigrationHandsRamOverWithoutCopying) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1, MemoryBacking::Memfd);
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"), nullptr, /*local=*/true);
}

TEST_F(VmmMigrationTest, LocalMigrationRefusalsLeaveTheSourceRunning) {
    const auto out1 = m_dir.file("console-src");
    Vmm src(m_accel, out1);
    start_counter(src, out1);  // anonymous RAM: nothing to hand over
    auto r = src.send(MigrationSendParams{.destination_url = "tcp:127.0.0.1:4444", .local = true});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("unix:"), std::string::npos) << fault(r);
    {
        const auto url = "unix:" + m_dir.file("a.sock");
        Vmm dst(m_accel, m_dir.file("console-a"));
        ASSERT_EQ(dst.send(MigrationReceiveParams{.receiver_url = url}).status, 204);
        r = src.send(MigrationSendParams{.destination_url = url, .local = true});
        ASSERT_EQ(r.status, 204) << fault(r);
        const MigrationInfo got = settled(src);
        EXPECT_EQ(got.state, "failed");
        EXPECT_NE(got.error.value_or("").find("not in one"), std::string::npos)
            << got.error.value_or("");
        expect_still_running(src, out1);
        static_cast<void>(dst.stop());
    }
    {
        // A destination that takes only a local migration refuses a copy before any RAM moves.
        const auto url = "unix:" + m_dir.file("b.sock");
        Vmm dst(m_accel, m_dir.file("console-b"));
        ASSERT_EQ(dst.send(MigrationReceiveParams{.receiver_url = url, .local = true}).status, 204);
        r = src.send(MigrationSendParams{.destination_url = url});
        ASSERT_EQ(r.status, 204) << fault(r);
        const MigrationInfo got = settled(src);
        EXPECT_EQ(got.state, "failed");
        EXPECT_NE(got.error.value_or("").find("takes only a local"), std::string::npos)
            << got.error.value_or("");
        expect_still_running(src, out1);
        EXPECT_TRUE(dst.ended_within(10s));
        EXPECT_NE(dst.status(), kExitOk);
    }
    migrate_and_check(src, out1, "unix:" + m_dir.file("mig.sock"));
}

}  // namespace
}  // namespace vireo
