// ConsoleWriter: guest output into a pipe nobody reads never blocks the writer (a vCPU), is
// dropped and counted once the buffer is full, and the writer's end never waits on the pipe.
#include "backends/char/console_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace vireo {
namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

Pipe make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return {};
    }
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string drain(int fd) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

// Waits (at most 10 s) until `done` holds.
template <typename F>
bool eventually(F done) {
    for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end;) {
        if (done()) {
            return true;
        }
        ::usleep(10000);
    }
    return done();
}

TEST(ConsoleWriterTest, WritesEverythingToAReader) {
    Pipe p = make_pipe();
    ASSERT_TRUE(p.read.valid());
    std::string text = "hello, console\n";
    {
        ConsoleWriter writer(p.write.get());
        for (char c : text) {
            const auto byte = static_cast<std::uint8_t>(c);
            writer.write(std::span(&byte, 1));
        }
    }  // the destructor flushes
    EXPECT_EQ(drain(p.read.get()), text);
}

TEST(ConsoleWriterTest, AStalledPipeNeverBlocksTheWriterAndDropsAreCounted) {
    Pipe p = make_pipe();
    ASSERT_TRUE(p.read.valid());
    const int pipe_size = ::fcntl(p.write.get(), F_GETPIPE_SZ);
    ASSERT_GT(pipe_size, 0);
    constexpr std::size_t kCapacity = 64 * 1024;
    constexpr std::size_t kTotal = 16 * 1024 * 1024;  // far more than the pipe and the buffer
    auto writer = std::make_unique<ConsoleWriter>(p.write.get(), kCapacity);
    std::vector<std::uint8_t> chunk(4096);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
        chunk[i] = static_cast<std::uint8_t>('a' + i % 26);
    }
    // Nobody reads the pipe. Before the writer existed, these calls blocked once the pipe was
    // full (the console looped on write(2)); now each one returns, whatever the pipe does.
    for (std::size_t sent = 0; sent < kTotal; sent += chunk.size()) {
        writer->write(chunk);
    }
    // Everything is accounted for: in the pipe, in the buffer, or dropped.
    EXPECT_TRUE(eventually([&] { return writer->written_bytes() >= std::size_t(pipe_size); }));
    EXPECT_GE(writer->dropped_bytes(), kTotal - kCapacity - std::size_t(pipe_size));
    EXPECT_LE(writer->written_bytes() + writer->dropped_bytes(), kTotal);
    // The pipe is full now: this fills the buffer, which stays full, and drops the rest.
    for (std::size_t sent = 0; sent < 2 * kCapacity; sent += chunk.size()) {
        writer->write(chunk);
    }
    EXPECT_EQ(writer->written_bytes() + writer->dropped_bytes(), kTotal + kCapacity);
    // Stopping with the pipe still stalled gives up after the flush timeout; what was buffered
    // is dropped and counted.
    const auto start = Clock::now();
    writer->stop();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    // (The bytes of a write the writer thread had in hand are counted when it lets them go.)
    EXPECT_TRUE(eventually([&] {
        return writer->written_bytes() + writer->dropped_bytes() == kTotal + 2 * kCapacity;
    }));
    const std::uint8_t late = 'z';
    writer->write(std::span(&late, 1));  // after stop: dropped, counted
    EXPECT_EQ(writer->written_bytes() + writer->dropped_bytes(), kTotal + 2 * kCapacity + 1);
    const std::uint64_t written = writer->written_bytes();
    writer.reset();
    // What reached the pipe (its capacity, give or take how the kernel packs its pages) is the
    // output's beginning, in order.
    const std::string got = drain(p.read.get());
    EXPECT_EQ(got.size(), written);
    EXPECT_GE(got.size(), std::size_t(pipe_size));
    for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], char('a' + i % chunk.size() % 26)) << i;
    }
}

TEST(ConsoleWriterTest, AReaderThatWentAwayDoesNotKillTheProcess) {
    Pipe p = make_pipe();
    ASSERT_TRUE(p.read.valid());
    p.read.reset();  // EPIPE (and SIGPIPE, unless the writer blocks it) on the next write
    ConsoleWriter writer(p.write.get());
    const std::vector<std::uint8_t> bytes(1000, 'x');
    writer.write(bytes);
    EXPECT_TRUE(eventually([&] { return writer.dropped_bytes() == bytes.size(); }));
    writer.write(bytes);
    EXPECT_EQ(writer.dropped_bytes(), 2 * bytes.size());
    EXPECT_EQ(writer.written_bytes(), 0u);
}

}  // namespace
}  // namespace vireo
