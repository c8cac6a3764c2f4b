// check_boot_files: a kernel or initrd that cannot fit in the guest's RAM below 4 GiB is refused
// from its size alone, before anything reads (allocates) it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_layout.h"
#include "base/test_files.h"

namespace vireo::loader {
namespace {

using test::TempDir;
using test::write_text;

bool has(const Error& e, const std::string& text) {
    return e.message().find(text) != std::string::npos;
}

// A 1 TiB guest's map: 3 GiB below the hole (less the legacy hole), the rest above 4 GiB.
const E820Entry kBig[] = {{0, 0x9fc00, E820Type::Ram},
                          {0x100000, 0xc0000000 - 0x100000, E820Type::Ram},
                          {1ULL << 32, (1ULL << 40) - 0xc0000000, E820Type::Ram}};

TEST(BootFiles, TheLimitIsTheRamBelow4GiB) {
    EXPECT_EQ(max_boot_file_size(kBig), 0x9fc00ULL + 0xc0000000 - 0x100000);
    const E820Entry small[] = {{0, 0x9fc00, E820Type::Ram},
                               {0x9fc00, 0x400, E820Type::Reserved},
                               {0x100000, (64 << 20) - 0x100000, E820Type::Ram}};
    EXPECT_EQ(max_boot_file_size(small), 0x9fc00ULL + (64 << 20) - 0x100000);
}

TEST(BootFiles, AHugeSparseKernelIsRefusedBySize) {
    TempDir dir;
    const std::string kernel = dir.file("vmlinux");
    const int fd = ::open(kernel.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, off_t{200} << 30), 0);  // 200 GiB, sparse
    ::close(fd);
    auto r = check_boot_files(kernel, "", kBig);
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "kernel " + kernel)) << r.error().message();
    EXPECT_TRUE(has(r.error(), "200 GiB")) << r.error().message();
    write_text(dir.file("small"), "abc");
    EXPECT_TRUE(check_boot_files(dir.file("small"), "", kBig));
    auto initrd = check_boot_files(dir.file("small"), kernel, kBig);
    ASSERT_FALSE(initrd);
    EXPECT_TRUE(has(initrd.error(), "initrd")) << initrd.error().message();
}

TEST(BootFiles, FifosAndDirectoriesAreRefusedWithoutOpening) {
    TempDir dir;
    ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
    auto r = check_boot_files(dir.file("fifo"), "", kBig);
    ASSERT_FALSE(r);
    EXPECT_TRUE(has(r.error(), "FIFO")) << r.error().message();
    write_text(dir.file("k"), "k");
    auto d = check_boot_files(dir.file("k"), dir.file(""), kBig);
    ASSERT_FALSE(d);
    EXPECT_TRUE(has(d.error(), "directory")) << d.error().message();
    EXPECT_FALSE(check_boot_files(dir.file("none"), "", kBig));
}

}  // namespace
}  // namespace vireo::loader
