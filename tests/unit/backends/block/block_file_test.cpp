#include "backends/block/block_file.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/event_loop.h"

#include "base/test_files.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::uint8_t pattern(std::uint64_t offset, std::uint8_t seed) {
    return static_cast<std::uint8_t>((offset * 7 + seed) | 1);  // never 0: zeros stand out
}

std::vector<std::uint8_t> pattern_bytes(std::uint64_t offset, std::size_t len, std::uint8_t seed) {
    std::vector<std::uint8_t> v(len);
    for (std::size_t i = 0; i < len; ++i) {
        v[i] = pattern(offset + i, seed);
    }
    return v;
}

// A file of `size` bytes, filled with pattern(seed) unless seed is 0 (then sparse zeros).
std::string make_image(const TempDir& dir, const std::string& name, std::uint64_t size,
                       std::uint8_t seed) {
    const std::string path = (dir.path() / name).string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0) << path;
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    if (seed != 0) {
        auto bytes = pattern_bytes(0, size, seed);
        EXPECT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(size));
    }
    ::close(fd);
    return path;
}

std::vector<std::uint8_t> file_bytes(const std::string& path) {
    std::vector<std::uint8_t> v(fs::file_size(path));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::pread(fd, v.data(), v.size(), 0), static_cast<ssize_t>(v.size()));
    ::close(fd);
    return v;
}

std::unique_ptr<BlockFile> open_ok(const std::string& path, BlockFileOptions options) {
    auto f = BlockFile::open(path, options);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message());
    if (!f.ok()) {
        return nullptr;
    }
    EXPECT_EQ(f.value()->engine(),
              options.engine == BlockEngineKind::Auto ? f.value()->engine() : options.engine)
        << f.value()->fallback_reason();
    return std::move(f).value();
}

// Waits (poll on the completion eventfd, as an EventLoop would) until `n` completions arrived.
std::map<std::uint64_t, std::int64_t> wait_for(BlockFile& f, std::size_t n) {
    std::map<std::uint64_t, std::int64_t> done;
    while (done.size() < n) {
        pollfd p{f.completion_fd(), POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) {
            ADD_FAILURE() << "timed out with " << done.size() << " of " << n << " completions";
            break;
        }
        f.reap([&](std::uint64_t tag, std::int64_t result) {
            EXPECT_EQ(done.count(tag), 0U) << "tag " << tag << " completed twice";
            done[tag] = result;
        });
    }
    return done;
}

std::int64_t complete_one(BlockFile& f, std::uint64_t tag) {
    EXPECT_TRUE(f.submit().ok());
    auto done = wait_for(f, 1);
    return done.count(tag) != 0 ? done[tag] : -9999;
}

class BlockFileTest : public ::testing::TestWithParam<BlockEngineKind> {
protected:
    BlockFileOptions options() const {
        BlockFileOptions o;
        o.engine = GetParam();
        return o;
    }
    TempDir m_dir;
};

TEST_P(BlockFileTest, WritesAndReadsBackAtOffsets) {
    const std::string path = make_image(m_dir, "disk.img", 1 << 20, 0);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    EXPECT_EQ(f->size(), 1U << 20);
    EXPECT_FALSE(f->read_only());

    const std::vector<std::uint64_t> offsets{0, 4096, 12345, (1 << 20) - 512};
    std::vector<std::vector<std::uint8_t>> data;
    std::vector<iovec> iovs;
    data.reserve(offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        data.push_back(pattern_bytes(offsets[i], 512, static_cast<std::uint8_t>(i + 3)));
    }
    for (auto& d : data) {
        iovs.push_back({d.data(), d.size()});
    }
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        ASSERT_TRUE(f->write(offsets[i], std::span(&iovs[i], 1), i).ok());
    }
    ASSERT_TRUE(f->submit().ok());
    auto done = wait_for(*f, offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        EXPECT_EQ(done[i], 512) << "write " << i;
    }

    std::vector<std::vector<std::uint8_t>> back(offsets.size(), std::vector<std::uint8_t>(512));
    std::vector<iovec> back_iovs;
    for (auto& b : back) {
        back_iovs.push_back({b.data(), b.size()});
    }
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        ASSERT_TRUE(f->read(offsets[i], std::span(&back_iovs[i], 1), 100 + i).ok());
    }
    ASSERT_TRUE(f->submit().ok());
    done = wait_for(*f, offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        EXPECT_EQ(done[100 + i], 512);
        EXPECT_EQ(back[i], data[i]) << "offset " << offsets[i];
    }
    // And the file itself has them.
    const auto bytes = file_bytes(path);
    EXPECT_TRUE(std::equal(data[2].begin(), data[2].end(), bytes.begin() + 12345));
    EXPECT_EQ(bytes[12345 + 512], 0);
}

TEST_P(BlockFileTest, ScatterGatherAcrossIovecs) {
    const std::string path = make_image(m_dir, "disk.img", 64 << 10, 0);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    auto data = pattern_bytes(1000, 8192, 42);
    // Uneven pieces on the way out...
    const std::vector<iovec> out{
        {data.data(), 100}, {data.data() + 100, 4000}, {data.data() + 4100, 4092}};
    ASSERT_TRUE(f->write(1000, out, 1).ok());
    EXPECT_EQ(complete_one(*f, 1), 8192);
    // ...and different ones on the way back.
    std::vector<std::uint8_t> a(5000), b(3192);
    const std::vector<iovec> in{{a.data(), a.size()}, {b.data(), b.size()}};
    ASSERT_TRUE(f->read(1000, in, 2).ok());
    EXPECT_EQ(complete_one(*f, 2), 8192);
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(a, data);
}

TEST_P(BlockFileTest, FlushCompletesAndTheDataIsInTheFile) {
    const std::string path = make_image(m_dir, "disk.img", 8192, 0);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    auto data = pattern_bytes(0, 4096, 5);
    const iovec v{data.data(), data.size()};
    ASSERT_TRUE(f->write(4096, std::span(&v, 1), 1).ok());
    EXPECT_EQ(complete_one(*f, 1), 4096);
    ASSERT_TRUE(f->flush(2).ok());
    EXPECT_EQ(complete_one(*f, 2), 0);
    const auto bytes = file_bytes(path);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes.begin() + 4096));
}

TEST_P(BlockFileTest, DiscardPunchesAHole) {
    const std::uint64_t size = 1 << 20;
    const std::string path = make_image(m_dir, "disk.img", size, 9);
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->discard(256 << 10, 256 << 10, 1).ok());
    EXPECT_EQ(complete_one(*f, 1), 0);

    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::lseek(fd, 0, SEEK_HOLE), 256 << 10);
    EXPECT_EQ(::lseek(fd, 256 << 10, SEEK_DATA), 512 << 10);
    ::close(fd);
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    EXPECT_LT(after.st_blocks, before.st_blocks);
    EXPECT_EQ(after.st_size, static_cast<off_t>(size));  // KEEP_SIZE
    const auto bytes = file_bytes(path);
    EXPECT_EQ(bytes[(256 << 10) - 1], pattern((256 << 10) - 1, 9));
    EXPECT_TRUE(std::all_of(bytes.begin() + (256 << 10), bytes.begin() + (512 << 10),
                            [](std::uint8_t b) { return b == 0; }));
    EXPECT_EQ(bytes[512 << 10], pattern(512 << 10, 9));
}

// With and without fallocate: the second path writes zero buffers, 1 MiB per call.
TEST_P(BlockFileTest, WriteZeroesReadsBackZeros) {
    for (bool use_fallocate : {true, false}) {
        SCOPED_TRACE(use_fallocate ? "fallocate" : "writing zeros");
        const std::uint64_t size = 4 << 20;
        const std::string path = make_image(m_dir, "disk.img", size, 11);
        BlockFileOptions o = options();
        o.fallocate = use_fallocate;
        auto f = open_ok(path, o);
        ASSERT_TRUE(f);
        // Unaligned on both ends, longer than one write-zeros batch.
        const std::uint64_t off = 1000;
        const std::uint64_t len = (2 << 20) + (64 << 10) + 333;
        ASSERT_TRUE(f->write_zeroes(off, len, 1).ok());
        EXPECT_EQ(complete_one(*f, 1), 0);
        const auto bytes = file_bytes(path);
        ASSERT_EQ(bytes.size(), size);
        EXPECT_EQ(bytes[off - 1], pattern(off - 1, 11));
        EXPECT_TRUE(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(off),
                                bytes.begin() + static_cast<std::ptrdiff_t>(off + len),
                                [](std::uint8_t b) { return b == 0; }));
        EXPECT_EQ(bytes[off + len], pattern(off + len, 11));
        // The device reads them back as zeros too.
        std::vector<std::uint8_t> back(4096, 0xee);
        const iovec v{back.data(), back.size()};
        ASSERT_TRUE(f->read(off + 4096, std::span(&v, 1), 2).ok());
        EXPECT_EQ(complete_one(*f, 2), 4096);
        EXPECT_EQ(back, std::vector<std::uint8_t>(4096, 0));
    }
}

TEST_P(BlockFileTest, ReadOnlyRefusesChangesAndLeavesTheFileIdentical) {
    const std::string path = make_image(m_dir, "disk.img", 64 << 10, 21);
    const auto original = file_bytes(path);
    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    {
        BlockFileOptions o = options();
        o.read_only = true;
        auto f = open_ok(path, o);
        ASSERT_TRUE(f);
        EXPECT_TRUE(f->read_only());
        std::vector<std::uint8_t> buf(4096, 0);
        const iovec v{buf.data(), buf.size()};
        for (auto r : {f->write(0, std::span(&v, 1), 1), f->discard(0, 4096, 2),
                       f->write_zeroes(0, 4096, 3)}) {
            ASSERT_FALSE(r.ok());
            EXPECT_EQ(r.error().sys_errno(), EROFS);
            EXPECT_NE(r.error().message().find("read-only"), std::string::npos)
                << r.error().message();
        }
        EXPECT_EQ(f->free_slots(), f->queue_depth());  // nothing was queued
        ASSERT_TRUE(f->read(8192, std::span(&v, 1), 4).ok());
        ASSERT_TRUE(f->flush(5).ok());
        ASSERT_TRUE(f->submit().ok());
        auto done = wait_for(*f, 2);
        EXPECT_EQ(done[4], 4096);
        EXPECT_EQ(done[5], 0);
        EXPECT_TRUE(std::equal(buf.begin(), buf.end(), original.begin() + 8192));
    }
    EXPECT_EQ(file_bytes(path), original);
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

TEST_P(BlockFileTest, OutOfRangeRequestsAreRejectedBeforeSubmission) {
    const std::uint64_t size = 64 << 10;
    const std::string path = make_image(m_dir, "disk.img", size, 0);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    std::vector<std::uint8_t> buf(1024);
    const iovec v{buf.data(), buf.size()};
    const std::vector<Result<void>> rejected = [&] {
        std::vector<Result<void>> r;
        r.push_back(f->read(size - 512, std::span(&v, 1), 1));       // straddles the end
        r.push_back(f->write(size, std::span(&v, 1), 2));            // starts at the end
        r.push_back(f->read(UINT64_MAX - 10, std::span(&v, 1), 3));  // would wrap
        r.push_back(f->discard(size - 4096, 8192, 4));
        r.push_back(f->write_zeroes(4096, UINT64_MAX, 5));
        r.push_back(f->discard(UINT64_MAX, 1, 6));
        return r;
    }();
    for (const auto& r : rejected) {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().sys_errno(), EINVAL);
        EXPECT_NE(r.error().message().find("beyond the end"), std::string::npos)
            << r.error().message();
    }
    std::vector<iovec> too_many(BlockFile::kMaxIovecs + 1, iovec{buf.data(), 1});
    EXPECT_FALSE(f->read(0, too_many, 7).ok());
    EXPECT_EQ(f->free_slots(), f->queue_depth());

    // The last byte is fine; zero length at the very end too.
    const iovec last{buf.data(), 1};
    ASSERT_TRUE(f->read(size - 1, std::span(&last, 1), 8).ok());
    ASSERT_TRUE(f->read(size, std::span<const iovec>(), 9).ok());
    ASSERT_TRUE(f->submit().ok());
    auto done = wait_for(*f, 2);
    EXPECT_EQ(done[8], 1);
    EXPECT_EQ(done[9], 0);
}

// More requests than the queue depth: the extra one is refused with EBUSY (documented in
// block_file.h), and a device that keeps the queue full gets every request done exactly once.
TEST_P(BlockFileTest, ManyRequestsInFlight) {
    const std::uint32_t depth = 8;
    const std::uint64_t block = 4096;
    const std::uint64_t blocks = 256;
    const std::string path = make_image(m_dir, "disk.img", block * blocks, 0);
    BlockFileOptions o = options();
    o.queue_depth = depth;
    auto f = open_ok(path, o);
    ASSERT_TRUE(f);

    // Every block gets its own data; one write per block, in a ring of buffers... except the
    // buffers must stay untouched until their completion, so each request owns one.
    std::vector<std::vector<std::uint8_t>> data(blocks);
    std::vector<iovec> iovs(blocks);
    for (std::uint64_t i = 0; i < blocks; ++i) {
        data[i] = pattern_bytes(i * block, block, static_cast<std::uint8_t>(i));
        iovs[i] = {data[i].data(), block};
    }
    for (std::uint32_t i = 0; i < depth; ++i) {
        ASSERT_TRUE(f->write(i * block, std::span(&iovs[i], 1), i).ok());
    }
    EXPECT_EQ(f->free_slots(), 0U);
    auto busy = f->write(depth * block, std::span(&iovs[depth], 1), depth);
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().sys_errno(), EBUSY);

    // Pump: refill as completions free slots.
    std::uint64_t next = depth;
    std::map<std::uint64_t, std::int64_t> done;
    ASSERT_TRUE(f->submit().ok());
    while (done.size() < blocks) {
        pollfd p{f->completion_fd(), POLLIN, 0};
        ASSERT_GT(::poll(&p, 1, 10000), 0) << "stuck at " << done.size();
        f->reap([&](std::uint64_t tag, std::int64_t result) {
            EXPECT_EQ(done.count(tag), 0U);
            done[tag] = result;
        });
        while (next < blocks && f->free_slots() > 0) {
            ASSERT_TRUE(f->write(next * block, std::span(&iovs[next], 1), next).ok());
            ++next;
        }
        ASSERT_TRUE(f->submit().ok());
    }
    for (const auto& [tag, result] : done) {
        EXPECT_EQ(result, static_cast<std::int64_t>(block)) << "tag " << tag;
    }
    EXPECT_EQ(f->free_slots(), depth);
    const auto bytes = file_bytes(path);
    for (std::uint64_t i = 0; i < blocks; ++i) {
        ASSERT_TRUE(std::equal(data[i].begin(), data[i].end(),
                               bytes.begin() + static_cast<std::ptrdiff_t>(i * block)))
            << "block " << i;
    }
}

TEST_P(BlockFileTest, CompletionsDriveAnEventLoop) {
    const std::string path = make_image(m_dir, "disk.img", 64 << 10, 3);
    auto f = open_ok(path, options());
    ASSERT_TRUE(f);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    std::vector<std::uint8_t> buf(4096);
    const iovec v{buf.data(), buf.size()};
    int completions = 0;
    ASSERT_TRUE((*loop)
                    ->add(f->completion_fd(), EPOLLIN,
                          [&](std::uint32_t) {
                              f->reap([&](std::uint64_t tag, std::int64_t result) {
                                  EXPECT_EQ(result, 4096);
                                  ++completions;
                                  if (tag < 20) {  // chain the next read from the callback
                                      ASSERT_TRUE(
                                          f->read(tag * 512, std::span(&v, 1), tag + 1).ok());
                                  } else {
                                      (*loop)->stop();
                                  }
                              });
                              ASSERT_TRUE(f->submit().ok());
                          })
                    .ok());
    ASSERT_TRUE(f->read(0, std::span(&v, 1), 0).ok());
    ASSERT_TRUE(f->submit().ok());
    (*loop)->run();
    EXPECT_EQ(completions, 21);
    EXPECT_EQ(buf[0], pattern(19 * 512, 3));
}

TEST_P(BlockFileTest, DirectIoWithAlignedBuffers) {
    const std::string path = make_image(m_dir, "disk.img", 1 << 20, 0);
    BlockFileOptions o = options();
    o.direct = true;
    auto f = open_ok(path, o);
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->direct());
    constexpr std::size_t kLen = 8192;
    auto* out = static_cast<std::uint8_t*>(std::aligned_alloc(4096, kLen));
    auto* in = static_cast<std::uint8_t*>(std::aligned_alloc(4096, kLen));
    ASSERT_TRUE(out != nullptr && in != nullptr);
    auto data = pattern_bytes(0, kLen, 77);
    std::copy(data.begin(), data.end(), out);
    const iovec vo{out, kLen};
    const iovec vi{in, kLen};
    ASSERT_TRUE(f->write(64 << 10, std::span(&vo, 1), 1).ok());
    EXPECT_EQ(complete_one(*f, 1), static_cast<std::int64_t>(kLen));
    ASSERT_TRUE(f->read(64 << 10, std::span(&vi, 1), 2).ok());
    EXPECT_EQ(complete_one(*f, 2), static_cast<std::int64_t>(kLen));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), in));
    std::free(out);
    std::free(in);
}

// What the guest flushed is in the file after the VMM dies by SIGKILL (the child plays the VMM:
// write, flush, report, then hang until killed).
TEST_P(BlockFileTest, FlushedDataSurvivesSigkill) {
    const std::string path = make_image(m_dir, "disk.img", 64 << 10, 0);
    const auto data = pattern_bytes(8192, 4096, 99);
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(pipe_fds[0]);
        auto f = BlockFile::open(path, options());
        if (!f.ok()) {
            ::_exit(2);
        }
        const iovec v{const_cast<std::uint8_t*>(data.data()), data.size()};
        std::int64_t results[2] = {-1, -1};
        const auto run = [&](std::uint64_t tag) {
            static_cast<void>((*f)->submit());
            pollfd p{(*f)->completion_fd(), POLLIN, 0};
            while (results[tag] == -1 && ::poll(&p, 1, 10000) == 1) {
                (*f)->reap([&](std::uint64_t t, std::int64_t r) { results[t] = r; });
            }
        };
        if (!(*f)->write(8192, std::span(&v, 1), 0).ok()) {
            ::_exit(3);
        }
        run(0);
        if (!(*f)->flush(1).ok()) {
            ::_exit(4);
        }
        run(1);
        const char status = results[0] == 4096 && results[1] == 0 ? 'y' : 'n';
        if (::write(pipe_fds[1], &status, 1) != 1) {
            ::_exit(5);
        }
        for (;;) {
            ::pause();
        }
    }
    ::close(pipe_fds[1]);
    pollfd p{pipe_fds[0], POLLIN, 0};
    char status = 0;
    const bool reported = ::poll(&p, 1, 20000) == 1 && ::read(pipe_fds[0], &status, 1) == 1;
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    ::close(pipe_fds[0]);
    ASSERT_TRUE(reported) << "the child exited without reporting, status " << wstatus;
    EXPECT_EQ(status, 'y');
    EXPECT_TRUE(WIFSIGNALED(wstatus));
    const auto bytes = file_bytes(path);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes.begin() + 8192));
}

// Destroying the file with requests in the kernel or in the workers waits for them (ASan would
// catch a worker or the kernel writing into freed memory after the buffers are gone).
TEST_P(BlockFileTest, DestroyWithRequestsInFlight) {
    const std::string path = make_image(m_dir, "disk.img", 4 << 20, 1);
    std::vector<std::vector<std::uint8_t>> bufs(64, std::vector<std::uint8_t>(64 << 10));
    std::vector<iovec> iovs;
    for (auto& b : bufs) {
        iovs.push_back({b.data(), b.size()});
    }
    {
        auto f = open_ok(path, options());
        ASSERT_TRUE(f);
        for (std::size_t i = 0; i < bufs.size(); ++i) {
            ASSERT_TRUE(f->read(i * (64 << 10), std::span(&iovs[i], 1), i).ok());
        }
        ASSERT_TRUE(f->submit().ok());
        // A few more queued but never submitted.
        ASSERT_TRUE(f->flush(1000).ok());
    }
    SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockFileTest,
                         ::testing::Values(BlockEngineKind::IoUring, BlockEngineKind::ThreadPool),
                         [](const ::testing::TestParamInfo<BlockEngineKind>& param_info) {
                             return param_info.param == BlockEngineKind::IoUring ? "IoUring"
                                                                                 : "ThreadPool";
                         });

// --- opening ---

std::string open_error(const std::string& path, BlockFileOptions options = {}) {
    auto f = BlockFile::open(path, options);
    EXPECT_FALSE(f.ok()) << path << " opened";
    return f.ok() ? "" : f.error().message();
}

TEST(BlockFileOpen, ClearErrors) {
    TempDir dir;
    const std::string missing = (dir.path() / "missing.img").string();
    EXPECT_EQ(open_error(missing), "disk image " + missing + ": No such file or directory");
    const std::string d = dir.path().string();
    EXPECT_EQ(open_error(d), "disk image " + d + ": is a directory");
    BlockFileOptions ro;
    ro.read_only = true;
    EXPECT_EQ(open_error(d, ro), "disk image " + d + ": is a directory");
    EXPECT_EQ(open_error("/dev/null"), "disk image /dev/null: not a regular file or block device");
    // A FIFO must not hang the open.
    const std::string fifo = (dir.path() / "fifo").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(open_error(fifo, ro), "disk image " + fifo + ": not a regular file or block device");
    EXPECT_EQ(open_error(""), "disk image: empty path");
    BlockFileOptions bad;
    bad.queue_depth = 0;
    const std::string img = make_image(dir, "disk.img", 4096, 0);
    EXPECT_NE(open_error(img, bad).find("queue depth 0"), std::string::npos);
}

TEST(BlockFileOpen, PermissionDenied) {
    TempDir dir;
    const std::string img = make_image(dir, "secret.img", 4096, 0);
    ASSERT_EQ(::chmod(img.c_str(), 0), 0);
    // Root passes permission checks: drop to nobody on a thread of its own (the raw system call
    // changes only the calling thread's credentials, unlike the glibc wrapper).
    std::string message;
    int err = 0;
    std::thread t([&] {
        if (::geteuid() == 0 && ::syscall(SYS_setresuid, 65534, 65534, 65534) != 0) {
            message = "setresuid failed";
            return;
        }
        auto f = BlockFile::open(img, {});
        if (!f.ok()) {
            message = f.error().message();
            err = f.error().sys_errno();
        }
    });
    t.join();
    EXPECT_EQ(err, EACCES);
    EXPECT_EQ(message, "disk image " + img + ": Permission denied");
}

TEST(BlockFileOpen, LocksAgainstASecondWriter) {
    TempDir dir;
    const std::string img = make_image(dir, "disk.img", 4096, 0);
    BlockFileOptions ro;
    ro.read_only = true;
    {
        auto writer = open_ok(img, {});
        ASSERT_TRUE(writer);
        EXPECT_NE(open_error(img).find("in use"), std::string::npos);
        EXPECT_NE(open_error(img, ro).find("in use"), std::string::npos);
    }
    auto reader1 = open_ok(img, ro);
    auto reader2 = open_ok(img, ro);
    EXPECT_TRUE(reader1 && reader2);
    EXPECT_NE(open_error(img).find("in use"), std::string::npos);
}

TEST(BlockFileOpen, EngineChoice) {
    TempDir dir;
    const std::string img = make_image(dir, "disk.img", 4096, 0);
    BlockFileOptions o;
    o.engine = BlockEngineKind::ThreadPool;
    o.lock = false;
    auto pool = open_ok(img, o);
    ASSERT_TRUE(pool);
    EXPECT_EQ(pool->engine(), BlockEngineKind::ThreadPool);
    EXPECT_TRUE(pool->fallback_reason().empty());
    o.engine = BlockEngineKind::Auto;
    auto automatic = open_ok(img, o);
    ASSERT_TRUE(automatic);
    // This host has io_uring; elsewhere Auto must say why it fell back.
    EXPECT_EQ(automatic->engine() == BlockEngineKind::ThreadPool,
              !automatic->fallback_reason().empty());
    EXPECT_EQ(to_string(automatic->engine()),
              automatic->engine() == BlockEngineKind::IoUring ? "io_uring" : "thread-pool");
}

// Where a seccomp filter (or kernel.io_uring_disabled) refuses io_uring, Auto falls back to the
// thread pool and says why, and an explicit IoUring is an error. The filter goes on a thread of
// its own: without SECCOMP_FILTER_FLAG_TSYNC it binds only the calling thread (and the workers
// it starts).
TEST(BlockFileOpen, FallsBackToTheThreadPoolWhereIoUringIsRefused) {
    TempDir dir;
    const std::string img = make_image(dir, "disk.img", 64 << 10, 4);
    std::thread t([&] {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
        ASSERT_EQ(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        ASSERT_EQ(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0)
            << std::strerror(errno);

        BlockFileOptions o;
        o.engine = BlockEngineKind::IoUring;
        const std::string error = open_error(img, o);
        EXPECT_EQ(error, "disk image " + img + ": io_uring_queue_init: Operation not permitted");

        o.engine = BlockEngineKind::Auto;
        auto f = open_ok(img, o);
        ASSERT_TRUE(f);
        EXPECT_EQ(f->engine(), BlockEngineKind::ThreadPool);
        EXPECT_EQ(f->fallback_reason(), "io_uring_queue_init: Operation not permitted");
        std::vector<std::uint8_t> buf(512);
        const iovec v{buf.data(), buf.size()};
        ASSERT_TRUE(f->read(1024, std::span(&v, 1), 1).ok());
        EXPECT_EQ(complete_one(*f, 1), 512);
        EXPECT_EQ(buf[0], pattern(1024, 4));
    });
    t.join();
}

}  // namespace
}  // namespace vireo
