// The multiboot (v1) loader (arch/x86_64/multiboot.h): the header search, the requirements it
// refuses, the a.out-kludge and ELF32 layouts, and the multiboot information it writes. A refused
// image writes nothing.
#include "arch/x86_64/multiboot.h"

#include <gtest/gtest.h>

#include <cstring>

#include "arch/x86_64/kernel_loader.h"
#include "test_images.h"

namespace vireo::loader {
namespace {

using test::put;

constexpr std::uint32_t kLoad = 0x100000;

BootConfig config_with(std::string cmdline = "test args") {
    BootConfig c;
    c.cmdline = std::move(cmdline);
    c.e820 = test::pc_e820();
    return c;
}

void put_header(std::vector<std::uint8_t>& image, std::size_t at, std::uint32_t flags,
                std::uint32_t checksum_fix = 0) {
    put<std::uint32_t>(image, at, kMultibootHeaderMagic);
    put<std::uint32_t>(image, at + 4, flags);
    put<std::uint32_t>(image, at + 8, -(kMultibootHeaderMagic + flags) + checksum_fix);
}

// A flat image with the a.out kludge: header at file offset 0x10, code from load_addr 1 MiB,
// `size` bytes loaded, bss to bss_end, entry at +0x40.
std::vector<std::uint8_t> aout_image(std::size_t size = 0x200, std::uint32_t bss = 0x1000) {
    std::vector<std::uint8_t> image = test::pattern(size);
    put_header(image, 0x10, kMbAoutKludge | kMbMemoryInfo);
    put<std::uint32_t>(image, 0x1c, kLoad + 0x10);  // header_addr
    put<std::uint32_t>(image, 0x20, kLoad);         // load_addr
    put<std::uint32_t>(image, 0x24, kLoad + static_cast<std::uint32_t>(size));
    put<std::uint32_t>(image, 0x28, kLoad + static_cast<std::uint32_t>(size) + bss);
    put<std::uint32_t>(image, 0x2c, kLoad + 0x40);  // entry_addr
    return image;
}

// An ELF32 image: header, one PT_LOAD of `filesz` bytes at 1 MiB (memsz = filesz + 0x100), and
// the multiboot header at the segment's start (file offset 0x100).
std::vector<std::uint8_t> elf32_image(std::uint32_t filesz = 0x100) {
    std::vector<std::uint8_t> image(0x100 + filesz, 0);
    Elf32Header eh{};
    std::memcpy(eh.e_ident, kElfMagic, 4);
    eh.e_ident[kEiClass] = kElfClass32;
    eh.e_ident[kEiData] = kElfData2Lsb;
    eh.e_ident[kEiVersion] = kEvCurrent;
    eh.e_type = kEtExec;
    eh.e_machine = kEm386;
    eh.e_version = 1;
    eh.e_entry = kLoad + 0x20;
    eh.e_phoff = sizeof(Elf32Header);
    eh.e_ehsize = sizeof(Elf32Header);
    eh.e_phentsize = sizeof(Elf32ProgramHeader);
    eh.e_phnum = 1;
    std::memcpy(image.data(), &eh, sizeof(eh));
    Elf32ProgramHeader ph{kPtLoad, 0x100, kLoad, kLoad, filesz, filesz + 0x100, 7, 0x10};
    std::memcpy(image.data() + sizeof(eh), &ph, sizeof(ph));
    for (std::uint32_t i = 12; i < filesz; ++i) {
        image[0x100 + i] = test::pattern_byte(i);
    }
    put_header(image, 0x100, kMbMemoryInfo);
    return image;
}

std::string load_error(std::vector<std::uint8_t> image, BootConfig config = config_with()) {
    auto mem = test::make_memory();
    auto r = load_multiboot(mem, image, config);
    if (r.ok()) {
        return "loaded";
    }
    // Nothing was written: RAM is still all zeros where the kernel and the information go.
    EXPECT_EQ(test::read_guest(mem, kLoad, 0x100), std::vector<std::uint8_t>(0x100, 0));
    EXPECT_EQ(test::read_guest(mem, 0x6000, 0x100), std::vector<std::uint8_t>(0x100, 0));
    return r.error().message();
}

TEST(Multiboot, FindsTheHeaderOnlyWhereTheSpecSaysItIs) {
    std::vector<std::uint8_t> image(0x3000, 0);
    EXPECT_FALSE(find_multiboot_header(image));
    put_header(image, 0x1ffc - 8, 0);  // aligned, inside the first 8192 bytes
    EXPECT_EQ(find_multiboot_header(image), std::optional<std::size_t>(0x1ffc - 8));
    std::vector<std::uint8_t> late(0x3000, 0);
    put_header(late, 0x2000, 0);  // past 8192 bytes
    EXPECT_FALSE(find_multiboot_header(late));
    std::vector<std::uint8_t> unaligned(0x100, 0);
    put_header(unaligned, 0x12, 0);
    EXPECT_FALSE(find_multiboot_header(unaligned));
    std::vector<std::uint8_t> bad_sum(0x100, 0);
    put_header(bad_sum, 0x10, 0, 1);
    EXPECT_FALSE(find_multiboot_header(bad_sum));
    // A header cut off by the end of the file is not one.
    std::vector<std::uint8_t> cut(0x18, 0);
    put<std::uint32_t>(cut, 0x10, kMultibootHeaderMagic);
    EXPECT_FALSE(find_multiboot_header(cut));
}

TEST(Multiboot, DetectedForImagesWithoutAnotherFormat) {
    EXPECT_EQ(*detect_kernel_format(aout_image()), KernelFormat::Multiboot);
    EXPECT_EQ(*detect_kernel_format(elf32_image()), KernelFormat::Multiboot);
    // A vmlinux with a PVH note stays PVH even with a multiboot header.
    auto pvh = test::make_elf();
    put_header(pvh, test::kSegmentAt, 0);
    EXPECT_EQ(*detect_kernel_format(pvh), KernelFormat::ElfPvh);
}

TEST(Multiboot, LoadsAnAoutKludgeImageAndDescribesTheMachine) {
    auto mem = test::make_memory();
    const std::vector<std::uint8_t> module = {'m', 'o', 'd'};
    auto config = config_with();
    config.initrd = module;
    const auto image = aout_image();
    auto k = load_multiboot(mem, image, config);
    ASSERT_TRUE(k.ok()) << k.error().message();
    EXPECT_EQ(k->format, KernelFormat::Multiboot);
    EXPECT_EQ(k->entry, GuestAddress(kLoad + 0x40));
    EXPECT_EQ(k->entry_eax, kMultibootBootloaderMagic);
    EXPECT_EQ(k->boot_info, GuestAddress(0x6000));
    EXPECT_EQ(test::read_guest(mem, kLoad, image.size()), image);
    EXPECT_EQ(test::read_guest(mem, kLoad + image.size(), 0x1000),
              std::vector<std::uint8_t>(0x1000, 0));  // bss
    EXPECT_EQ(k->kernel_end, GuestAddress(kLoad + 0x200 + 0x1000));

    const auto info = test::read_guest(mem, 0x6000, 88);
    const auto u32 = [&](std::size_t at) { return test::get<std::uint32_t>(info, at); };
    EXPECT_EQ(u32(0),
              kMbInfoMemory | kMbInfoCmdline | kMbInfoMods | kMbInfoMmap | kMbInfoLoaderName);
    EXPECT_EQ(u32(4), 0x9fc00U >> 10);      // mem_lower, KiB
    EXPECT_EQ(u32(8), (64U << 10) - 1024);  // mem_upper: 1 MiB .. 64 MiB
    EXPECT_EQ(u32(16), 0x20000U);           // cmdline
    EXPECT_EQ(test::read_guest(mem, 0x20000, 10),
              (std::vector<std::uint8_t>{'t', 'e', 's', 't', ' ', 'a', 'r', 'g', 's', 0}));
    EXPECT_EQ(u32(20), 1U);  // mods_count
    const auto mods = test::read_guest(mem, u32(24), 16);
    const auto mod_start = test::get<std::uint32_t>(mods, 0);
    EXPECT_EQ(test::get<std::uint32_t>(mods, 4), mod_start + 3);
    EXPECT_EQ(mod_start % 4096, 0U);
    EXPECT_GE(mod_start, kLoad + 0x1200);
    EXPECT_EQ(test::read_guest(mem, mod_start, 3), module);
    EXPECT_EQ(u32(44), 4U * 24);  // mmap_length: the four E820 entries
    const auto mmap = test::read_guest(mem, u32(48), 4 * 24);
    EXPECT_EQ(test::get<std::uint32_t>(mmap, 3 * 24), 20U);            // size
    EXPECT_EQ(test::get<std::uint64_t>(mmap, 3 * 24 + 4), 0x100000U);  // base
    EXPECT_EQ(test::get<std::uint64_t>(mmap, 3 * 24 + 12), (64U << 20) - 0x100000);
    EXPECT_EQ(test::get<std::uint32_t>(mmap, 3 * 24 + 20), 1U);  // RAM
    EXPECT_EQ(test::read_guest(mem, u32(64), 6),
              (std::vector<std::uint8_t>{'v', 'i', 'r', 'e', 'o', 0}));
}

TEST(Multiboot, LoadsAnElf32ByItsProgramHeaders) {
    auto mem = test::make_memory();
    const auto image = elf32_image();
    auto k = load_multiboot(mem, image, config_with(""));
    ASSERT_TRUE(k.ok()) << k.error().message();
    EXPECT_EQ(k->entry, GuestAddress(kLoad + 0x20));
    EXPECT_EQ(test::read_guest(mem, kLoad, 0x100),
              std::vector<std::uint8_t>(image.begin() + 0x100, image.end()));
    EXPECT_EQ(k->kernel_end, GuestAddress(kLoad + 0x200));
    EXPECT_EQ(test::get<std::uint32_t>(test::read_guest(mem, 0x6000, 24), 20), 0U);  // no module
}

TEST(Multiboot, RefusesWhatItCannotMeet) {
    auto video = aout_image();
    put_header(video, 0x10, kMbAoutKludge | kMbVideoMode);
    EXPECT_NE(load_error(video).find("flags 0x4, which vireo cannot meet (bit 2: a video mode"),
              std::string::npos)
        << load_error(video);
    auto unknown = aout_image();
    put_header(unknown, 0x10, kMbAoutKludge | 0x8000);
    EXPECT_NE(load_error(unknown).find("flags 0x8000"), std::string::npos);
    // Not an ELF and no address fields: nothing says where to load it.
    std::vector<std::uint8_t> flat(0x100, 0);
    put_header(flat, 0, 0);
    EXPECT_NE(load_error(flat).find("multiboot: kernel: not an ELF file"), std::string::npos)
        << load_error(flat);
    EXPECT_NE(load_error(std::vector<std::uint8_t>(0x100, 0)).find("no multiboot header"),
              std::string::npos);
}

TEST(Multiboot, RefusesHostileAddressFields) {
    struct Case {
        std::size_t field;  // offset in the image
        std::uint32_t value;
        const char* says;
    };
    const Case cases[] = {
        {0x1c, kLoad - 1, "header_addr"},          // header before load_addr
        {0x1c, kLoad + 0x1000, "header_addr"},     // header past its file offset
        {0x24, kLoad - 4, "load_end_addr"},        // end before start
        {0x24, kLoad + 0x10000, "load_end_addr"},  // past the file
        {0x28, kLoad + 0x100, "bss_end_addr"},     // bss ends inside the loaded bytes
        {0x2c, kLoad + 0x200, "entry_addr"},       // entry in the bss
        {0x2c, 0, "entry_addr"},
        {0x28, 0xfffff000, "outside guest memory below 4 GiB"},  // bss to the top of 4 GiB
    };
    for (const auto& c : cases) {
        auto image = aout_image();
        put<std::uint32_t>(image, c.field, c.value);
        const auto e = load_error(image);
        EXPECT_NE(e.find(c.says), std::string::npos) << c.field << ": " << e;
    }
    // A load address over the information page or the command line.
    auto over = aout_image();
    put<std::uint32_t>(over, 0x1c, 0x6010);
    put<std::uint32_t>(over, 0x20, 0x6000);
    put<std::uint32_t>(over, 0x24, 0x6200);
    put<std::uint32_t>(over, 0x28, 0x7000);
    put<std::uint32_t>(over, 0x2c, 0x6040);
    EXPECT_NE(load_error(over).find("overlaps"), std::string::npos) << load_error(over);
    // The ELF's entry must be in its loaded bytes.
    auto elf = elf32_image();
    put<std::uint32_t>(elf, 24, kLoad + 0x180);  // in memsz, not filesz
    EXPECT_NE(load_error(elf).find("entry"), std::string::npos) << load_error(elf);
}

}  // namespace
}  // namespace vireo::loader
