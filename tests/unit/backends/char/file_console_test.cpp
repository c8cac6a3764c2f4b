#include "backends/char/console.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

void print(Console& c, const std::string& text) {
    c.write(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

TEST(FileConsole, WritesAndTruncates) {
    TempDir dir;
    write_text(dir.file("out"), "old contents");
    auto c = open_console("file:" + dir.file("out"));
    ASSERT_TRUE(c) << c.error().message();
    print(**c, "hello");
    EXPECT_EQ(read_text(dir.file("out")), "hello");
}

TEST(FileConsole, RefusesASymlinkAndLeavesItsTargetAlone) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("out").c_str()), 0);
    auto c = open_console("file:" + dir.file("out"));
    ASSERT_FALSE(c);
    EXPECT_TRUE(has(c.error(), "symbolic link")) << c.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
}

TEST(FileConsole, RefusesAFifoWithoutBlocking) {
    TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_TRUE(finishes_within(10s, [&] { static_cast<void>(open_console("file:" + fifo)); }));
    auto c = open_console("file:" + fifo);
    ASSERT_FALSE(c);
    EXPECT_TRUE(has(c.error(), "FIFO")) << c.error().message();
}

TEST(FileConsole, TakesACharacterDevice) {
    auto c = open_console("file:/dev/null");
    ASSERT_TRUE(c) << c.error().message();
    print(**c, "into the void");
}

TEST(FileConsole, StopsAtItsCap) {
    TempDir dir;
    auto c = open_console("file:" + dir.file("out"), 4096);
    ASSERT_TRUE(c) << c.error().message();
    const std::string line(1000, 'z');
    for (int i = 0; i < 10; ++i) {  // 10,000 bytes, 4096 kept
        print(**c, line);
    }
    c->reset();
    struct stat st {};
    ASSERT_EQ(::stat(dir.file("out").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 4096);
}

}  // namespace
}  // namespace vireo
