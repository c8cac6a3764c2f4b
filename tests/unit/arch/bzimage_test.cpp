#include "arch/x86_64/bzimage.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_params.h"
#include "test_images.h"

namespace vireo::loader {
namespace {

using test::BzImageSpec;
using test::get;
using test::make_bzimage;
using test::make_memory;
using test::pc_e820;
using test::read_guest;

constexpr std::uint64_t kZeroPage = 0x7000;

BootConfig default_config() {
    BootConfig config;
    config.cmdline = "console=ttyS0 root=/dev/vda";
    config.e820 = pc_e820();
    config.rsdp_address = 0xe0000;
    return config;
}

std::string load_error(GuestMemory& mem, const std::vector<std::uint8_t>& image,
                       const BootConfig& config) {
    auto r = load_bzimage(mem, image, config);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string("<loaded>") : r.error().message();
}

std::string parse_error(std::span<const std::uint8_t> image) {
    auto r = parse_bzimage(image);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string("<parsed>") : r.error().message();
}

template <typename T>
T zero_page_field(const GuestMemory& mem, std::uint64_t offset) {
    auto r = mem.read_obj<T>(GuestAddress(kZeroPage + offset));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : T{};
}

TEST(BzImageParse, ReadsTheSetupHeader) {
    const auto image = make_bzimage();
    auto info = parse_bzimage(image);
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ(info->protocol, 0x020f);
    EXPECT_EQ(info->setup_size, 2560U);
    EXPECT_EQ(info->kernel_offset, 2560U);
    EXPECT_EQ(info->kernel_size, 0x3000U);
    EXPECT_EQ(info->init_size, 0x400000U);
    EXPECT_EQ(info->kernel_alignment, 0x200000U);
    EXPECT_TRUE(info->relocatable);
    EXPECT_EQ(info->pref_address, 0x1000000U);
    EXPECT_EQ(info->initrd_addr_max, 0x7fffffffU);
    EXPECT_EQ(info->cmdline_size, 2047U);
    EXPECT_EQ(info->xloadflags, 0x3);
    EXPECT_EQ(info->loadflags, 0x1);
}

TEST(BzImageParse, SetupSectsZeroMeansFour) {
    auto info = parse_bzimage(make_bzimage({.setup_sects = 0}));
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ(info->setup_size, 5U * 512);
    auto big = parse_bzimage(make_bzimage({.setup_sects = 30}));
    ASSERT_TRUE(big.ok()) << big.error().message();
    EXPECT_EQ(big->setup_size, 31U * 512);
    EXPECT_EQ(big->kernel_size, 0x3000U);
}

TEST(BzImageParse, RejectsEmptyAndTinyFiles) {
    EXPECT_EQ(parse_error({}),
              "kernel: not a bzImage (file has 0 bytes, too short for the setup header at 0x1f1)");
    const auto image = make_bzimage();
    EXPECT_EQ(parse_error(std::span(image).first(0x207)),
              "kernel: not a bzImage (file has 519 bytes, too short for the setup header at "
              "0x1f1)");
}

TEST(BzImageParse, RejectsBadMagicAndBootFlag) {
    auto image = make_bzimage();
    image[0x202] = 'h';
    EXPECT_EQ(parse_error(image), "kernel: not a bzImage (no HdrS magic at 0x202)");
    image = make_bzimage();
    test::put<std::uint16_t>(image, 0x1fe, 0x55aa);
    EXPECT_EQ(parse_error(image),
              "kernel: not a bzImage (boot_flag at 0x1fe is 0x55aa, expected 0xaa55)");
}

TEST(BzImageParse, RejectsOldProtocol) {
    EXPECT_EQ(parse_error(make_bzimage({.version = 0x020b})),
              "kernel: boot protocol 2.11 is too old, the 64-bit entry needs 2.12 or later");
    EXPECT_TRUE(parse_bzimage(make_bzimage({.version = 0x020c})).ok());
}

TEST(BzImageParse, RejectsMissingFlags) {
    EXPECT_EQ(parse_error(make_bzimage({.xloadflags = 0x2})),
              "kernel: no 64-bit entry point (xloadflags 0x2 lacks XLF_KERNEL_64)");
    EXPECT_EQ(parse_error(make_bzimage({.loadflags = 0})),
              "kernel: not a bzImage (loadflags 0x0 lacks LOADED_HIGH, a zImage?)");
}

TEST(BzImageParse, RejectsSetupLargerThanFile) {
    auto image = make_bzimage({.setup_sects = 33});
    image.resize(1000);
    EXPECT_EQ(parse_error(image), "kernel: truncated: setup needs 17408 bytes, file has 1000");
}

TEST(BzImageParse, RejectsInconsistentHeaderFields) {
    EXPECT_EQ(parse_error(make_bzimage({.jump = 0x40})),
              "kernel: setup header ends at 0x242 (jump at 0x200), before init_size at 0x260");
    EXPECT_EQ(parse_error(make_bzimage({.kernel_alignment = 0x30000})),
              "kernel: kernel_alignment 0x30000 is not a power of two");
    EXPECT_TRUE(parse_bzimage(make_bzimage({.kernel_alignment = 0, .relocatable = 0})).ok());
    EXPECT_EQ(parse_error(make_bzimage({.init_size = 0})), "kernel: setup header init_size is 0");
    EXPECT_EQ(parse_error(make_bzimage({.payload_size = 0x200})),
              "kernel: truncated: protected-mode kernel is 512 bytes, the 64-bit entry is at "
              "+0x200");
}

// Every prefix of a valid image parses like the whole (but for kernel_size) or fails cleanly, and
// loading it does the same.
TEST(BzImageParse, EveryPrefixParsesOrFailsCleanly) {
    const auto image = make_bzimage();
    const auto full = parse_bzimage(image);
    ASSERT_TRUE(full.ok());
    auto mem = make_memory();
    const auto config = default_config();
    for (std::size_t len = 0; len <= image.size(); ++len) {
        const auto prefix = std::span(image).first(len);
        auto info = parse_bzimage(prefix);
        auto loaded = load_bzimage(mem, prefix, config);
        ASSERT_EQ(info.ok(), loaded.ok()) << "prefix " << len;
        if (!info.ok()) {
            EXPECT_EQ(info.error().message().rfind("kernel: ", 0), 0U) << info.error().message();
            EXPECT_EQ(info.error().message(), loaded.error().message());
            continue;
        }
        EXPECT_GT(len, full->setup_size + kEntry64Offset);
        EXPECT_EQ(info->kernel_size, len - full->setup_size);
        EXPECT_EQ(info->setup_size, full->setup_size);
        EXPECT_EQ(info->init_size, full->init_size);
        EXPECT_EQ(info->protocol, full->protocol);
        EXPECT_EQ(info->cmdline_size, full->cmdline_size);
        EXPECT_EQ(info->initrd_addr_max, full->initrd_addr_max);
        EXPECT_EQ(info->pref_address, full->pref_address);
    }
}

// Random corruption of the boot sector tail and the setup header must never crash (ASan runs this
// suite) and must either parse or give a "kernel: " error.
TEST(BzImageParse, RandomHeaderCorruptionNeverCrashes) {
    const auto valid = make_bzimage();
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x2000);
    config.initrd = initrd;
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<std::size_t> offset(0x1e0, 0x27f);
    std::uniform_int_distribution<int> count(1, 6);
    std::uniform_int_distribution<int> byte(0, 255);
    int parsed = 0;
    for (int iter = 0; iter < 5000; ++iter) {
        auto image = valid;
        for (int n = count(rng); n > 0; --n) {
            image[offset(rng)] = static_cast<std::uint8_t>(byte(rng));
        }
        auto info = parse_bzimage(image);
        auto loaded = load_bzimage(mem, image, config);
        if (info.ok()) {
            ++parsed;
        } else {
            ASSERT_EQ(info.error().message().rfind("kernel: ", 0), 0U);
            ASSERT_FALSE(loaded.ok());
        }
        if (!loaded.ok()) {
            ASSERT_EQ(loaded.error().message().rfind("kernel: ", 0), 0U);
        }
    }
    EXPECT_GT(parsed, 0);
}

TEST(BzImageLoad, CopiesTheProtectedModeKernel) {
    const auto image = make_bzimage();
    auto mem = make_memory();
    auto loaded = load_bzimage(mem, image, default_config());
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(loaded->format, KernelFormat::BzImage);
    EXPECT_EQ(loaded->entry, GuestAddress(0x100200));
    EXPECT_EQ(loaded->boot_info, GuestAddress(kZeroPage));
    // Relocatable, 2 MiB aligned, pref_address 16 MiB: decompresses at 16 MiB, needs init_size.
    EXPECT_EQ(loaded->kernel_end, GuestAddress(0x1000000 + 0x400000));
    EXPECT_FALSE(loaded->initrd_address.has_value());
    EXPECT_EQ(read_guest(mem, 0x100000, 0x3000), test::pattern(0x3000));
    // Nothing of the setup lands in guest memory at the load address's neighbourhood.
    EXPECT_EQ(read_guest(mem, 0x103000, 16), std::vector<std::uint8_t>(16, 0));
}

TEST(BzImageLoad, KernelEndFollowsTheRuntimeAddress) {
    auto mem = make_memory();
    auto config = default_config();
    config.kernel_address = GuestAddress(32 * MiB + 0x1000);
    auto relocatable = load_bzimage(mem, make_bzimage(), config);
    ASSERT_TRUE(relocatable.ok()) << relocatable.error().message();
    EXPECT_EQ(relocatable->kernel_end, GuestAddress(34 * MiB + 0x400000));
    EXPECT_EQ(relocatable->entry, GuestAddress(32 * MiB + 0x1200));
    // A non-relocatable kernel runs at pref_address (16 MiB) whatever the load address.
    config.kernel_address = GuestAddress(0x100000);
    auto fixed =
        load_bzimage(mem, make_bzimage({.relocatable = 0, .pref_address = 0x2000000}), config);
    ASSERT_TRUE(fixed.ok()) << fixed.error().message();
    EXPECT_EQ(fixed->kernel_end, GuestAddress(0x2000000 + 0x400000));
}

TEST(BootParams, FieldsAtTheirOffsets) {
    const auto image = make_bzimage();
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x12345, 99);
    config.initrd = initrd;
    auto loaded = load_bzimage(mem, image, config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    const std::uint64_t initrd_at = loaded->initrd_address->value;

    EXPECT_EQ(zero_page_field<std::uint64_t>(mem, 0x070), 0xe0000U);   // acpi_rsdp_addr
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x0c0), 0U);         // ext_ramdisk_image
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x0c4), 0U);         // ext_ramdisk_size
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x0c8), 0U);         // ext_cmd_line_ptr
    EXPECT_EQ(zero_page_field<std::uint8_t>(mem, 0x1ef), 0U);          // sentinel
    EXPECT_EQ(zero_page_field<std::uint16_t>(mem, 0x1fa), 0xffff);     // vid_mode normal
    EXPECT_EQ(zero_page_field<std::uint8_t>(mem, 0x210), 0xff);        // type_of_loader
    EXPECT_EQ(zero_page_field<std::uint8_t>(mem, 0x211), 0x81);        // LOADED_HIGH | CAN_USE_HEAP
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x214), 0x100000U);  // code32_start
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x218), initrd_at);  // ramdisk_image
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x21c), 0x12345U);   // ramdisk_size
    EXPECT_EQ(zero_page_field<std::uint16_t>(mem, 0x224), 0xfe00);     // heap_end_ptr
    EXPECT_EQ(zero_page_field<std::uint32_t>(mem, 0x228), 0x20000U);   // cmd_line_ptr
    EXPECT_EQ(zero_page_field<std::uint64_t>(mem, 0x250), 0U);         // setup_data cleared

    // The rest of the header is the image's: bytes 0x1f1 .. 0x202 + image[0x201] = 0x26c.
    const auto page = read_guest(mem, kZeroPage, 4096);
    for (std::size_t off : {0x1f1, 0x1f2, 0x1f3, 0x1fe, 0x1ff, 0x200, 0x201, 0x202, 0x206, 0x207,
                            0x20e, 0x22c, 0x230, 0x234, 0x236, 0x238, 0x258, 0x260, 0x264, 0x26b}) {
        EXPECT_EQ(page[off], image[off]) << "offset 0x" << std::hex << off;
    }
    EXPECT_EQ(get<std::uint32_t>(page, 0x202), 0x53726448U);
    EXPECT_EQ(get<std::uint32_t>(page, 0x260), 0x400000U);
    // Nothing past the header end is copied from the image.
    EXPECT_EQ(page[0x26c], 0);
    for (std::size_t off = 0; off < 0x1e8; ++off) {
        if (off < 0x070 || off >= 0x078) {
            ASSERT_EQ(page[off], 0) << "offset 0x" << std::hex << off;
        }
    }
}

TEST(BootParams, HeaderCopyIsBoundedByItsSlot) {
    auto image = make_bzimage({.jump = 0xff});  // claims a header up to 0x301
    auto mem = make_memory();
    ASSERT_TRUE(load_bzimage(mem, image, default_config()).ok());
    const auto page = read_guest(mem, kZeroPage, 4096);
    EXPECT_EQ(page[0x28f], 0x90);  // pad after hdr: copied
    EXPECT_EQ(page[0x290], 0);     // edd_mbr_sig_buffer: not
}

TEST(BootParams, CommandLineIsWrittenWithNul) {
    auto mem = make_memory();
    auto config = default_config();
    // Pre-fill so the NUL is visible.
    ASSERT_TRUE(mem.write(GuestAddress(0x20000), std::vector<std::uint8_t>(64, 0xcc)).ok());
    ASSERT_TRUE(load_bzimage(mem, make_bzimage(), config).ok());
    const auto bytes = read_guest(mem, 0x20000, config.cmdline.size() + 1);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end() - 1), config.cmdline);
    EXPECT_EQ(bytes.back(), 0);
}

TEST(BootParams, CommandLineAboveFourGiBUsesExtPointer) {
    const MemoryRegionSpec specs[] = {{GuestAddress(0), 64 * MiB},
                                      {GuestAddress(0x100000000), 0x10000}};
    auto mem = GuestMemory::create(specs);
    ASSERT_TRUE(mem.ok());
    auto config = default_config();
    config.cmdline_address = GuestAddress(0x100000800);
    ASSERT_TRUE(load_bzimage(*mem, make_bzimage(), config).ok());
    EXPECT_EQ(*mem->read_obj<std::uint32_t>(GuestAddress(kZeroPage + 0x228)), 0x800U);
    EXPECT_EQ(*mem->read_obj<std::uint32_t>(GuestAddress(kZeroPage + 0x0c8)), 1U);
}

TEST(BootParams, CommandLineLimits) {
    auto mem = make_memory();
    auto config = default_config();
    config.cmdline = std::string(2047, 'x');
    EXPECT_TRUE(load_bzimage(mem, make_bzimage(), config).ok());
    config.cmdline.push_back('y');
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: command line is 2048 bytes, longer than the limit of 2047 (setup header "
              "cmdline_size 2047, cmdline_max 65535)");
    config.cmdline = std::string(100, 'x');
    config.cmdline_max = 99;
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: command line is 100 bytes, longer than the limit of 99 (setup header "
              "cmdline_size 2047, cmdline_max 99)");
    config.cmdline_max = 0xffff;
    config.cmdline = std::string("a\0b", 3);
    EXPECT_EQ(load_error(mem, make_bzimage(), config), "kernel: command line contains a NUL byte");
}

TEST(E820, TableAndCountInTheZeroPage) {
    auto mem = make_memory();
    auto config = default_config();
    ASSERT_TRUE(load_bzimage(mem, make_bzimage(), config).ok());
    EXPECT_EQ(zero_page_field<std::uint8_t>(mem, 0x1e8), 4);
    for (std::size_t i = 0; i < config.e820.size(); ++i) {
        const std::uint64_t at = 0x2d0 + i * 20;
        EXPECT_EQ(zero_page_field<std::uint64_t>(mem, at), config.e820[i].addr);
        EXPECT_EQ(zero_page_field<std::uint64_t>(mem, at + 8), config.e820[i].size);
        EXPECT_EQ(zero_page_field<std::uint32_t>(mem, at + 16),
                  static_cast<std::uint32_t>(config.e820[i].type));
    }
    EXPECT_EQ(zero_page_field<std::uint64_t>(mem, 0x2d0 + 4 * 20), 0U);
}

TEST(E820, RejectsBadMaps) {
    auto mem = make_memory();
    auto config = default_config();
    config.e820.clear();
    EXPECT_EQ(load_error(mem, make_bzimage(), config), "kernel: no E820 memory map given");
    config.e820 = pc_e820();
    config.e820.push_back({0xfffffffffffff000, 0x2000, E820Type::Reserved});
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: E820 entry 4 (0xfffffffffffff000 + 0x2000) wraps past 2^64");
    config.e820 = pc_e820();
    while (config.e820.size() < 129) {
        config.e820.push_back(
            {0x100000000 + config.e820.size() * 0x1000, 0x1000, E820Type::Reserved});
    }
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: 129 E820 entries, the zero page holds at most 128");
    config.e820.pop_back();
    EXPECT_TRUE(load_bzimage(mem, make_bzimage(), config).ok());
    EXPECT_EQ(zero_page_field<std::uint8_t>(mem, 0x1e8), 128);
}

TEST(BzImageLoad, InitrdGoesPageAlignedToTheTopOfRam) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x12345, 5);
    config.initrd = initrd;
    auto loaded = load_bzimage(mem, make_bzimage(), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_TRUE(loaded->initrd_address.has_value());
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(0x4000000 - 0x13000));
    EXPECT_EQ(read_guest(mem, loaded->initrd_address->value, initrd.size()), initrd);
}

TEST(BzImageLoad, InitrdRespectsInitrdAddrMax) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = test::pattern(0x12345);
    config.initrd = initrd;
    auto loaded = load_bzimage(mem, make_bzimage({.initrd_addr_max = 0x2ffffff}), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(0x3000000 - 0x13000));
}

TEST(BzImageLoad, InitrdNeverBelowKernelEnd) {
    auto mem = make_memory();
    auto config = default_config();
    // kernel_end is 20 MiB; initrd_addr_max leaves exactly 4 MiB above it.
    const auto spec = BzImageSpec{.initrd_addr_max = 24 * MiB - 1};
    const auto fits = std::vector<std::uint8_t>(4 * MiB, 0x5a);
    config.initrd = fits;
    auto loaded = load_bzimage(mem, make_bzimage(spec), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(20 * MiB));
    EXPECT_EQ(*loaded->initrd_address, loaded->kernel_end);
    const auto too_big = std::vector<std::uint8_t>(4 * MiB + 1, 0x5a);
    config.initrd = too_big;
    EXPECT_EQ(load_error(mem, make_bzimage(spec), config),
              "kernel: initrd of 4194305 bytes does not fit below initrd_addr_max 0x17fffff (in "
              "E820 RAM above the kernel end 0x1400000)");
}

TEST(BzImageLoad, InitrdAvoidsCommandLineAndZeroPage) {
    auto mem = make_memory();
    auto config = default_config();
    config.cmdline_address = GuestAddress(64 * MiB - 0x1000);
    config.zero_page = GuestAddress(64 * MiB - 0x3000);
    const auto initrd = test::pattern(0x1800);
    config.initrd = initrd;
    auto loaded = load_bzimage(mem, make_bzimage(), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    // [top-0x2000, top-0x1000) is free but 0x1800 bytes need two pages; below the zero page.
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(64 * MiB - 0x3000 - 0x2000));
}

TEST(BzImageLoad, InitrdStaysInOneRamEntry) {
    auto mem = make_memory();
    auto config = default_config();
    config.e820 = {{0, 0x9fc00, E820Type::Ram},
                   {0x100000, 31 * MiB, E820Type::Ram},
                   {32 * MiB, 1 * MiB, E820Type::Reserved},
                   {33 * MiB, 31 * MiB, E820Type::Ram}};
    const auto initrd = std::vector<std::uint8_t>(10 * MiB, 1);
    config.initrd = initrd;
    // Below 40 MiB the upper entry has only 7 MiB; the lower one ends at 32 MiB.
    auto loaded = load_bzimage(mem, make_bzimage({.initrd_addr_max = 40 * MiB - 1}), config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_EQ(*loaded->initrd_address, GuestAddress(22 * MiB));
}

TEST(BzImageLoad, InitrdTooBig) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = std::vector<std::uint8_t>(60 * MiB, 1);
    config.initrd = initrd;
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: initrd of 62914560 bytes does not fit below initrd_addr_max 0x7fffffff (in "
              "E820 RAM above the kernel end 0x1400000)");
}

TEST(BzImageLoad, KernelMustFitInRam) {
    auto mem = make_memory(16 * MiB);
    auto config = default_config();
    config.e820 = pc_e820(16 * MiB);
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: does not fit in RAM: needs [0x100000, 0x1400000) (load address 0x100000, "
              "init_size 0x400000, pref_address 0x1000000) inside one E820 RAM entry");
    // Guest memory is there but the E820 map calls part of it reserved.
    auto big = make_memory();
    config.e820 = pc_e820();
    config.e820[3].size = 8 * MiB;
    EXPECT_FALSE(load_bzimage(big, make_bzimage(), config).ok());
    // init_size large enough to wrap.
    config.e820 = pc_e820();
    config.kernel_address = GuestAddress(0xffffffffffff0000);
    EXPECT_FALSE(load_bzimage(big, make_bzimage(), config).ok());
}

TEST(BzImageLoad, RejectsOverlappingLayout) {
    auto mem = make_memory();
    auto config = default_config();
    config.cmdline_address = GuestAddress(0x7800);
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: the zero page [0x7000, 0x8000) overlaps the command line [0x7800, 0x781c)");
    config = default_config();
    config.zero_page = GuestAddress(0x200000);
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: the zero page [0x200000, 0x201000) overlaps the kernel [0x100000, "
              "0x1400000)");
    config = default_config();
    config.zero_page = GuestAddress(64 * MiB);
    EXPECT_EQ(load_error(mem, make_bzimage(), config),
              "kernel: zero page at 0x4000000 is outside guest memory");
}

TEST(BzImageLoad, FailedLoadWritesNothing) {
    auto mem = make_memory();
    auto config = default_config();
    const auto initrd = std::vector<std::uint8_t>(60 * MiB, 1);
    config.initrd = initrd;
    ASSERT_FALSE(load_bzimage(mem, make_bzimage(), config).ok());
    EXPECT_EQ(read_guest(mem, 0x100000, 64), std::vector<std::uint8_t>(64, 0));
    EXPECT_EQ(read_guest(mem, kZeroPage + 0x1f0, 64), std::vector<std::uint8_t>(64, 0));
    EXPECT_EQ(read_guest(mem, 0x20000, 64), std::vector<std::uint8_t>(64, 0));
}

}  // namespace
}  // namespace vireo::loader
