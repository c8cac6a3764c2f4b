#include "jailer/shared_libraries.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace vireo::jailer {
namespace {

TEST(SharedLibraries, ParsesLoaderList) {
    const char* out =
        "\tlinux-vdso.so.1 (0x00007ffd6b5f2000)\n"
        "\tlibfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x00007f0f0b1a0000)\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f0ae00000)\n"
        "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0f0b0c0000)\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f0f0b2a0000)\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f0ae00000)\n";
    auto libs = parse_loader_list(out);
    ASSERT_TRUE(libs) << libs.error().message();
    EXPECT_EQ(*libs, (std::vector<std::string>{
                         "/lib/x86_64-linux-gnu/libfmt.so.9", "/lib/x86_64-linux-gnu/libc.so.6",
                         "/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2"}));
}

TEST(SharedLibraries, MissingLibraryIsNamed) {
    auto libs = parse_loader_list("\tlibgone.so.3 => not found\n");
    ASSERT_FALSE(libs);
    EXPECT_NE(libs.error().message().find("libgone.so.3"), std::string::npos);
    EXPECT_FALSE(parse_loader_list("\tlibx.so => /usr/lib/../etc/x (0x1)\n"));
}

TEST(SharedLibraries, DefaultSearchPath) {
    EXPECT_TRUE(in_default_search_path("/lib/x86_64-linux-gnu/libc.so.6"));
    EXPECT_TRUE(in_default_search_path("/usr/lib/libfoo.so"));
    EXPECT_FALSE(in_default_search_path("/usr/local/lib/libfoo.so"));
    EXPECT_FALSE(in_default_search_path("/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so"));
}

TEST(SharedLibraries, InterpreterOfThisTestAndItsLibraries) {
    UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(self.valid());
    auto interp = elf_interpreter(self.get());
    ASSERT_TRUE(interp) << interp.error().message();
    ASSERT_TRUE(interp->has_value());
    EXPECT_EQ(interp->value().front(), '/');
    auto libs = list_shared_libraries(interp->value(), self.get());
    ASSERT_TRUE(libs) << libs.error().message();
    bool libc = false;
    for (const auto& l : *libs) {
        libc = libc || l.find("/libc.so.6") != std::string::npos;
    }
    EXPECT_TRUE(libc);
}

TEST(SharedLibraries, NotAnElfFile) {
    char path[] = "/tmp/vireo-elf-test.XXXXXX";
    UniqueFd fd(::mkstemp(path));
    ASSERT_TRUE(fd.valid());
    ::unlink(path);
    ASSERT_EQ(::write(fd.get(), "#!/bin/sh\n", 10), 10);
    EXPECT_FALSE(elf_interpreter(fd.get()));
}

}  // namespace
}  // namespace vireo::jailer
