#include "arch/x86_64/kernel_loader.h"

#include <gtest/gtest.h>

#include "test_images.h"

namespace vireo::loader {
namespace {

BootConfig default_config() {
    BootConfig config;
    config.cmdline = "console=ttyS0";
    config.e820 = test::pc_e820();
    return config;
}

TEST(KernelFormat, DetectsBzImageAndElf) {
    auto bz = detect_kernel_format(test::make_bzimage());
    ASSERT_TRUE(bz.ok());
    EXPECT_EQ(*bz, KernelFormat::BzImage);
    auto elf = detect_kernel_format(test::make_elf());
    ASSERT_TRUE(elf.ok());
    EXPECT_EQ(*elf, KernelFormat::ElfPvh);
    // Only the magic is sniffed; a 32-bit ELF is rejected by the loader, not here.
    const std::vector<std::uint8_t> elf32 = {0x7f, 'E', 'L', 'F', 1};
    EXPECT_EQ(*detect_kernel_format(elf32), KernelFormat::ElfPvh);
}

TEST(KernelFormat, RejectsEverythingElse) {
    for (const auto& image : {std::vector<std::uint8_t>{}, std::vector<std::uint8_t>(3, 0x7f),
                              std::vector<std::uint8_t>(0x1000, 0)}) {
        auto r = detect_kernel_format(image);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().message(),
                  "kernel: not a bzImage, an ELF vmlinux or a multiboot image");
    }
    auto no_boot_flag = test::make_bzimage();
    no_boot_flag[0x1fe] = 0;
    EXPECT_FALSE(detect_kernel_format(no_boot_flag).ok());
    auto no_hdrs = test::make_bzimage();
    no_hdrs[0x205] = 0;
    EXPECT_FALSE(detect_kernel_format(no_hdrs).ok());
}

TEST(KernelLoad, DispatchesOnTheFormat) {
    auto mem = test::make_memory();
    auto bz = load_kernel(mem, test::make_bzimage(), default_config());
    ASSERT_TRUE(bz.ok()) << bz.error().message();
    EXPECT_EQ(bz->format, KernelFormat::BzImage);
    EXPECT_EQ(bz->boot_info, GuestAddress(0x7000));
    auto pvh = load_kernel(mem, test::make_elf(), default_config());
    ASSERT_TRUE(pvh.ok()) << pvh.error().message();
    EXPECT_EQ(pvh->format, KernelFormat::ElfPvh);
    EXPECT_EQ(pvh->boot_info, GuestAddress(0x6000));
    auto junk = load_kernel(mem, std::vector<std::uint8_t>(100, 1), default_config());
    ASSERT_FALSE(junk.ok());
    EXPECT_EQ(junk.error().message(), "kernel: not a bzImage, an ELF vmlinux or a multiboot image");
}

}  // namespace
}  // namespace vireo::loader
