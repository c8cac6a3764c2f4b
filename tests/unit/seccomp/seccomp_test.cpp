// The confinement itself, in death-test children (a filter cannot be taken off a thread): the
// SIGSYS report and exit status, and every thread of each kind filtered.
#include "seccomp/seccomp.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vireo::seccomp {
namespace {

class SeccompDeathTest : public ::testing::Test {
protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void start_or_die() {
    if (!load(Options{}) || !start()) {
        std::_Exit(90);
    }
}

TEST_F(SeccompDeathTest, AForbiddenCallIsReportedWithItsThreadKindAndExits148) {
    EXPECT_EXIT(
        {
            start_or_die();
            // getppid is in no vireo filter.
            std::thread t = spawn(ThreadKind::VirtioRng, [] { ::syscall(SYS_getppid); });
            t.join();
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(kExitBadSyscall),
        "vireo: seccomp: the virtio_rng thread made a forbidden system call: 110 \\(getppid\\) "
        "with arguments 0x");
}

TEST_F(SeccompDeathTest, AnIoctlTheVcpuFilterDoesNotListIsRefused) {
    EXPECT_EXIT(
        {
            start_or_die();
            std::thread t = spawn(ThreadKind::Vcpu, [] {
                ::syscall(SYS_ioctl, -1, 0xae01UL /* KVM_CREATE_VM */, 0);
            });
            t.join();
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(kExitBadSyscall),
        "the vcpu thread made a forbidden system call: 16 \\(ioctl\\) with arguments "
        "0xffffffff, 0xae01");
}

TEST_F(SeccompDeathTest, AnAllowedIoctlPasses) {
    EXPECT_EXIT(
        {
            start_or_die();
            std::thread t = spawn(ThreadKind::Vcpu, [] {
                // KVM_RUN on a bad fd: allowed by the filter, refused by the kernel (EBADF).
                ::syscall(SYS_ioctl, -1, 0xae80UL, 0);
            });
            t.join();
            std::_Exit(7);
        },
        ::testing::ExitedWithCode(7), "");
}

// The way out of a normal run: threads joined, the main thread confined as the VMM, exit()
// with its atexit work (and, under the sanitizers, LeakSanitizer's check).
TEST_F(SeccompDeathTest, AConfinedProcessExitsNormally) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "LeakSanitizer's exit-time tracer cannot run under the filters (sanitizer "
                    "builds run vireo without seccomp unless --seccomp-filter is given)";
#endif
    EXPECT_EXIT(
        {
            start_or_die();
            std::thread t = spawn(ThreadKind::Signal, [] {});
            t.join();
            if (!confine_thread(ThreadKind::Vmm)) {
                std::_Exit(91);
            }
            std::exit(3);
        },
        ::testing::ExitedWithCode(3), "");
}

// Seccomp: field of /proc/self/task/TID/status, -1 when absent.
int seccomp_mode(const std::string& tid) {
    std::ifstream in("/proc/self/task/" + tid + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Seccomp:", 0) == 0) {
            return std::stoi(line.substr(8));
        }
    }
    return -1;
}

TEST_F(SeccompDeathTest, EveryThreadOfEveryKindIsFiltered) {
    EXPECT_EXIT(
        {
            start_or_die();
            std::mutex mutex;
            std::condition_variable cv;
            bool stop = false;
            std::size_t running = 0;
            std::vector<std::thread> threads;
            for (std::size_t i = 0; i < kThreadKindCount; ++i) {
                const auto kind = static_cast<ThreadKind>(i);
                if (kind == ThreadKind::Launcher) {
                    continue;
                }
                threads.push_back(spawn(kind, [&] {
                    std::unique_lock lock(mutex);
                    ++running;
                    cv.notify_all();
                    cv.wait(lock, [&] { return stop; });
                }));
            }
            {
                std::unique_lock lock(mutex);
                cv.wait(lock, [&] { return running == threads.size(); });
            }
            std::vector<std::string> tids;
            DIR* dir = ::opendir("/proc/self/task");
            while (dirent* e = ::readdir(dir)) {
                if (e->d_name[0] != '.') {
                    tids.emplace_back(e->d_name);
                }
            }
            ::closedir(dir);
            if (!confine_thread(ThreadKind::Vmm)) {
                std::_Exit(91);
            }
            std::size_t filtered = 0;
            for (const auto& tid : tids) {
                filtered += seccomp_mode(tid) == 2 ? 1 : 0;
            }
            {
                std::lock_guard lock(mutex);
                stop = true;
                cv.notify_all();
            }
            for (auto& t : threads) {
                t.join();
            }
            // main + launcher + one thread per other kind, all in filter mode.
            std::_Exit(tids.size() == kThreadKindCount + 1 && filtered == tids.size() ? 0 : 92);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace vireo::seccomp
