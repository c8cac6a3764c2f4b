// GuestMemory restored from a memory file, lazily (MAP_PRIVATE) and eagerly (pread).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memory/guest_memory.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

class TempFile {
public:
    TempFile() {
        std::string tmpl = (fs::temp_directory_path() / "vireo-memfile-XXXXXX").string();
        m_fd = ::mkstemp(tmpl.data());
        m_path = tmpl;
    }
    ~TempFile() {
        ::close(m_fd);
        ::unlink(m_path.c_str());
    }
    int fd() const { return m_fd; }
    const std::string& path() const { return m_path; }

private:
    int m_fd = -1;
    std::string m_path;
};

std::uint8_t pattern(std::uint64_t offset) {
    return static_cast<std::uint8_t>((offset * 13 + 5) | 1);  // never 0
}

const MemoryRegionSpec kTwoRegions[] = {{GuestAddress(0), 64 * kPageSize},
                                        {GuestAddress(1ULL << 20), 16 * kPageSize}};
constexpr std::uint64_t kTwoRegionsSize = 80 * kPageSize;

// A memory file for kTwoRegions: pages 0-3, 40 and 70 hold pattern(file offset), everything else
// is a hole.
void fill_file(int fd) {
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kTwoRegionsSize)), 0);
    for (std::uint64_t page : {0, 1, 2, 3, 40, 70}) {
        std::vector<std::uint8_t> buf(kPageSize);
        for (std::uint64_t i = 0; i < kPageSize; ++i) {
            buf[i] = pattern(page * kPageSize + i);
        }
        ASSERT_EQ(::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(page * kPageSize)),
                  static_cast<ssize_t>(kPageSize));
    }
}

std::uint8_t expected_at(std::uint64_t file_offset) {
    const std::uint64_t page = file_offset / kPageSize;
    const bool data = page <= 3 || page == 40 || page == 70;
    return data ? pattern(file_offset) : 0;
}

// Every byte of both regions against the file's content.
void expect_file_content(const GuestMemory& mem) {
    std::vector<std::uint8_t> buf(64 * kPageSize);
    ASSERT_TRUE(mem.read(GuestAddress(0), buf).ok());
    for (std::uint64_t i = 0; i < buf.size(); ++i) {
        ASSERT_EQ(buf[i], expected_at(i)) << "offset " << i;
    }
    buf.resize(16 * kPageSize);
    ASSERT_TRUE(mem.read(GuestAddress(1ULL << 20), buf).ok());
    for (std::uint64_t i = 0; i < buf.size(); ++i) {
        ASSERT_EQ(buf[i], expected_at(64 * kPageSize + i)) << "offset " << 64 * kPageSize + i;
    }
}

std::vector<std::uint8_t> file_bytes(int fd) {
    std::vector<std::uint8_t> out(kTwoRegionsSize);
    EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    return out;
}

class FromFile : public ::testing::TestWithParam<bool> {};

TEST_P(FromFile, ReadsTheRegionsBackToBack) {
    TempFile f;
    fill_file(f.fd());
    auto mem = GuestMemory::create_from_file(kTwoRegions, f.fd(), GetParam());
    ASSERT_TRUE(mem.ok()) << mem.error().message();
    ASSERT_EQ(mem->regions().size(), 2U);
    EXPECT_EQ(mem->total_size(), kTwoRegionsSize);
    expect_file_content(*mem);
    // slice() sees the same bytes as read().
    auto s = mem->slice(GuestAddress((1ULL << 20) + 6 * kPageSize), 8);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ((*s)[3], pattern(70 * kPageSize + 3));
    for (const auto& r : mem->regions()) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.host) % (2ULL << 20), 0U);
    }
}

TEST_P(FromFile, GuestWritesNeverReachTheFile) {
    TempFile f;
    fill_file(f.fd());
    const auto before = file_bytes(f.fd());
    {
        auto mem = GuestMemory::create_from_file(kTwoRegions, f.fd(), GetParam());
        ASSERT_TRUE(mem.ok()) << mem.error().message();
        // Over data, over a hole, and through a slice.
        ASSERT_TRUE(mem->write_obj(GuestAddress(8), std::uint64_t{0}).ok());
        ASSERT_TRUE(mem->write_obj(GuestAddress(10 * kPageSize), std::uint64_t{~0ULL}).ok());
        auto s = mem->slice(GuestAddress(1ULL << 20), kPageSize);
        ASSERT_TRUE(s.ok());
        std::fill(s->begin(), s->end(), std::uint8_t{0x77});
        EXPECT_EQ(*mem->read_obj<std::uint64_t>(GuestAddress(8)), 0U);
        EXPECT_EQ(*mem->read_obj<std::uint64_t>(GuestAddress(10 * kPageSize)), ~0ULL);
        EXPECT_EQ(*mem->read_obj<std::uint8_t>(GuestAddress(1ULL << 20)), 0x77);
    }
    EXPECT_EQ(file_bytes(f.fd()), before);
}

TEST_P(FromFile, RefusesAFileOfAnotherSize) {
    TempFile f;
    fill_file(f.fd());
    ASSERT_EQ(::ftruncate(f.fd(), static_cast<off_t>(kTwoRegionsSize + kPageSize)), 0);
    auto mem = GuestMemory::create_from_file(kTwoRegions, f.fd(), GetParam());
    ASSERT_FALSE(mem.ok());
    const auto& msg = mem.error().message();
    EXPECT_NE(msg.find(std::to_string(kTwoRegionsSize + kPageSize)), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(kTwoRegionsSize)), std::string::npos) << msg;
    // Shorter is refused too (a mapping past the end would SIGBUS on touch).
    ASSERT_EQ(::ftruncate(f.fd(), static_cast<off_t>(kTwoRegionsSize - kPageSize)), 0);
    EXPECT_FALSE(GuestMemory::create_from_file(kTwoRegions, f.fd(), GetParam()).ok());
}

TEST_P(FromFile, RefusesWhatIsNotARegularFile) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    auto mem = GuestMemory::create_from_file(kTwoRegions, pipe_fds[0], GetParam());
    ASSERT_FALSE(mem.ok());
    EXPECT_NE(mem.error().message().find("not a regular file"), std::string::npos)
        << mem.error().message();
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    EXPECT_FALSE(GuestMemory::create_from_file(kTwoRegions, -1, GetParam()).ok());
}

INSTANTIATE_TEST_SUITE_P(LazyAndEager, FromFile, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Eager" : "Lazy"; });

TEST(GuestMemoryFromFile, EagerCanBeAMemfdLazyCannot) {
    TempFile f;
    fill_file(f.fd());
    auto eager = GuestMemory::create_from_file(kTwoRegions, f.fd(), true, {.memfd = true});
    ASSERT_TRUE(eager.ok()) << eager.error().message();
    EXPECT_GE(eager->fd(), 0);
    expect_file_content(*eager);
    EXPECT_FALSE(GuestMemory::create_from_file(kTwoRegions, f.fd(), false, {.memfd = true}).ok());
}

TEST(GuestMemoryFromFile, EagerReadsAFileWithoutHoles) {
    // Fully written file: the SEEK_DATA walk reads it in one go.
    TempFile f;
    std::vector<std::uint8_t> all(kTwoRegionsSize);
    for (std::uint64_t i = 0; i < all.size(); ++i) {
        all[i] = pattern(i);
    }
    ASSERT_EQ(::write(f.fd(), all.data(), all.size()), static_cast<ssize_t>(all.size()));
    auto mem = GuestMemory::create_from_file(kTwoRegions, f.fd(), true);
    ASSERT_TRUE(mem.ok()) << mem.error().message();
    std::vector<std::uint8_t> back(16 * kPageSize);
    ASSERT_TRUE(mem->read(GuestAddress(1ULL << 20), back).ok());
    EXPECT_TRUE(std::equal(back.begin(), back.end(), all.begin() + 64 * kPageSize));
}

}  // namespace
}  // namespace vireo
