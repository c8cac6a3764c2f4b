#include "arch/x86_64/multiboot.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/byte_reader.h"
#include "arch/x86_64/elf64.h"
#include "arch/x86_64/elf_image.h"

namespace vireo::loader {

namespace {

constexpr std::uint64_t k4GiB = 1ULL << 32;
constexpr std::uint64_t k1MiB = 1ULL << 20;
// Requirement bits (0-15) vireo meets; any other requirement refuses the image.
constexpr std::uint32_t kMetRequirements = kMbPageAlignModules | kMbMemoryInfo;

// struct multiboot_info up to and including the VBE fields (spec §3.3).
struct MultibootInfo {
    std::uint32_t flags;
    std::uint32_t mem_lower;  // KiB of memory from 0, at most 640
    std::uint32_t mem_upper;  // KiB of memory from 1 MiB up to the first hole
    std::uint32_t boot_device;
    std::uint32_t cmdline;
    std::uint32_t mods_count;
    std::uint32_t mods_addr;
    std::uint32_t syms[4];
    std::uint32_t mmap_length;  // bytes
    std::uint32_t mmap_addr;
    std::uint32_t drives_length;
    std::uint32_t drives_addr;
    std::uint32_t config_table;
    std::uint32_t boot_loader_name;
    std::uint32_t apm_table;
    std::uint32_t vbe_control_info;
    std::uint32_t vbe_mode_info;
    std::uint16_t vbe_mode;
    std::uint16_t vbe_interface_seg;
    std::uint16_t vbe_interface_off;
    std::uint16_t vbe_interface_len;
};
static_assert(sizeof(MultibootInfo) == 88);
static_assert(offsetof(MultibootInfo, mmap_length) == 44);
static_assert(offsetof(MultibootInfo, boot_loader_name) == 64);
static_assert(sizeof(MultibootInfo) <= kMbModsOffset);

struct MultibootModule {
    std::uint32_t mod_start;
    std::uint32_t mod_end;
    std::uint32_t string;
    std::uint32_t reserved;
};
static_assert(kMbModsOffset + sizeof(MultibootModule) <= kMbStringsOffset);

// A memory map entry; `size` counts the bytes after itself (20), as the spec's layout has it.
#pragma pack(push, 1)
struct MultibootMmapEntry {
    std::uint32_t size;
    std::uint64_t base_addr;
    std::uint64_t length;
    std::uint32_t type;
};
#pragma pack(pop)
static_assert(sizeof(MultibootMmapEntry) == 24);

constexpr char kModuleString[] = "initrd";
constexpr char kLoaderName[] = "vireo";
static_assert(sizeof(kModuleString) + sizeof(kLoaderName) <= kMbMmapOffset - kMbStringsOffset);

struct Segment {
    std::uint64_t file_offset;
    std::uint64_t paddr;
    std::uint64_t filesz;
    std::uint64_t memsz;
};

struct Layout {
    std::vector<Segment> segments;
    std::uint64_t entry = 0;
};

// Flags bit 16: the header's addresses say what to load from where.
Result<Layout> aout_layout(std::span<const std::uint8_t> image, std::size_t header_at,
                           const MultibootHeader& h) {
    if (h.header_addr < h.load_addr || h.header_addr - h.load_addr > header_at) {
        return Error(fmt::format(
            "kernel: multiboot header_addr {:#x} and load_addr {:#x} do not fit the header at "
            "file offset {:#x}",
            h.header_addr, h.load_addr, header_at));
    }
    const std::uint64_t file_offset = header_at - (h.header_addr - h.load_addr);
    std::uint64_t filesz = image.size() - file_offset;
    if (h.load_end_addr != 0) {
        if (h.load_end_addr < h.load_addr || h.load_end_addr - h.load_addr > filesz) {
            return Error(fmt::format(
                "kernel: multiboot load_end_addr {:#x} is before load_addr {:#x} or past the "
                "{}-byte file",
                h.load_end_addr, h.load_addr, image.size()));
        }
        filesz = h.load_end_addr - h.load_addr;
    }
    std::uint64_t memsz = filesz;
    if (h.bss_end_addr != 0) {
        if (h.bss_end_addr < h.load_addr + filesz) {
            return Error(
                fmt::format("kernel: multiboot bss_end_addr {:#x} is before the end of the "
                            "loaded bytes {:#x}",
                            h.bss_end_addr, h.load_addr + filesz));
        }
        memsz = h.bss_end_addr - h.load_addr;
    }
    if (memsz == 0) {
        return Error("kernel: multiboot image loads nothing");
    }
    if (h.entry_addr < h.load_addr || h.entry_addr - h.load_addr >= filesz) {
        return Error(fmt::format("kernel: multiboot entry_addr {:#x} is not in the loaded bytes",
                                 h.entry_addr));
    }
    return Layout{{{file_offset, h.load_addr, filesz, memsz}}, h.entry_addr};
}

// Flags bit 16 clear: an ELF, loaded by its program headers.
Result<Layout> elf_layout(std::span<const std::uint8_t> image) {
    auto elf = ElfImage::parse_executable(image);
    if (!elf) {
        return elf.error().wrap("multiboot");
    }
    Layout out;
    out.entry = elf->entry;
    for (const auto& s : elf->segments) {
        out.segments.push_back({s.file_offset, s.paddr, s.filesz, s.memsz});
    }
    const bool in_segment = std::any_of(
        out.segments.begin(), out.segments.end(),
        [&](const Segment& s) { return out.entry >= s.paddr && out.entry - s.paddr < s.filesz; });
    if (!in_segment) {
        return Error(
            fmt::format("kernel: multiboot ELF entry {:#x} is not inside any PT_LOAD "
                        "segment's file bytes",
                        out.entry));
    }
    return out;
}

}  // namespace

std::optional<std::size_t> find_multiboot_header(std::span<const std::uint8_t> image) {
    const std::size_t limit = std::min(image.size(), kMultibootSearchLimit);
    for (std::size_t at = 0; at + 12 <= limit; at += 4) {
        const auto magic = read_at<std::uint32_t>(image, at).value();
        if (magic != kMultibootHeaderMagic) {
            continue;
        }
        const auto flags = read_at<std::uint32_t>(image, at + 4).value();
        const auto checksum = read_at<std::uint32_t>(image, at + 8).value();
        if (static_cast<std::uint32_t>(magic + flags + checksum) == 0) {
            return at;
        }
    }
    return std::nullopt;
}

Result<LoadedKernel> load_multiboot(GuestMemory& mem, std::span<const std::uint8_t> image,
                                    const BootConfig& config) {
    const auto header_at = find_multiboot_header(image);
    if (!header_at) {
        return Error(
            "kernel: no multiboot header (magic 0x1BADB002 with a valid checksum) in "
            "the first 8192 bytes");
    }
    MultibootHeader h{};
    const std::size_t have = std::min(sizeof(h), image.size() - *header_at);
    std::memcpy(&h, image.data() + *header_at, have);
    const std::uint32_t unmet = h.flags & 0xffffU & ~kMetRequirements;
    if (unmet != 0) {
        return Error(fmt::format(
            "kernel: multiboot header requires flags {:#x}, which vireo cannot meet{}", unmet,
            (unmet & kMbVideoMode) != 0 ? " (bit 2: a video mode; there is no display)" : ""));
    }
    Result<Layout> layout = Error("unset");
    if ((h.flags & kMbAoutKludge) != 0) {
        if (have < sizeof(h)) {
            return Error(
                "kernel: truncated: the multiboot header's address fields run past the "
                "end of the file");
        }
        layout = aout_layout(image, *header_at, h);
    } else {
        layout = elf_layout(image);
    }
    if (!layout) {
        return layout.error();
    }
    if (auto r = validate_e820(config.e820); !r) {
        return r.error();
    }
    if (config.e820.size() > kMbMaxMmapEntries) {
        return Error(fmt::format("kernel: {} E820 entries, the multiboot page holds at most {}",
                                 config.e820.size(), kMbMaxMmapEntries));
    }
    if (auto r = check_cmdline(config.cmdline, config.cmdline_max, "cmdline_max"); !r) {
        return r.error();
    }

    std::vector<LayoutRange> ranges;
    const std::uint64_t info_at = config.pvh_start_info.value;
    const std::uint64_t info_size = kMbMmapOffset + config.e820.size() * 24;
    if (!mem.contains_range(config.pvh_start_info, info_size) || info_at + info_size > k4GiB) {
        return Error(fmt::format(
            "kernel: multiboot information at {:#x} ({} bytes) is outside guest memory below 4 GiB",
            info_at, info_size));
    }
    ranges.push_back(LayoutRange{"the multiboot information", info_at, info_size});
    const std::uint64_t cmdline_bytes = config.cmdline.size() + 1;
    if (!mem.contains_range(config.cmdline_address, cmdline_bytes) ||
        config.cmdline_address.value + cmdline_bytes > k4GiB) {
        return Error(fmt::format(
            "kernel: command line at {:#x} ({} bytes) is outside guest memory below 4 GiB",
            config.cmdline_address.value, cmdline_bytes));
    }
    ranges.push_back(LayoutRange{"the command line", config.cmdline_address.value, cmdline_bytes});
    std::uint64_t kernel_end = 0;
    for (const auto& seg : layout->segments) {
        // The ELF parser and aout_layout checked that paddr + memsz does not wrap.
        if (seg.paddr + seg.memsz > k4GiB ||
            !mem.contains_range(GuestAddress(seg.paddr), seg.memsz)) {
            return Error(fmt::format(
                "kernel: multiboot segment [{:#x}, {:#x}) is outside guest memory below 4 GiB",
                seg.paddr, seg.paddr + seg.memsz));
        }
        ranges.push_back(LayoutRange{"a kernel segment", seg.paddr, seg.memsz});
        kernel_end = std::max(kernel_end, seg.paddr + seg.memsz);
    }
    if (auto r = check_disjoint(ranges); !r) {
        return r.error();
    }
    std::optional<std::uint64_t> module_at;
    if (!config.initrd.empty()) {
        module_at = find_initrd_slot(mem, config.e820, config.initrd.size(), kernel_end, k4GiB,
                                     std::span(ranges.data(), 2));
        if (!module_at) {
            return Error(fmt::format(
                "kernel: the module (initrd) of {} bytes does not fit below 4 GiB (in E820 RAM "
                "above the kernel end {:#x})",
                config.initrd.size(), kernel_end));
        }
    }

    // Everything is validated; the writes below stay inside guest memory.
    for (const auto& seg : layout->segments) {
        if (auto r = mem.write(GuestAddress(seg.paddr), image.subspan(seg.file_offset, seg.filesz));
            !r) {
            return r.error().wrap("kernel: multiboot segment");
        }
        if (auto r = write_zeros(mem, GuestAddress(seg.paddr + seg.filesz), seg.memsz - seg.filesz);
            !r) {
            return r.error();
        }
    }
    if (module_at) {
        if (auto r = mem.write(GuestAddress(*module_at), config.initrd); !r) {
            return r.error().wrap("kernel: multiboot module");
        }
    }
    if (auto r = write_cmdline(mem, config.cmdline_address, config.cmdline); !r) {
        return r.error();
    }

    MultibootInfo info{};
    info.flags = kMbInfoMemory | kMbInfoCmdline | kMbInfoMods | kMbInfoMmap | kMbInfoLoaderName;
    std::vector<MultibootMmapEntry> mmap;
    for (const auto& e : config.e820) {
        mmap.push_back({20, e.addr, e.size, static_cast<std::uint32_t>(e.type)});
        if (e.type != E820Type::Ram) {
            continue;
        }
        // mem_lower: RAM from 0 (conventional memory, at most 640 KiB); mem_upper: RAM from
        // 1 MiB up to the first hole, in KiB.
        if (e.addr == 0) {
            info.mem_lower =
                static_cast<std::uint32_t>(std::min<std::uint64_t>(e.size, 640 << 10) >> 10);
        }
        if (e.addr <= k1MiB && e.addr + e.size > k1MiB) {
            info.mem_upper = static_cast<std::uint32_t>(
                std::min<std::uint64_t>((e.addr + e.size - k1MiB) >> 10, 0xffffffffU));
        }
    }
    info.cmdline = static_cast<std::uint32_t>(config.cmdline_address.value);
    info.mmap_addr = static_cast<std::uint32_t>(info_at + kMbMmapOffset);
    info.mmap_length = static_cast<std::uint32_t>(mmap.size() * sizeof(MultibootMmapEntry));
    info.boot_loader_name =
        static_cast<std::uint32_t>(info_at + kMbStringsOffset + sizeof(kModuleString));
    MultibootModule module{};
    if (module_at) {
        info.mods_count = 1;
        info.mods_addr = static_cast<std::uint32_t>(info_at + kMbModsOffset);
        module.mod_start = static_cast<std::uint32_t>(*module_at);
        module.mod_end = static_cast<std::uint32_t>(*module_at + config.initrd.size());
        module.string = static_cast<std::uint32_t>(info_at + kMbStringsOffset);
    }
    if (auto r = write_zeros(mem, config.pvh_start_info, info_size); !r) {
        return r.error();
    }
    const GuestAddress strings = config.pvh_start_info + kMbStringsOffset;
    auto r1 = mem.write_obj(config.pvh_start_info, info);
    auto r2 = mem.write_obj(config.pvh_start_info + kMbModsOffset, module);
    auto r3 = mem.write_obj(strings, kModuleString);
    auto r4 = mem.write_obj(strings + sizeof(kModuleString), kLoaderName);
    auto r5 = mem.write(config.pvh_start_info + kMbMmapOffset,
                        std::span(reinterpret_cast<const std::uint8_t*>(mmap.data()),
                                  mmap.size() * sizeof(MultibootMmapEntry)));
    for (const auto* r : {&r1, &r2, &r3, &r4, &r5}) {
        if (!r->ok()) {
            return r->error().wrap("kernel: multiboot information");
        }
    }
    return LoadedKernel{
        .format = KernelFormat::Multiboot,
        .entry = GuestAddress(layout->entry),
        .boot_info = config.pvh_start_info,
        .entry_eax = kMultibootBootloaderMagic,
        .kernel_end = GuestAddress(kernel_end),
        .initrd_address = module_at ? std::optional(GuestAddress(*module_at)) : std::nullopt,
    };
}

}  // namespace vireo::loader
