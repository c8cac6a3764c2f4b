#include "snapshot/memory_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "base/test_files.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

// Two regions, 96 and 40 pages, at 0 and 4 GiB.
const MemoryRegionSpec kSpecs[] = {{GuestAddress(0), 96 * kPageSize},
                                   {GuestAddress(4ULL << 30), 40 * kPageSize}};
constexpr std::uint64_t kPages = 136;
constexpr std::uint64_t kSize = kPages * kPageSize;

GuestAddress page_address(std::uint64_t file_page) {
    return file_page < 96 ? GuestAddress(file_page * kPageSize)
                          : GuestAddress((4ULL << 30) + (file_page - 96) * kPageSize);
}

void fill_page(GuestMemory& mem, std::uint64_t file_page, std::uint8_t seed) {
    std::vector<std::uint8_t> buf(kPageSize);
    for (std::uint64_t i = 0; i < kPageSize; ++i) {
        buf[i] = static_cast<std::uint8_t>((i * 7 + seed + file_page) | 1);
    }
    ASSERT_TRUE(mem.write(page_address(file_page), buf).ok());
}

void zero_page(GuestMemory& mem, std::uint64_t file_page) {
    std::vector<std::uint8_t> zeros(kPageSize);
    ASSERT_TRUE(mem.write(page_address(file_page), zeros).ok());
}

// Non-zero pages: 0-2, 10, 64 (one byte only, at the end: the zero check reads the whole page),
// 95 (last of region 0), 96 (first of region 1), 120-123.
GuestMemory make_memory() {
    auto m = GuestMemory::create(kSpecs);
    EXPECT_TRUE(m.ok());
    auto mem = std::move(m).value();
    for (std::uint64_t p : {0, 1, 2, 10, 95, 96, 120, 121, 122, 123}) {
        fill_page(mem, p, 1);
    }
    EXPECT_TRUE(mem.write_obj(GuestAddress(65 * kPageSize - 1), std::uint8_t{9}).ok());
    return mem;
}
const std::vector<std::uint64_t> kNonZeroPages = {0, 1, 2, 10, 64, 95, 96, 120, 121, 122, 123};

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::vector<std::uint8_t> out;
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << path;
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    out.resize(static_cast<std::size_t>(st.st_size));
    EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    ::close(fd);
    return out;
}

// Writes every byte (no holes), as `cp --sparse=never` would.
void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

std::vector<std::uint8_t> memory_bytes(const GuestMemory& mem) {
    std::vector<std::uint8_t> out;
    for (const auto& r : mem.regions()) {
        out.insert(out.end(), r.host, r.host + r.size);
    }
    return out;
}

// The file's data extents as page numbers.
std::vector<std::uint64_t> data_pages(const std::string& path) {
    std::vector<std::uint64_t> pages;
    const int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    const off_t size = ::lseek(fd, 0, SEEK_END);
    off_t pos = 0;
    while (pos < size) {
        const off_t d = ::lseek(fd, pos, SEEK_DATA);
        if (d < 0) {
            break;
        }
        const off_t h = ::lseek(fd, d, SEEK_HOLE);
        for (off_t p = d; p < h; p += static_cast<off_t>(kPageSize)) {
            pages.push_back(static_cast<std::uint64_t>(p) / kPageSize);
        }
        pos = h;
    }
    ::close(fd);
    return pages;
}

std::uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Whether this directory's file system reports data extents at 4 KiB (ext4, tmpfs without huge
// pages). Where it does not (tmpfs huge=always), the exact-extent checks are skipped: the page
// list is what keeps merges right there (memory_file.h).
bool exact_extents(const TempDir& dir) {
    const auto probe = dir.file("probe");
    const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    std::vector<std::uint8_t> page(kPageSize, 1);
    bool exact = ::ftruncate(fd, 8 << 20) == 0 &&
                 ::pwrite(fd, page.data(), page.size(), 4096) == 4096 &&
                 ::lseek(fd, 0, SEEK_DATA) == 4096 && ::lseek(fd, 4096, SEEK_HOLE) == 8192;
    ::close(fd);
    ::unlink(probe.c_str());
    return exact;
}

bool has(const std::string& message, const std::string& what) {
    return message.find(what) != std::string::npos;
}

// Where the files go: the system temp dir, /dev/shm (tmpfs) and any directories listed in
// VIREO_MEMFILE_TEST_DIRS (colon-separated; e.g. an ext4 loop mount or a huge=always tmpfs).
std::vector<std::string> test_dirs() {
    std::vector<std::string> dirs = {fs::temp_directory_path().string()};
    if (fs::is_directory("/dev/shm")) {
        dirs.emplace_back("/dev/shm");
    }
    if (const char* extra = std::getenv("VIREO_MEMFILE_TEST_DIRS")) {
        std::string list = extra;
        std::size_t start = 0;
        while (start <= list.size()) {
            const auto end = std::min(list.find(':', start), list.size());
            if (end > start) {
                dirs.push_back(list.substr(start, end - start));
            }
            start = end + 1;
        }
    }
    return dirs;
}

class MemoryFile : public ::testing::TestWithParam<std::string> {
protected:
    TempDir m_dir{GetParam()};
};

TEST_P(MemoryFile, FullFileHoldsTheMemoryWithHolesForZeroPages) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("mem");
    auto stats = write_memory_file(path, mem);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->apparent_size, kSize);
    EXPECT_EQ(stats->pages_written, kNonZeroPages.size());
    EXPECT_EQ(stats->bytes_written, kNonZeroPages.size() * kPageSize);
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    EXPECT_EQ(fs::file_size(path), kSize);
    EXPECT_EQ(read_file(path), memory_bytes(mem));
    if (exact_extents(m_dir)) {
        // Zero pages take no space (a huge-page tmpfs allocates 2 MiB per page written).
        EXPECT_EQ(data_pages(path), kNonZeroPages);
        EXPECT_LT(allocated_bytes(path), kSize / 2);
    }
}

TEST_P(MemoryFile, RestoresLazilyAndEagerlyToTheSameBytes) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("mem");
    ASSERT_TRUE(write_memory_file(path, mem).ok());
    const auto original = read_file(path);
    for (bool eager : {false, true}) {
        const int fd = ::open(path.c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        auto restored = GuestMemory::create_from_file(kSpecs, fd, eager);
        ::close(fd);  // the mappings keep the file
        ASSERT_TRUE(restored.ok()) << restored.error().message();
        EXPECT_EQ(memory_bytes(*restored), memory_bytes(mem)) << (eager ? "eager" : "lazy");
        // The guest writes; the file stays as it was.
        fill_page(*restored, 50, 3);
        zero_page(*restored, 0);
        EXPECT_EQ(read_file(path), original);
    }
}

TEST_P(MemoryFile, ALazyRestoreSurvivesASnapshotToItsOwnFile) {
    // Snapshot, restore lazily, snapshot again to the same path: the new file replaces the old
    // one, which the restored memory still maps (truncating it would pull pages from under it).
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("mem");
    ASSERT_TRUE(write_memory_file(path, mem).ok());
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    auto restored = GuestMemory::create_from_file(kSpecs, fd, false);
    ::close(fd);
    ASSERT_TRUE(restored.ok());
    fill_page(*restored, 30, 4);
    ASSERT_TRUE(write_memory_file(path, *restored).ok());
    EXPECT_EQ(read_file(path), memory_bytes(*restored));
    auto expected = make_memory();
    fill_page(expected, 30, 4);
    EXPECT_EQ(memory_bytes(*restored), memory_bytes(expected));
}

TEST_P(MemoryFile, RestoreRefusesAFileOfAnotherSize) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("mem");
    ASSERT_TRUE(write_memory_file(path, mem).ok());
    const MemoryRegionSpec bigger[] = {{GuestAddress(0), 97 * kPageSize}};
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    auto r = GuestMemory::create_from_file(bigger, fd, false);
    ::close(fd);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), std::to_string(kSize)) &&
                has(r.error().message(), std::to_string(97 * kPageSize)))
        << r.error().message();
}

// The first snapshot (full), then changes tracked as dirty pages: a diff with exactly those, and
// the merge turns the first full file into the second one.
TEST_P(MemoryFile, DiffHoldsTheDirtyPagesAndMergesIntoTheLaterFullFile) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    mem.enable_dirty_tracking();
    const auto base = m_dir.file("base");
    ASSERT_TRUE(write_memory_file(base, mem).ok());
    static_cast<void>(mem.take_dirty(0));  // what the full snapshot took
    static_cast<void>(mem.take_dirty(1));

    fill_page(mem, 1, 9);    // changed
    zero_page(mem, 10);      // dirtied to zero: the base's data must go
    fill_page(mem, 11, 9);   // was zero
    zero_page(mem, 30);      // zero before and after
    fill_page(mem, 96, 9);   // first page of region 1
    fill_page(mem, 135, 9);  // last page of RAM
    const std::vector<std::uint64_t> dirty_pages = {1, 10, 11, 30, 96, 135};
    const std::vector<std::vector<std::uint64_t>> dirty = {mem.take_dirty(0), mem.take_dirty(1)};

    const auto diff = m_dir.file("diff");
    auto stats = write_memory_diff(diff, mem, dirty);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->apparent_size, kSize);
    EXPECT_EQ(stats->pages_written, dirty_pages.size());
    EXPECT_EQ(stats->bytes_written, dirty_pages.size() * kPageSize);
    EXPECT_EQ(fs::file_size(diff), kSize);
    EXPECT_TRUE(fs::exists(page_list_path(diff)));
    EXPECT_FALSE(fs::exists(diff + ".tmp"));
    EXPECT_FALSE(fs::exists(page_list_path(diff) + ".tmp"));
    if (exact_extents(m_dir)) {
        // The zero pages are data too: written, not holes.
        EXPECT_EQ(data_pages(diff), dirty_pages);
    }
    const auto diff_bytes = read_file(diff);
    const auto later = memory_bytes(mem);
    for (std::uint64_t p = 0; p < kPages; ++p) {
        const bool is_dirty =
            std::find(dirty_pages.begin(), dirty_pages.end(), p) != dirty_pages.end();
        const auto* want = is_dirty ? &later[p * kPageSize] : nullptr;
        for (std::uint64_t i = 0; i < kPageSize; ++i) {
            ASSERT_EQ(diff_bytes[p * kPageSize + i], want ? want[i] : 0) << "page " << p;
        }
    }

    // Merge onto a copy of the base: the result is the full file of the later state.
    const auto merged = m_dir.file("merged");
    write_file(merged, read_file(base));
    auto m = merge_memory_diff(merged, diff);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->pages_copied, dirty_pages.size());
    EXPECT_EQ(m->bytes_copied, dirty_pages.size() * kPageSize);
    EXPECT_EQ(m->runs, 5U);  // 10 and 11 are one run
    const auto later_full = m_dir.file("later");
    ASSERT_TRUE(write_memory_file(later_full, mem).ok());
    EXPECT_EQ(read_file(merged), read_file(later_full));
    // Merging again changes nothing (an interrupted merge can simply be rerun).
    ASSERT_TRUE(merge_memory_diff(merged, diff).ok());
    EXPECT_EQ(read_file(merged), read_file(later_full));
}

TEST_P(MemoryFile, MergeIsRightWhenTheDiffLostItsHoles) {
    // A copy that does not keep holes makes every page data (and so does a file system that
    // reports data extents coarser than 4 KiB): only the page list says what the diff holds.
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    mem.enable_dirty_tracking();
    const auto base = m_dir.file("base");
    ASSERT_TRUE(write_memory_file(base, mem).ok());
    static_cast<void>(mem.take_dirty(0));
    static_cast<void>(mem.take_dirty(1));
    fill_page(mem, 50, 5);
    zero_page(mem, 2);
    const std::vector<std::vector<std::uint64_t>> dirty = {mem.take_dirty(0), mem.take_dirty(1)};
    const auto diff = m_dir.file("diff");
    ASSERT_TRUE(write_memory_diff(diff, mem, dirty).ok());
    write_file(diff, read_file(diff));  // now all data
    ASSERT_EQ(data_pages(diff).size(), kPages);

    auto m = merge_memory_diff(base, diff);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->pages_copied, 2U);
    EXPECT_EQ(read_file(base), memory_bytes(mem));
}

TEST_P(MemoryFile, MergeChangesNothingWhenItCannotProceed) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto base = m_dir.file("base");
    ASSERT_TRUE(write_memory_file(base, mem).ok());
    const auto base_bytes = read_file(base);
    fill_page(mem, 3, 7);
    std::vector<std::vector<std::uint64_t>> dirty = {std::vector<std::uint64_t>(2),
                                                     std::vector<std::uint64_t>(1)};
    dirty[0][0] = 1ULL << 3;
    const auto diff = m_dir.file("diff");
    ASSERT_TRUE(write_memory_diff(diff, mem, dirty).ok());
    const auto list = page_list_path(diff);
    const auto list_bytes = read_file(list);

    // Sizes differ.
    const auto small = m_dir.file("small");
    write_file(small, std::vector<std::uint8_t>(kSize - kPageSize));
    auto r = merge_memory_diff(small, diff);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), std::to_string(kSize)) &&
                has(r.error().message(), std::to_string(kSize - kPageSize)))
        << r.error().message();
    EXPECT_EQ(read_file(small), std::vector<std::uint8_t>(kSize - kPageSize));

    // The page list is damaged (one bit), missing, truncated, or for another memory size.
    auto damaged = list_bytes;
    damaged[30] ^= 0x40;
    write_file(list, damaged);
    r = merge_memory_diff(base, diff);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "corrupted") && has(r.error().message(), list))
        << r.error().message();

    fs::remove(list);
    r = merge_memory_diff(base, diff);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), list) && has(r.error().message(), "No such file"))
        << r.error().message();

    write_file(list, std::vector<std::uint8_t>(list_bytes.begin(), list_bytes.end() - 1));
    r = merge_memory_diff(base, diff);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "bytes")) << r.error().message();
    EXPECT_EQ(read_file(base), base_bytes);

    // Missing diff, a directory for a base.
    write_file(list, list_bytes);
    r = merge_memory_diff(base, m_dir.file("nope"));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "nope")) << r.error().message();
    fs::create_directory(m_dir.file("adir"));
    r = merge_memory_diff(m_dir.file("adir"), diff);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "adir")) << r.error().message();

    EXPECT_EQ(read_file(base), base_bytes);
    // And with everything in place it goes through.
    ASSERT_TRUE(merge_memory_diff(base, diff).ok());
    EXPECT_EQ(read_file(base), memory_bytes(mem));
}

TEST_P(MemoryFile, DiffRefusesBitmapsThatDoNotFit) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto diff = m_dir.file("diff");
    using Maps = std::vector<std::vector<std::uint64_t>>;
    const Maps wrong_count = {std::vector<std::uint64_t>(2)};
    const Maps wrong_words = {std::vector<std::uint64_t>(1), std::vector<std::uint64_t>(1)};
    Maps past_end = {std::vector<std::uint64_t>(2), std::vector<std::uint64_t>(1)};
    past_end[1][0] = 1ULL << 40;  // region 1 has 40 pages: bit 40 is the 41st
    for (const Maps* maps :
         std::initializer_list<const Maps*>{&wrong_count, &wrong_words, &past_end}) {
        auto r = write_memory_diff(diff, mem, *maps);
        ASSERT_FALSE(r.ok());
        EXPECT_TRUE(has(r.error().message(), "dirty bitmap")) << r.error().message();
        EXPECT_FALSE(fs::exists(diff));
        EXPECT_FALSE(fs::exists(page_list_path(diff)));
    }
    past_end[1][0] = (1ULL << 40) - 1;  // pages 0-39: fine
    EXPECT_TRUE(write_memory_diff(diff, mem, past_end).ok());
}

TEST_P(MemoryFile, AFullFileReplacesAStalePageList) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("mem");
    const std::vector<std::vector<std::uint64_t>> none = {std::vector<std::uint64_t>(2),
                                                          std::vector<std::uint64_t>(1)};
    ASSERT_TRUE(write_memory_diff(path, mem, none).ok());
    EXPECT_TRUE(fs::exists(page_list_path(path)));
    ASSERT_TRUE(write_memory_file(path, mem).ok());
    EXPECT_FALSE(fs::exists(page_list_path(path)));
}

TEST_P(MemoryFile, WriteErrorsNameThePath) {
    ASSERT_TRUE(m_dir.valid());
    auto mem = make_memory();
    const auto path = m_dir.file("no/such/dir/mem");
    auto r = write_memory_file(path, mem);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "no/such/dir/mem") &&
                has(r.error().message(), "No such file"))
        << r.error().message();
    const std::vector<std::vector<std::uint64_t>> none = {std::vector<std::uint64_t>(2),
                                                          std::vector<std::uint64_t>(1)};
    EXPECT_FALSE(write_memory_diff(path, mem, none).ok());
}

INSTANTIATE_TEST_SUITE_P(Dirs, MemoryFile, ::testing::ValuesIn(test_dirs()), [](const auto& p) {
    std::string name;
    for (char c : p.param) {
        name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    }
    return std::to_string(p.index) + name;
});

}  // namespace
}  // namespace vireo
