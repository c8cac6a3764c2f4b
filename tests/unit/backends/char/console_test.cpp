// The stdio console with a stdout nobody reads: guest output (written on vCPU threads) must never
// wait for it. Before output was buffered, Console::write looped on write(2) and a full pipe
// parked the caller for good.
#include "backends/char/console.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace vireo {
namespace {

TEST(StdioConsoleTest, AStdoutNobodyReadsNeverBlocksGuestOutput) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    std::fflush(stdout);
    UniqueFd saved_stdout(::dup(STDOUT_FILENO));
    ASSERT_TRUE(saved_stdout.valid());
    ASSERT_EQ(::dup2(write_end.get(), STDOUT_FILENO), STDOUT_FILENO);

    auto console = open_console("stdio");
    ASSERT_TRUE(console);
    constexpr std::size_t kTotal = 8 * 1024 * 1024;  // far more than a pipe and the buffer hold
    std::atomic<bool> done{false};
    std::thread vcpu([&] {
        const std::vector<std::uint8_t> line(1024, 'x');
        for (std::size_t sent = 0; sent < kTotal; sent += line.size()) {
            (*console)->write(line);
        }
        done = true;
    });
    // The "vCPU" finishes at once; give it 10 s before calling it stuck.
    for (int i = 0; i < 1000 && !done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const bool finished = done;
    if (!finished) {
        // Unstick it (drain the pipe until it is through) so the test ends.
        ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
        char buf[65536];
        while (!done) {
            const bool drained = ::read(read_end.get(), buf, sizeof(buf)) > 0;
            static_cast<void>(drained);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    vcpu.join();
    ::dup2(saved_stdout.get(), STDOUT_FILENO);  // before gtest prints anything
    EXPECT_TRUE(finished) << "Console::write blocked on a stdout nobody reads";
    EXPECT_GT((*console)->dropped_output_bytes(), 0u);
    (*console).reset();  // gives up on the stalled pipe after a moment
}

}  // namespace
}  // namespace vireo
