#include "arch/x86_64/elf_pvh.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/byte_reader.h"
#include "arch/x86_64/elf_image.h"
#include "arch/x86_64/hvm_start_info.h"

namespace vireo::loader {

namespace {

constexpr std::uint64_t k4GiB = 1ULL << 32;

static_assert(sizeof(HvmStartInfo) <= kPvhModlistOffset);
static_assert(kPvhModlistOffset + sizeof(HvmModlistEntry) <= kPvhMemmapOffset);
static_assert(kPvhMemmapOffset % alignof(HvmMemmapTableEntry) == 0);
static_assert(kPvhMaxMemmapEntries ==
              (kPvhAreaSize - kPvhMemmapOffset) / sizeof(HvmMemmapTableEntry));

template <typename T>
std::span<const std::uint8_t> bytes_of(std::span<const T> objects) {
    return std::span(reinterpret_cast<const std::uint8_t*>(objects.data()), objects.size_bytes());
}

}  // namespace

Result<LoadedKernel> load_elf_pvh(GuestMemory& mem, std::span<const std::uint8_t> image,
                                  const BootConfig& config) {
    auto elf = ElfImage::parse(image);
    if (!elf) {
        return elf.error();
    }
    if (auto r = validate_e820(config.e820); !r) {
        return r.error();
    }
    if (config.e820.size() > kPvhMaxMemmapEntries) {
        return Error(
            fmt::format("kernel: {} E820 entries, the PVH start-info page holds at most {}",
                        config.e820.size(), kPvhMaxMemmapEntries));
    }
    if (auto r = check_cmdline(config.cmdline, config.cmdline_max, "cmdline_max"); !r) {
        return r.error();
    }

    std::vector<LayoutRange> ranges;
    const std::uint64_t info_size =
        kPvhMemmapOffset + config.e820.size() * sizeof(HvmMemmapTableEntry);
    const std::uint64_t info_at = config.pvh_start_info.value;
    if (!mem.contains_range(config.pvh_start_info, info_size) || info_at + info_size > k4GiB) {
        return Error(fmt::format(
            "kernel: PVH start info at {:#x} ({} bytes) is outside guest memory below 4 GiB",
            info_at, info_size));
    }
    ranges.push_back(LayoutRange{"the PVH start info", info_at, info_size});
    const std::uint64_t cmdline_bytes = config.cmdline.size() + 1;
    if (!mem.contains_range(config.cmdline_address, cmdline_bytes)) {
        return Error(fmt::format("kernel: command line at {:#x} ({} bytes) is outside guest memory",
                                 config.cmdline_address.value, cmdline_bytes));
    }
    ranges.push_back(LayoutRange{"the command line", config.cmdline_address.value, cmdline_bytes});
    std::uint64_t kernel_end = 0;
    for (const auto& seg : elf->load_segments()) {
        // ElfImage::parse checked that paddr + memsz does not wrap.
        if (!mem.contains_range(GuestAddress(seg.paddr), seg.memsz)) {
            return Error(
                fmt::format("kernel: PT_LOAD segment [{:#x}, {:#x}) is outside guest memory",
                            seg.paddr, seg.paddr + seg.memsz));
        }
        ranges.push_back(LayoutRange{"a kernel segment", seg.paddr, seg.memsz});
        kernel_end = std::max(kernel_end, seg.paddr + seg.memsz);
    }
    if (auto r = check_disjoint(ranges); !r) {
        return r.error();
    }

    std::optional<std::uint64_t> initrd_address;
    if (!config.initrd.empty()) {
        // Below 4 GiB like for bzImage; above every kernel segment; clear of the start info and
        // the command line (ranges[0..1]).
        initrd_address = find_initrd_slot(mem, config.e820, config.initrd.size(), kernel_end, k4GiB,
                                          std::span(ranges.data(), 2));
        if (!initrd_address) {
            return Error(fmt::format(
                "kernel: initrd of {} bytes does not fit below 4 GiB (in E820 RAM above the "
                "kernel end {:#x})",
                config.initrd.size(), kernel_end));
        }
    }

    // Everything is validated; the writes below stay inside guest memory.
    for (const auto& seg : elf->load_segments()) {
        if (auto r = mem.write(GuestAddress(seg.paddr), image.subspan(seg.file_offset, seg.filesz));
            !r) {
            return r.error().wrap("kernel: PT_LOAD segment");
        }
        if (auto r = write_zeros(mem, GuestAddress(seg.paddr + seg.filesz), seg.memsz - seg.filesz);
            !r) {
            return r.error();
        }
    }
    if (initrd_address) {
        if (auto r = mem.write(GuestAddress(*initrd_address), config.initrd); !r) {
            return r.error().wrap("kernel: initrd");
        }
    }
    if (auto r = write_cmdline(mem, config.cmdline_address, config.cmdline); !r) {
        return r.error();
    }

    std::vector<HvmMemmapTableEntry> memmap;
    memmap.reserve(config.e820.size());
    for (const auto& e : config.e820) {
        memmap.push_back(
            HvmMemmapTableEntry{e.addr, e.size, static_cast<std::uint32_t>(e.type), 0});
    }
    HvmStartInfo info{};
    info.magic = kHvmStartMagic;
    info.version = kHvmStartInfoVersion;
    info.flags = 0;
    info.cmdline_paddr = config.cmdline_address.value;
    info.rsdp_paddr = config.rsdp_address;
    info.memmap_paddr = info_at + kPvhMemmapOffset;
    info.memmap_entries = static_cast<std::uint32_t>(memmap.size());
    HvmModlistEntry initrd_module{};
    if (initrd_address) {
        info.nr_modules = 1;
        info.modlist_paddr = info_at + kPvhModlistOffset;
        initrd_module.paddr = *initrd_address;
        initrd_module.size = config.initrd.size();
    }
    // Zero the whole area first so unused bytes (padding, an absent modlist) are defined.
    if (auto r = write_zeros(mem, config.pvh_start_info, info_size); !r) {
        return r.error();
    }
    auto r1 = mem.write_obj(config.pvh_start_info, info);
    auto r2 = mem.write_obj(config.pvh_start_info + kPvhModlistOffset, initrd_module);
    auto r3 = mem.write(config.pvh_start_info + kPvhMemmapOffset,
                        bytes_of(std::span<const HvmMemmapTableEntry>(memmap)));
    for (const auto* r : {&r1, &r2, &r3}) {
        if (!r->ok()) {
            return r->error().wrap("kernel: PVH start info");
        }
    }
    return LoadedKernel{
        .format = KernelFormat::ElfPvh,
        .entry = GuestAddress(elf->pvh_entry()),
        .boot_info = config.pvh_start_info,
        .kernel_end = GuestAddress(kernel_end),
        .initrd_address =
            initrd_address ? std::optional(GuestAddress(*initrd_address)) : std::nullopt,
    };
}

}  // namespace vireo::loader
