#include "base/file_open.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "base/fd_log_sink.h"
#include "base/read_file.h"
#include "base/test_files.h"

namespace vireo {
namespace {

using test::finishes_within;
using test::read_text;
using test::TempDir;
using test::write_text;
using namespace std::chrono_literals;

bool has(const Error& e, const std::string& text) {
    return e.message().find(text) != std::string::npos;
}

TEST(OpenRegularFile, OpensARegularFile) {
    TempDir dir;
    write_text(dir.file("a"), "abc");
    struct stat st {};
    auto fd = open_regular_file(dir.file("a"), O_RDONLY, &st);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(st.st_size, 3);
    EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);  // cleared again
    EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenRegularFile, RefusesAFifoWithoutBlocking) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (int flags : {O_RDONLY, O_RDWR}) {
        EXPECT_TRUE(
            finishes_within(10s, [&] { static_cast<void>(open_regular_file(fifo, flags)); }));
        auto fd = open_regular_file(fifo, flags);
        ASSERT_FALSE(fd);
        EXPECT_TRUE(has(fd.error(), "FIFO")) << fd.error().message();
    }
}

TEST(OpenRegularFile, RefusesDirectoriesAndDevices) {
    TempDir dir;
    auto d = open_regular_file(dir.file(""), O_RDONLY);
    ASSERT_FALSE(d);
    EXPECT_TRUE(has(d.error(), "directory")) << d.error().message();
    auto c = open_regular_file("/dev/null", O_RDONLY);
    ASSERT_FALSE(c);
    EXPECT_TRUE(has(c.error(), "character device")) << c.error().message();
    auto missing = open_regular_file(dir.file("none"), O_RDONLY);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().sys_errno(), ENOENT);
}

TEST(ReadWholeFile, AFifoIsAnErrorNotAHang) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_TRUE(finishes_within(10s, [&] { static_cast<void>(read_whole_file(fifo, 1 << 20)); }));
    auto r = read_whole_file(fifo, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "FIFO")) << r.error().message();
}

TEST(ReadWholeFile, AnAllocationThatFailsIsAnError) {
    // A sparse 8 TiB file under a limit that lets it through: more than this machine can
    // allocate, so the vector cannot be made. An error, not std::bad_alloc.
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "ASan aborts on an allocation this large instead of throwing";
#endif
    TempDir dir;
    const std::string path = dir.file("sparse");
    {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, off_t{1} << 43), 0);
        ::close(fd);
    }
    Result<std::vector<std::uint8_t>> r = Error("not run");
    EXPECT_NO_THROW(r = read_whole_file(path, ~std::uint64_t{0}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "cannot allocate")) << r.error().message();
}

TEST(OpenOutputStream, AppendsToARegularFile) {
    TempDir dir;
    write_text(dir.file("log"), "old\n");
    auto fd = open_output_stream(dir.file("log"));
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(write_nonblocking(fd->get(), "new\n", 4), 4U);
    EXPECT_EQ(read_text(dir.file("log")), "old\nnew\n");
    auto created = open_output_stream(dir.file("fresh"));
    ASSERT_TRUE(created) << created.error().message();
}

TEST(OpenOutputStream, AFifoWithoutReaderIsAnErrorNotAHang) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_TRUE(finishes_within(10s, [&] { static_cast<void>(open_output_stream(fifo)); }));
    auto fd = open_output_stream(fifo);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().sys_errno(), ENXIO);
    EXPECT_TRUE(has(fd.error(), "nobody reads")) << fd.error().message();
}

TEST(OpenOutputStream, AFullFifoDropsInsteadOfBlocking) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // A reader that never reads.
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    auto fd = open_output_stream(fifo);
    ASSERT_TRUE(fd) << fd.error().message();
    const std::string line(1000, 'x');
    std::size_t written = 0;
    bool dropped = false;
    for (int i = 0; i < 1000 && !dropped; ++i) {  // 1 MB: far more than a pipe holds
        const std::size_t n = write_nonblocking(fd->get(), line.data(), line.size());
        written += n;
        dropped = n < line.size();
    }
    EXPECT_TRUE(dropped);
    EXPECT_GT(written, 0U);
    ::close(reader);
}

TEST(OpenOutputStream, RefusesDirectoriesAndDevices) {
    TempDir dir;
    auto d = open_output_stream(dir.file(""));
    ASSERT_FALSE(d);
    EXPECT_TRUE(has(d.error(), "directory")) << d.error().message();
    auto c = open_output_stream("/dev/null");
    ASSERT_FALSE(c);
    EXPECT_TRUE(has(c.error(), "character device")) << c.error().message();
}

TEST(FdLogSink, AFullFifoCountsMissedLines) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto none = FdLogSink::open(fifo);
    ASSERT_FALSE(none);
    EXPECT_TRUE(has(none.error(), "log path " + fifo)) << none.error().message();
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    auto sink = FdLogSink::open(fifo);
    ASSERT_TRUE(sink) << sink.error().message();
    spdlog::logger logger("test", *sink);
    const std::string text(500, 'y');
    for (int i = 0; i < 1000; ++i) {  // ~0.5 MB: the pipe fills, nothing blocks
        logger.info("{}", text);
    }
    EXPECT_GT((*sink)->missed(), 0U);
    EXPECT_LT((*sink)->missed(), 1000U);  // what fitted went through
    ::close(reader);
}

TEST(CreateTemporary, CreatesAFreshFile) {
    TempDir dir;
    auto fd = create_temporary(dir.file("x.tmp"));
    ASSERT_TRUE(fd) << fd.error().message();
    struct stat st {};
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST(CreateTemporary, ReplacesItsOwnLeftover) {
    TempDir dir;
    write_text(dir.file("x.tmp"), "an interrupted snapshot");
    auto fd = create_temporary(dir.file("x.tmp"));
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(read_text(dir.file("x.tmp")), "");
}

TEST(CreateTemporary, RefusesAPlantedSymlinkAndLeavesItsTargetAlone) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("x.tmp").c_str()), 0);
    auto fd = create_temporary(dir.file("x.tmp"));
    ASSERT_FALSE(fd);
    EXPECT_TRUE(has(fd.error(), "symbolic link")) << fd.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
    // A dangling link too: O_CREAT would otherwise create its target.
    ASSERT_EQ(::symlink(dir.file("new").c_str(), dir.file("y.tmp").c_str()), 0);
    EXPECT_FALSE(create_temporary(dir.file("y.tmp")));
    EXPECT_FALSE(std::filesystem::exists(dir.file("new")));
}

TEST(CreateTemporary, RefusesAHardLink) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::link(dir.file("victim").c_str(), dir.file("x.tmp").c_str()), 0);
    auto fd = create_temporary(dir.file("x.tmp"));
    ASSERT_FALSE(fd);
    EXPECT_TRUE(has(fd.error(), "hard links")) << fd.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
}

}  // namespace
}  // namespace vireo
