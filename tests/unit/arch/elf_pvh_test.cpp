#include "arch/x86_64/elf_pvh.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "arch/x86_64/elf_image.h"
#include "arch/x86_64/hvm_start_info.h"
#include "test_images.h"

namespace vireo::loader {
namespace {

using test::ElfSpec;
using test::kSegmentAt;
using test::kXenNoteAt;
using test::make_elf;
using test::make_memory;
using test::pc_e820;
using test::phdr_at;
using test::put;
using test::read_guest;

constexpr std::uint64_t kStartInfo = 0x6000;

BootConfig default_config() {
    BootConfig config;
    config.cmdline = "console=hvc0";
    config.e820 = pc_e820();
    config.rsdp_address = 0xe0000;
    return config;
}

std::string parse_error(std::span<const std::uint8_t> image) {
    auto r = ElfImage::parse(image);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string("<parsed>") : r.error().message();
}

std::string load_error(GuestMemory& mem, const std::vector<std::uint8_t>& image,
                       const BootConfig& config) {
    auto r = load_elf_pvh(mem, image, config);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string("<loaded>") : r.error().message();
}

TEST(ElfParse, FindsSegmentsAndTheEntryNote) {
    auto elf = ElfImage::parse(make_elf());
    ASSERT_TRUE(elf.ok()) << elf.error().message();
    ASSERT_EQ(elf->load_segments().size(), 1U);
    EXPECT_EQ(elf->load_segments()[0].paddr, 0x1000000U);
    EXPECT_EQ(elf->load_segments()[0].file_offset, kSegmentAt);
    EXPECT_EQ(elf->load_segments()[0].filesz, 0x1000U);
    EXPECT_EQ(elf->load_segments()[0].memsz, 0x3000U);
    EXPECT_EQ(elf->pvh_entry(), 0x1000040U);
    auto four = ElfImage::parse(make_elf({.entry = 0x1000080, .entry_descsz = 4}));
    ASSERT_TRUE(four.ok()) << four.error().message();
    EXPECT_EQ(four->pvh_entry(), 0x1000080U);
}

TEST(ElfParse, RejectsBadHeaders) {
    EXPECT_EQ(parse_error({}), "kernel: truncated: ELF header needs 64 bytes, file has 0");
    auto image = make_elf();
    image[4] = 1;
    EXPECT_EQ(parse_error(image), "kernel: ELF is not 64-bit (EI_CLASS 1)");
    image = make_elf();
    image[5] = 2;
    EXPECT_EQ(parse_error(image), "kernel: ELF is not little-endian (EI_DATA 2)");
    image = make_elf();
    put<std::uint16_t>(image, 16, 3);  // ET_DYN
    EXPECT_EQ(parse_error(image), "kernel: ELF type 3 is not ET_EXEC (2)");
    image = make_elf();
    put<std::uint16_t>(image, 18, 183);  // EM_AARCH64
    EXPECT_EQ(parse_error(image), "kernel: ELF machine 183 is not x86-64 (62)");
    image = make_elf();
    put<std::uint16_t>(image, 54, 32);
    EXPECT_EQ(parse_error(image), "kernel: ELF e_phentsize 32 is not 56");
    image = make_elf();
    put<std::uint16_t>(image, 56, 0);
    EXPECT_EQ(parse_error(image), "kernel: ELF has no program headers");
}

TEST(ElfParse, RejectsTruncatedProgramHeaders) {
    auto image = make_elf();
    put<std::uint16_t>(image, 56, 200);  // e_phnum
    EXPECT_EQ(parse_error(image),
              "kernel: truncated: 200 program headers at offset 0x40 run past the 4608-byte file");
    image = make_elf();
    put<std::uint64_t>(image, 32, ~0ULL - 8);  // e_phoff wraps
    EXPECT_EQ(parse_error(image).rfind("kernel: truncated: 2 program headers", 0), 0U);
}

TEST(ElfParse, RejectsSegmentsOutsideTheFile) {
    auto image = make_elf();
    put<std::uint64_t>(image, phdr_at(0) + 8, 0x1000);  // p_offset: 0x1000 + 0x1000 > 0x1200
    EXPECT_EQ(parse_error(image),
              "kernel: PT_LOAD segment 0 (offset 0x1000, size 0x1000) lies outside the 4608-byte "
              "file");
    put<std::uint64_t>(image, phdr_at(0) + 8, ~0ULL - 0x10);  // offset + filesz wraps
    EXPECT_FALSE(ElfImage::parse(image).ok());
    image = make_elf();
    put<std::uint64_t>(image, phdr_at(0) + 32, 0x4000);  // p_filesz > p_memsz
    EXPECT_EQ(parse_error(image), "kernel: PT_LOAD segment 0: p_filesz 0x4000 > p_memsz 0x3000");
    image = make_elf();
    put<std::uint64_t>(image, phdr_at(0) + 24, ~0ULL - 0x100);  // p_paddr + p_memsz wraps
    EXPECT_EQ(parse_error(image).find("wraps past 2^64") != std::string::npos, true);
    image = make_elf();
    put<std::uint64_t>(image, phdr_at(1) + 8, 0x11f0);  // PT_NOTE ends past the file
    EXPECT_EQ(parse_error(image).rfind(
                  "kernel: PT_NOTE segment 1 (offset 0x11f0, size 0x30) lies outside", 0),
              0U);
}

TEST(ElfParse, RequiresThePvhNote) {
    EXPECT_EQ(parse_error(make_elf({.xen_note = false})),
              "kernel: ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
    auto image = make_elf();
    image[kXenNoteAt + 12] = 'x';  // "xen": some other vendor's type 18
    EXPECT_EQ(parse_error(image), "kernel: ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
    image = make_elf();
    put<std::uint32_t>(image, phdr_at(1), 0);  // PT_NULL instead of PT_NOTE
    EXPECT_EQ(parse_error(image), "kernel: ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
}

TEST(ElfParse, RejectsBogusNoteSizes) {
    auto image = make_elf();
    put<std::uint32_t>(image, kXenNoteAt, 0xfffffff0);  // namesz
    EXPECT_EQ(parse_error(image),
              "kernel: malformed ELF note at file offset 0x118: namesz 0xfffffff0 / descsz 0x8 "
              "run past the end of PT_NOTE segment 1");
    image = make_elf();
    put<std::uint32_t>(image, kXenNoteAt + 4, 0xffffffff);  // descsz
    EXPECT_EQ(parse_error(image).rfind("kernel: malformed ELF note at file offset 0x118", 0), 0U);
    image = make_elf();
    put<std::uint32_t>(image, test::kNotesAt, 0x40);  // the first note's namesz
    EXPECT_EQ(parse_error(image).rfind("kernel: malformed ELF note at file offset 0x100", 0), 0U);
    EXPECT_EQ(parse_error(make_elf({.entry_descsz = 2})),
              "kernel: PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has descsz 2, expected 4 or 8");
}

TEST(ElfParse, RejectsBadEntries) {
    EXPECT_EQ(parse_error(make_elf({.entry = 0x2000000})),
              "kernel: PVH entry 0x2000000 is not inside any PT_LOAD segment");
    EXPECT_EQ(parse_error(make_elf({.entry = 0x1001000})),  // in the zero-filled part
              "kernel: PVH entry 0x1001000 is not inside any PT_LOAD segment");
    EXPECT_EQ(parse_error(make_elf({.paddr = 0x100000000, .entry = 0x100000040})),
              "kernel: PVH entry 0x100000040 is above 4 GiB (it is entered in 32-bit mode)");
}

TEST(ElfParse, EveryPrefixFailsCleanly) {
    const auto image = make_elf();
    for (std::size_t len = 0; len < image.size(); ++len) {
        auto r = ElfImage::parse(std::span(image).first(len));
        ASSERT_FALSE(r.ok()) << "prefix " << len;
        EXPECT_EQ(r.error().message().rfind("kernel: ", 0), 0U) << r.error().message();
    }
    EXPECT_TRUE(ElfImage::parse(image).ok());
}

TEST(ElfParse, RandomCorruptionNeverCrashes) {
    const auto valid = make_elf();
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x2000);
    config.initrd = initrd;
    std::mt19937 rng(1234567);
    std::uniform_int_distribution<std::size_t> offset(0, kSegmentAt - 1);
    std::uniform_int_distribution<int> count(1, 6);
    std::uniform_int_distribution<int> byte(0, 255);
    int loaded_ok = 0;
    for (int iter = 0; iter < 5000; ++iter) {
        auto image = valid;
        for (int n = count(rng); n > 0; --n) {
            image[offset(rng)] = static_cast<std::uint8_t>(byte(rng));
        }
        auto r = load_elf_pvh(mem, image, config);
        if (r.ok()) {
            ++loaded_ok;
        } else {
            ASSERT_EQ(r.error().message().rfind("kernel: ", 0), 0U) << r.error().message();
        }
    }
    EXPECT_GT(loaded_ok, 0);
}

TEST(PvhLoad, CopiesSegmentsAndZeroFills) {
    auto mem = make_memory();
    // Garbage where the .bss goes, so the zero fill shows.
    ASSERT_TRUE(mem.write(GuestAddress(0x1000000), std::vector<std::uint8_t>(0x4000, 0xcc)).ok());
    auto loaded = load_elf_pvh(mem, make_elf(), default_config());
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(loaded->format, KernelFormat::ElfPvh);
    EXPECT_EQ(loaded->entry, GuestAddress(0x1000040));
    EXPECT_EQ(loaded->boot_info, GuestAddress(kStartInfo));
    EXPECT_EQ(loaded->kernel_end, GuestAddress(0x1003000));
    EXPECT_FALSE(loaded->initrd_address.has_value());
    EXPECT_EQ(read_guest(mem, 0x1000000, 0x1000), test::pattern(0x1000));
    EXPECT_EQ(read_guest(mem, 0x1001000, 0x2000), std::vector<std::uint8_t>(0x2000, 0));
    EXPECT_EQ(read_guest(mem, 0x1003000, 0x1000), std::vector<std::uint8_t>(0x1000, 0xcc));
}

TEST(PvhLoad, StartInfoMemmapAndModlist) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x12345, 3);
    config.initrd = initrd;
    auto loaded = load_elf_pvh(mem, make_elf(), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_TRUE(loaded->initrd_address.has_value());
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(0x4000000 - 0x13000));
    EXPECT_EQ(read_guest(mem, loaded->initrd_address->value, initrd.size()), initrd);

    const auto info = *mem.read_obj<HvmStartInfo>(GuestAddress(kStartInfo));
    EXPECT_EQ(info.magic, 0x336ec578U);
    EXPECT_EQ(info.version, 1U);
    EXPECT_EQ(info.flags, 0U);
    EXPECT_EQ(info.nr_modules, 1U);
    EXPECT_EQ(info.modlist_paddr, kStartInfo + 0x40);
    EXPECT_EQ(info.cmdline_paddr, 0x20000U);
    EXPECT_EQ(info.rsdp_paddr, 0xe0000U);
    EXPECT_EQ(info.memmap_paddr, kStartInfo + 0x60);
    EXPECT_EQ(info.memmap_entries, 4U);
    EXPECT_EQ(info.reserved, 0U);
    // The same fields at their ABI offsets.
    EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress(kStartInfo)), 0x336ec578U);
    EXPECT_EQ(*mem.read_obj<std::uint64_t>(GuestAddress(kStartInfo + 24)), 0x20000U);
    EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress(kStartInfo + 48)), 4U);

    const auto mod = *mem.read_obj<HvmModlistEntry>(GuestAddress(info.modlist_paddr));
    EXPECT_EQ(mod.paddr, loaded->initrd_address->value);
    EXPECT_EQ(mod.size, initrd.size());
    EXPECT_EQ(mod.cmdline_paddr, 0U);
    EXPECT_EQ(mod.reserved, 0U);
    for (std::size_t i = 0; i < config.e820.size(); ++i) {
        const auto e = *mem.read_obj<HvmMemmapTableEntry>(GuestAddress(info.memmap_paddr + i * 24));
        EXPECT_EQ(e.addr, config.e820[i].addr);
        EXPECT_EQ(e.size, config.e820[i].size);
        EXPECT_EQ(e.type, static_cast<std::uint32_t>(config.e820[i].type));
        EXPECT_EQ(e.reserved, 0U);
    }
    const auto cmdline = read_guest(mem, 0x20000, config.cmdline.size() + 1);
    EXPECT_EQ(std::string(cmdline.begin(), cmdline.end() - 1), config.cmdline);
    EXPECT_EQ(cmdline.back(), 0);
}

TEST(PvhLoad, NoInitrdMeansNoModules) {
    auto mem = make_memory();
    ASSERT_TRUE(mem.write(GuestAddress(kStartInfo), std::vector<std::uint8_t>(0x100, 0xee)).ok());
    ASSERT_TRUE(load_elf_pvh(mem, make_elf(), default_config()).ok());
    const auto info = *mem.read_obj<HvmStartInfo>(GuestAddress(kStartInfo));
    EXPECT_EQ(info.nr_modules, 0U);
    EXPECT_EQ(info.modlist_paddr, 0U);
    EXPECT_EQ(read_guest(mem, kStartInfo + 0x38, 0x28), std::vector<std::uint8_t>(0x28, 0));
}

TEST(PvhLoad, InitrdStaysAboveTheKernel) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = std::vector<std::uint8_t>(48 * MiB, 7);  // 16 MiB + 12 KiB kernel end
    config.initrd = initrd;
    EXPECT_EQ(load_error(mem, make_elf(), config),
              "kernel: initrd of 50331648 bytes does not fit below 4 GiB (in E820 RAM above the "
              "kernel end 0x1003000)");
    const auto fits = std::vector<std::uint8_t>(47 * MiB, 7);
    config.initrd = fits;
    auto loaded = load_elf_pvh(mem, make_elf(), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(17 * MiB));
}

TEST(PvhLoad, RejectsSegmentsOutsideGuestMemory) {
    auto mem = make_memory();
    EXPECT_EQ(load_error(mem, make_elf({.paddr = 100 * MiB, .entry = 100 * MiB}), default_config()),
              "kernel: PT_LOAD segment [0x6400000, 0x6403000) is outside guest memory");
    // memsz reaching past the end of RAM.
    EXPECT_EQ(load_error(mem, make_elf({.paddr = 64 * MiB - 0x2000, .entry = 64 * MiB - 0x2000}),
                         default_config()),
              "kernel: PT_LOAD segment [0x3ffe000, 0x4001000) is outside guest memory");
}

TEST(PvhLoad, RejectsBadLayouts) {
    auto mem = make_memory();
    auto config = default_config();
    EXPECT_EQ(load_error(mem, make_elf({.paddr = 0x20000, .entry = 0x20000}), config),
              "kernel: the command line [0x20000, 0x2000d) overlaps a kernel segment [0x20000, "
              "0x23000)");
    config.pvh_start_info = GuestAddress(64 * MiB - 0x10);
    EXPECT_EQ(
        load_error(mem, make_elf(), config),
        "kernel: PVH start info at 0x3fffff0 (192 bytes) is outside guest memory below 4 GiB");
    config = default_config();
    config.cmdline = std::string(20, 'x');
    config.cmdline_max = 19;
    EXPECT_EQ(load_error(mem, make_elf(), config),
              "kernel: command line is 20 bytes, longer than the limit of 19 (cmdline_max)");
    config = default_config();
    config.e820.clear();
    EXPECT_EQ(load_error(mem, make_elf(), config), "kernel: no E820 memory map given");
    config = default_config();
    while (config.e820.size() <= kPvhMaxMemmapEntries) {
        config.e820.push_back(
            {0x100000000 + config.e820.size() * 0x1000, 0x1000, E820Type::Reserved});
    }
    EXPECT_EQ(load_error(mem, make_elf(), config),
              "kernel: 167 E820 entries, the PVH start-info page holds at most 166");
}

TEST(PvhLoad, FailedLoadWritesNothing) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = std::vector<std::uint8_t>(60 * MiB, 1);
    config.initrd = initrd;
    ASSERT_FALSE(load_elf_pvh(mem, make_elf(), config).ok());
    EXPECT_EQ(read_guest(mem, 0x1000000, 64), std::vector<std::uint8_t>(64, 0));
    EXPECT_EQ(read_guest(mem, kStartInfo, 64), std::vector<std::uint8_t>(64, 0));
}

}  // namespace
}  // namespace vireo::loader
