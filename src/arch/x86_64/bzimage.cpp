#include "arch/x86_64/bzimage.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/byte_reader.h"

namespace vireo::loader {

namespace {

// Offsets of the fields read before the image is known to hold a whole setup.
constexpr std::uint64_t kSetupSectsAt = 0x1f1;
constexpr std::uint64_t kBootFlagAt = 0x1fe;
constexpr std::uint64_t kJumpDisplacementAt = 0x201;  // header end = 0x202 + this byte
constexpr std::uint64_t kHeaderMagicAt = 0x202;
constexpr std::uint64_t kVersionAt = 0x206;
constexpr std::uint64_t kIdentificationEnd = kVersionAt + 2;
// The header must reach at least the end of init_size (0x260 + 4): the kernel reads
// kernel_alignment, pref_address and init_size back from boot_params.hdr (head_64.S).
constexpr std::uint64_t kMinHeaderEnd = 0x264;
// The smallest setup (setup_sects = 0 means 4) holds the whole setup header.
static_assert(kSetupHeaderOffset + sizeof(SetupHeader) <= (kDefaultSetupSects + 1) * kSectorSize);

// boot.rst "heap_end_ptr": offset from the real-mode code of the end of the setup stack/heap,
// minus 0x200. The 64-bit protocol runs no real-mode code; 0xfe00 describes the conventional full
// 64 KiB setup segment.
constexpr std::uint16_t kHeapEndPtr = 0x10000 - 0x200;

constexpr std::uint64_t k4GiB = 1ULL << 32;

std::uint32_t low32(std::uint64_t v) {
    return static_cast<std::uint32_t>(v);
}
std::uint32_t high32(std::uint64_t v) {
    return static_cast<std::uint32_t>(v >> 32);
}

struct KernelSpan {
    std::uint64_t start;  // min(load address, runtime address)
    std::uint64_t end;    // kernel_end
};

// See bzimage.h: the memory the decompressor uses, from head_64.S's choice of runtime address.
Result<KernelSpan> kernel_span(const BzImageInfo& info, std::uint64_t load) {
    std::uint64_t runtime = info.pref_address;
    if (info.relocatable) {
        std::uint64_t aligned = 0;
        if (!checked_align_up(load, info.kernel_alignment, aligned)) {
            return Error(fmt::format("kernel: load address {:#x} aligned to {:#x} wraps", load,
                                     info.kernel_alignment));
        }
        runtime = std::max(aligned, info.pref_address);
    }
    std::uint64_t load_end = 0;
    std::uint64_t load_init_end = 0;
    std::uint64_t runtime_end = 0;
    if (!checked_add(load, info.kernel_size, load_end) ||
        !checked_add(load, info.init_size, load_init_end) ||
        !checked_add(runtime, info.init_size, runtime_end)) {
        return Error(fmt::format(
            "kernel: init_size {:#x} from load address {:#x} / runtime address {:#x} wraps",
            info.init_size, load, runtime));
    }
    return KernelSpan{std::min(load, runtime), std::max({load_end, load_init_end, runtime_end})};
}

BootParams build_boot_params(std::span<const std::uint8_t> image, const BootConfig& config,
                             std::optional<std::uint64_t> initrd_address) {
    BootParams bp{};  // zero page: all zero, then the setup header, then the loader's fields
    // boot.rst: the setup header ends at 0x202 + the byte at 0x201. Copy up to there, bounded by
    // the file and by hdr's slot in boot_params (0x290, where edd_mbr_sig_buffer starts).
    const std::uint64_t header_end = std::min<std::uint64_t>(
        {kHeaderMagicAt + image[kJumpDisplacementAt], kSetupHeaderSlotEnd, image.size()});
    std::memcpy(reinterpret_cast<std::uint8_t*>(&bp) + kSetupHeaderOffset,
                image.data() + kSetupHeaderOffset, header_end - kSetupHeaderOffset);

    SetupHeader& hdr = bp.hdr;
    hdr.vid_mode = kVidModeNormal;
    hdr.type_of_loader = kLoaderTypeUndefined;
    hdr.ext_loader_ver = 0;
    hdr.ext_loader_type = 0;
    hdr.loadflags = static_cast<std::uint8_t>(hdr.loadflags | kCanUseHeap);  // keeps LOADED_HIGH
    hdr.heap_end_ptr = kHeapEndPtr;
    if (config.kernel_address.value < k4GiB) {
        hdr.code32_start = low32(config.kernel_address.value);  // boot.rst: the load address
    }
    hdr.cmd_line_ptr = low32(config.cmdline_address.value);
    bp.ext_cmd_line_ptr = high32(config.cmdline_address.value);
    if (initrd_address) {
        hdr.ramdisk_image = low32(*initrd_address);
        bp.ext_ramdisk_image = high32(*initrd_address);
        hdr.ramdisk_size = low32(config.initrd.size());
        bp.ext_ramdisk_size = high32(config.initrd.size());
    } else {
        hdr.ramdisk_image = 0;
        hdr.ramdisk_size = 0;
    }
    // Loader-owned fields an untrusted image must not pre-set: no setup_data list, PC subarch.
    hdr.setup_data = 0;
    hdr.hardware_subarch = 0;
    hdr.hardware_subarch_data = 0;
    bp.acpi_rsdp_addr = config.rsdp_address;
    bp.e820_entries = static_cast<std::uint8_t>(config.e820.size());  // <= 128, checked
    for (std::size_t i = 0; i < config.e820.size(); ++i) {
        const auto& e = config.e820[i];
        bp.e820_table[i] = BootE820Entry{e.addr, e.size, static_cast<std::uint32_t>(e.type)};
    }
    return bp;
}

}  // namespace

Result<BzImageInfo> parse_bzimage(std::span<const std::uint8_t> image) {
    const std::uint64_t file_size = image.size();
    if (file_size < kIdentificationEnd) {
        return Error(fmt::format(
            "kernel: not a bzImage (file has {} bytes, too short for the setup header at 0x1f1)",
            file_size));
    }
    if (read_at<std::uint32_t>(image, kHeaderMagicAt) != kHdrSMagic) {
        return Error("kernel: not a bzImage (no HdrS magic at 0x202)");
    }
    const auto boot_flag = read_at<std::uint16_t>(image, kBootFlagAt).value_or(0);
    if (boot_flag != kBootFlagMagic) {
        return Error(fmt::format(
            "kernel: not a bzImage (boot_flag at 0x1fe is {:#06x}, expected 0xaa55)", boot_flag));
    }
    const auto version = read_at<std::uint16_t>(image, kVersionAt).value_or(0);
    if (version < kMinBootProtocol) {
        return Error(fmt::format(
            "kernel: boot protocol {}.{:02} is too old, the 64-bit entry needs 2.12 or later",
            version >> 8, version & 0xff));
    }
    const std::uint32_t sects =
        image[kSetupSectsAt] != 0 ? image[kSetupSectsAt] : kDefaultSetupSects;
    const std::uint32_t setup_size = (sects + 1) * kSectorSize;
    if (setup_size > file_size) {
        return Error(fmt::format("kernel: truncated: setup needs {} bytes, file has {}", setup_size,
                                 file_size));
    }
    // From here the whole setup header is inside the file (static_assert above).
    const auto hdr = read_at<SetupHeader>(image, kSetupHeaderOffset).value();
    const std::uint64_t header_end = kHeaderMagicAt + image[kJumpDisplacementAt];
    if (header_end < kMinHeaderEnd) {
        return Error(fmt::format(
            "kernel: setup header ends at {:#x} (jump at 0x200), before init_size at 0x260",
            header_end));
    }
    if ((hdr.xloadflags & kXlfKernel64) == 0) {
        return Error(
            fmt::format("kernel: no 64-bit entry point (xloadflags {:#x} lacks XLF_KERNEL_64)",
                        +hdr.xloadflags));
    }
    if ((hdr.loadflags & kLoadedHigh) == 0) {
        return Error(
            fmt::format("kernel: not a bzImage (loadflags {:#x} lacks LOADED_HIGH, a zImage?)",
                        +hdr.loadflags));
    }
    const std::uint64_t kernel_size = file_size - setup_size;
    if (kernel_size <= kEntry64Offset) {
        return Error(fmt::format(
            "kernel: truncated: protected-mode kernel is {} bytes, the 64-bit entry is at +0x200",
            kernel_size));
    }
    const bool relocatable = hdr.relocatable_kernel != 0;
    if (relocatable && !std::has_single_bit(hdr.kernel_alignment)) {
        return Error(fmt::format("kernel: kernel_alignment {:#x} is not a power of two",
                                 +hdr.kernel_alignment));
    }
    if (hdr.init_size == 0) {
        return Error("kernel: setup header init_size is 0");
    }
    return BzImageInfo{
        .protocol = version,
        .setup_size = setup_size,
        .kernel_offset = setup_size,
        .kernel_size = kernel_size,
        .init_size = hdr.init_size,
        .kernel_alignment = hdr.kernel_alignment,
        .relocatable = relocatable,
        .pref_address = hdr.pref_address,
        .initrd_addr_max = hdr.initrd_addr_max,
        .cmdline_size = hdr.cmdline_size,
        .xloadflags = hdr.xloadflags,
        .loadflags = hdr.loadflags,
    };
}

Result<LoadedKernel> load_bzimage(GuestMemory& mem, std::span<const std::uint8_t> image,
                                  const BootConfig& config) {
    auto parsed = parse_bzimage(image);
    if (!parsed) {
        return parsed.error();
    }
    const BzImageInfo& info = *parsed;
    if (auto r = validate_e820(config.e820); !r) {
        return r.error();
    }
    if (config.e820.size() > kZeroPageE820Max) {
        return Error(fmt::format("kernel: {} E820 entries, the zero page holds at most {}",
                                 config.e820.size(), kZeroPageE820Max));
    }
    const std::uint64_t cmdline_limit =
        std::min<std::uint64_t>(info.cmdline_size, config.cmdline_max);
    if (auto r = check_cmdline(config.cmdline, cmdline_limit,
                               fmt::format("setup header cmdline_size {}, cmdline_max {}",
                                           info.cmdline_size, config.cmdline_max));
        !r) {
        return r.error();
    }

    auto span = kernel_span(info, config.kernel_address.value);
    if (!span) {
        return span.error();
    }
    if (!is_ram(mem, config.e820, span->start, span->end - span->start)) {
        return Error(fmt::format(
            "kernel: does not fit in RAM: needs [{:#x}, {:#x}) (load address {:#x}, init_size "
            "{:#x}, pref_address {:#x}) inside one E820 RAM entry",
            span->start, span->end, config.kernel_address.value, info.init_size,
            info.pref_address));
    }
    const std::uint64_t cmdline_bytes = config.cmdline.size() + 1;
    if (!mem.contains_range(config.zero_page, sizeof(BootParams))) {
        return Error(fmt::format("kernel: zero page at {:#x} is outside guest memory",
                                 config.zero_page.value));
    }
    if (!mem.contains_range(config.cmdline_address, cmdline_bytes)) {
        return Error(fmt::format("kernel: command line at {:#x} ({} bytes) is outside guest memory",
                                 config.cmdline_address.value, cmdline_bytes));
    }
    const std::array<LayoutRange, 3> fixed = {
        LayoutRange{"the zero page", config.zero_page.value, sizeof(BootParams)},
        LayoutRange{"the command line", config.cmdline_address.value, cmdline_bytes},
        LayoutRange{"the kernel", span->start, span->end - span->start},
    };
    if (auto r = check_disjoint(fixed); !r) {
        return r.error();
    }

    std::optional<std::uint64_t> initrd_address;
    if (!config.initrd.empty()) {
        // boot.rst "initrd_addr_max": the highest address the initrd may occupy; and below 4 GiB
        // (ramdisk_image is 32-bit; ext_ramdisk_image needs kernel support this loader does not
        // assume).
        const std::uint64_t max_end =
            std::min<std::uint64_t>(std::uint64_t{info.initrd_addr_max} + 1, k4GiB);
        initrd_address = find_initrd_slot(mem, config.e820, config.initrd.size(), span->end,
                                          max_end, std::span(fixed.data(), 2));
        if (!initrd_address) {
            return Error(fmt::format(
                "kernel: initrd of {} bytes does not fit below initrd_addr_max {:#x} (in E820 RAM "
                "above the kernel end {:#x})",
                config.initrd.size(), info.initrd_addr_max, span->end));
        }
    }

    // Everything is validated; the writes below stay inside guest memory.
    if (auto r = mem.write(config.kernel_address, image.subspan(info.kernel_offset)); !r) {
        return r.error().wrap("kernel: protected-mode kernel");
    }
    if (initrd_address) {
        if (auto r = mem.write(GuestAddress(*initrd_address), config.initrd); !r) {
            return r.error().wrap("kernel: initrd");
        }
    }
    if (auto r = write_cmdline(mem, config.cmdline_address, config.cmdline); !r) {
        return r.error();
    }
    if (auto r = mem.write_obj(config.zero_page, build_boot_params(image, config, initrd_address));
        !r) {
        return r.error().wrap("kernel: zero page");
    }
    return LoadedKernel{
        .format = KernelFormat::BzImage,
        .entry = config.kernel_address + kEntry64Offset,
        .boot_info = config.zero_page,
        .kernel_end = GuestAddress(span->end),
        .initrd_address =
            initrd_address ? std::optional(GuestAddress(*initrd_address)) : std::nullopt,
    };
}

}  // namespace vireo::loader
