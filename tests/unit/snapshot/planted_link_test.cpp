// Snapshot files are written under "<path>.tmp" and renamed: a symbolic link a local user plants
// at that name must not make vireo write guest RAM (or state) into the link's target.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "base/test_files.h"
#include "snapshot/memory_file.h"
#include "snapshot/snapshot_file.h"

namespace vireo {
namespace {

using test::read_text;
using test::TempDir;
using test::write_text;

bool has(const Error& e, const std::string& text) {
    return e.message().find(text) != std::string::npos;
}

GuestMemory small_memory() {
    const MemoryRegionSpec specs[] = {{GuestAddress(0), 16 * kPageSize}};
    auto m = GuestMemory::create(specs);
    EXPECT_TRUE(m.ok());
    auto mem = std::move(m).value();
    EXPECT_TRUE(mem.write_obj(GuestAddress(0), std::uint64_t{0x5ec2e7}).ok());
    return mem;
}

TEST(PlantedLink, StateFileTemporary) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("vm.state.tmp").c_str()), 0);
    SnapshotContents c;
    c.vireo_version = "vireo test";
    c.config = "{}";
    auto r = write_snapshot_file(dir.file("vm.state"), c);
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "symbolic link")) << r.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
    EXPECT_FALSE(std::filesystem::exists(dir.file("vm.state")));
}

TEST(PlantedLink, MemoryFileTemporary) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("vm.mem.tmp").c_str()), 0);
    const GuestMemory mem = small_memory();
    auto r = write_memory_file(dir.file("vm.mem"), mem);
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "symbolic link")) << r.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
}

TEST(PlantedLink, DiffPageListTemporary) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("vm.diff.pages.tmp").c_str()), 0);
    const GuestMemory mem = small_memory();
    const std::vector<std::vector<std::uint64_t>> dirty = {{1}};
    auto r = write_memory_diff(dir.file("vm.diff"), mem, dirty);
    ASSERT_FALSE(r);
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
}

TEST(PlantedLink, ALinkAtTheFinalNameIsReplacedNotFollowed) {
    TempDir dir;
    write_text(dir.file("victim"), "precious");
    ASSERT_EQ(::symlink(dir.file("victim").c_str(), dir.file("vm.mem").c_str()), 0);
    const GuestMemory mem = small_memory();
    auto r = write_memory_file(dir.file("vm.mem"), mem);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(read_text(dir.file("victim")), "precious");
    struct stat st {};
    ASSERT_EQ(::lstat(dir.file("vm.mem").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(MemoryFileCopyReason, OnlyFilesNobodyElseCanTruncateAreMapped) {
    struct stat st {};
    st.st_uid = 1000;
    st.st_mode = S_IFREG | 0600;
    EXPECT_EQ(memory_file_copy_reason(st, 1000), "");
    st.st_mode = S_IFREG | 0644;  // others may read, not truncate
    EXPECT_EQ(memory_file_copy_reason(st, 1000), "");
    st.st_mode = S_IFREG | 0620;
    EXPECT_NE(memory_file_copy_reason(st, 1000).find("group"), std::string::npos);
    st.st_mode = S_IFREG | 0666;
    EXPECT_NE(memory_file_copy_reason(st, 1000).find("others"), std::string::npos);
    st.st_mode = S_IFREG | 0600;
    EXPECT_NE(memory_file_copy_reason(st, 0).find("uid 1000"), std::string::npos);
}

}  // namespace
}  // namespace vireo
