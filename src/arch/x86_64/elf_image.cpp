#include "arch/x86_64/elf_image.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "arch/x86_64/byte_reader.h"
#include "arch/x86_64/elf64.h"
#include "arch/x86_64/hvm_start_info.h"

namespace vireo::loader {

namespace {

constexpr std::uint64_t k4GiB = 1ULL << 32;
// The note name "Xen" with its NUL (xen/include/public/elfnote.h).
constexpr std::uint8_t kXenNoteName[4] = {'X', 'e', 'n', '\0'};

// What parse_header checks differently for the two ELF classes; the rest is the same.
struct Elf64Traits {
    using Header = Elf64Header;
    using ProgramHeader = Elf64ProgramHeader;
    static constexpr std::uint8_t kClass = kElfClass64;
    static constexpr std::uint16_t kMachine = kEmX86_64;
    static constexpr const char* kClassMessage = "kernel: ELF is not 64-bit (EI_CLASS {})";
    static constexpr const char* kMachineMessage = "kernel: ELF machine {} is not x86-64 (62)";
};
struct Elf32Traits {
    using Header = Elf32Header;
    using ProgramHeader = Elf32ProgramHeader;
    static constexpr std::uint8_t kClass = kElfClass32;
    static constexpr std::uint16_t kMachine = kEm386;
    static constexpr const char* kClassMessage = "kernel: ELF is not 32-bit (EI_CLASS {})";
    static constexpr const char* kMachineMessage = "kernel: 32-bit ELF machine {} is not i386 (3)";
};

// The ELF header's checks (ELF spec, "ELF Header"), and the program header table in bounds.
template <class Traits>
Result<typename Traits::Header> parse_header(std::span<const std::uint8_t> image) {
    using Header = typename Traits::Header;
    using ProgramHeader = typename Traits::ProgramHeader;
    const auto ehdr = read_at<Header>(image, 0);
    if (!ehdr) {
        return Error(fmt::format("kernel: truncated: ELF header needs {} bytes, file has {}",
                                 sizeof(Header), image.size()));
    }
    const auto* ident = ehdr->e_ident;
    if (std::memcmp(ident, kElfMagic, sizeof(kElfMagic)) != 0) {
        return Error("kernel: not an ELF file (no \\x7fELF magic)");
    }
    if (ident[kEiClass] != Traits::kClass) {
        return Error(fmt::format(fmt::runtime(Traits::kClassMessage), ident[kEiClass]));
    }
    if (ident[kEiData] != kElfData2Lsb) {
        return Error(fmt::format("kernel: ELF is not little-endian (EI_DATA {})", ident[kEiData]));
    }
    if (ident[kEiVersion] != kEvCurrent) {
        return Error(fmt::format("kernel: ELF version {} is not 1", ident[kEiVersion]));
    }
    if (ehdr->e_type != kEtExec) {
        return Error(fmt::format("kernel: ELF type {} is not ET_EXEC (2)", ehdr->e_type));
    }
    if (ehdr->e_machine != Traits::kMachine) {
        return Error(fmt::format(fmt::runtime(Traits::kMachineMessage), ehdr->e_machine));
    }
    if (ehdr->e_phentsize != sizeof(ProgramHeader)) {
        return Error(fmt::format("kernel: ELF e_phentsize {} is not {}", ehdr->e_phentsize,
                                 sizeof(ProgramHeader)));
    }
    if (ehdr->e_phnum == 0) {
        return Error("kernel: ELF has no program headers");
    }
    if (ehdr->e_phnum == kPnXnum) {
        return Error("kernel: ELF e_phnum is PN_XNUM (extended numbering is not supported)");
    }
    // e_phnum < 0xffff, so the table is under 4 MiB and the product cannot overflow.
    const std::uint64_t table_size = std::uint64_t{ehdr->e_phnum} * sizeof(ProgramHeader);
    if (!in_bounds(image.size(), ehdr->e_phoff, table_size)) {
        return Error(fmt::format(
            "kernel: truncated: {} program headers at offset {:#x} run past the {}-byte file",
            ehdr->e_phnum, ehdr->e_phoff, image.size()));
    }
    return *ehdr;
}

Result<ElfLoadSegment> check_load_segment(std::span<const std::uint8_t> image,
                                          const Elf64ProgramHeader& ph, std::size_t index) {
    if (ph.p_filesz > ph.p_memsz) {
        return Error(fmt::format("kernel: PT_LOAD segment {}: p_filesz {:#x} > p_memsz {:#x}",
                                 index, +ph.p_filesz, +ph.p_memsz));
    }
    if (!in_bounds(image.size(), ph.p_offset, ph.p_filesz)) {
        return Error(fmt::format(
            "kernel: PT_LOAD segment {} (offset {:#x}, size {:#x}) lies outside the {}-byte file",
            index, +ph.p_offset, +ph.p_filesz, image.size()));
    }
    std::uint64_t end = 0;
    if (!checked_add(ph.p_paddr, ph.p_memsz, end)) {
        return Error(fmt::format("kernel: PT_LOAD segment {} at {:#x} + {:#x} wraps past 2^64",
                                 index, +ph.p_paddr, +ph.p_memsz));
    }
    return ElfLoadSegment{ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz};
}

// Walks the notes of one PT_NOTE segment (Elf64_Nhdr, name and desc each padded to 4 bytes) and
// returns the XEN_ELFNOTE_PHYS32_ENTRY address if the segment has one. The desc is the 32-bit
// entry, or a 64-bit one (Linux emits it with _ASM_PTR).
Result<std::optional<std::uint64_t>> find_pvh_note(std::span<const std::uint8_t> image,
                                                   const Elf64ProgramHeader& ph,
                                                   std::size_t index) {
    if (!in_bounds(image.size(), ph.p_offset, ph.p_filesz)) {
        return Error(fmt::format(
            "kernel: PT_NOTE segment {} (offset {:#x}, size {:#x}) lies outside the {}-byte file",
            index, +ph.p_offset, +ph.p_filesz, image.size()));
    }
    const std::uint64_t end = ph.p_offset + ph.p_filesz;  // in bounds, so no wrap
    std::uint64_t pos = ph.p_offset;
    while (end - pos >= sizeof(Elf64NoteHeader)) {
        const auto nhdr = read_at<Elf64NoteHeader>(image, pos).value();
        // 32-bit sizes rounded up in 64 bits cannot overflow.
        const std::uint64_t name_padded = (std::uint64_t{nhdr.n_namesz} + 3) & ~std::uint64_t{3};
        const std::uint64_t desc_padded = (std::uint64_t{nhdr.n_descsz} + 3) & ~std::uint64_t{3};
        const std::uint64_t name_at = pos + sizeof(Elf64NoteHeader);
        // The name is followed by the desc, so its padding must be present; the desc of the
        // segment's last note may end without padding.
        if (name_padded > end - name_at || nhdr.n_descsz > end - name_at - name_padded) {
            return Error(fmt::format(
                "kernel: malformed ELF note at file offset {:#x}: namesz {:#x} / descsz {:#x} "
                "run past the end of PT_NOTE segment {}",
                pos, nhdr.n_namesz, nhdr.n_descsz, index));
        }
        const std::uint64_t desc_at = name_at + name_padded;
        if (nhdr.n_type == kXenElfNotePhys32Entry && nhdr.n_namesz == sizeof(kXenNoteName) &&
            std::memcmp(image.data() + name_at, kXenNoteName, sizeof(kXenNoteName)) == 0) {
            if (nhdr.n_descsz == 4) {
                return std::optional<std::uint64_t>(read_at<std::uint32_t>(image, desc_at).value());
            }
            if (nhdr.n_descsz == 8) {
                return std::optional<std::uint64_t>(read_at<std::uint64_t>(image, desc_at).value());
            }
            return Error(fmt::format(
                "kernel: PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has descsz {}, expected 4 or 8",
                nhdr.n_descsz));
        }
        pos = desc_at + std::min(desc_padded, end - desc_at);
    }
    return std::optional<std::uint64_t>();
}

}  // namespace

Result<ElfImage> ElfImage::parse(std::span<const std::uint8_t> image) {
    auto ehdr = parse_header<Elf64Traits>(image);
    if (!ehdr) {
        return ehdr.error();
    }
    std::vector<ElfLoadSegment> segments;
    std::optional<std::uint64_t> entry;
    for (std::size_t i = 0; i < ehdr->e_phnum; ++i) {
        // In bounds: parse_header checked the whole table.
        const auto ph =
            read_at<Elf64ProgramHeader>(image, ehdr->e_phoff + i * sizeof(Elf64ProgramHeader))
                .value();
        if (ph.p_type == kPtLoad) {
            auto seg = check_load_segment(image, ph, i);
            if (!seg) {
                return seg.error();
            }
            if (seg->memsz != 0) {
                segments.push_back(*seg);
            }
        } else if (ph.p_type == kPtNote && !entry) {
            auto note = find_pvh_note(image, ph, i);
            if (!note) {
                return note.error();
            }
            entry = *note;
        }
    }
    if (segments.empty()) {
        return Error("kernel: ELF has no PT_LOAD segments");
    }
    if (!entry) {
        return Error("kernel: ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
    }
    if (*entry >= k4GiB) {
        return Error(fmt::format(
            "kernel: PVH entry {:#x} is above 4 GiB (it is entered in 32-bit mode)", *entry));
    }
    const bool in_segment = std::any_of(
        segments.begin(), segments.end(),
        [&](const ElfLoadSegment& s) { return *entry >= s.paddr && *entry - s.paddr < s.filesz; });
    if (!in_segment) {
        return Error(
            fmt::format("kernel: PVH entry {:#x} is not inside any PT_LOAD segment", *entry));
    }
    return ElfImage(std::move(segments), *entry);
}

Result<ElfExecutable> ElfImage::parse_executable(std::span<const std::uint8_t> image) {
    if (image.size() < 16 || std::memcmp(image.data(), kElfMagic, sizeof(kElfMagic)) != 0) {
        return Error("kernel: not an ELF file (no \\x7fELF magic)");
    }
    ElfExecutable out;
    std::vector<Elf64ProgramHeader> headers;
    if (image[kEiClass] == kElfClass32) {
        auto ehdr = parse_header<Elf32Traits>(image);
        if (!ehdr) {
            return ehdr.error();
        }
        out.entry = ehdr->e_entry;
        for (std::size_t i = 0; i < ehdr->e_phnum; ++i) {
            // In bounds: parse_header checked the whole table.
            const auto ph =
                read_at<Elf32ProgramHeader>(image, ehdr->e_phoff + i * sizeof(Elf32ProgramHeader))
                    .value();
            headers.push_back(Elf64ProgramHeader{ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr,
                                                 ph.p_paddr, ph.p_filesz, ph.p_memsz, ph.p_align});
        }
    } else {
        auto ehdr = parse_header<Elf64Traits>(image);
        if (!ehdr) {
            return ehdr.error();
        }
        out.entry = ehdr->e_entry;
        out.is_64bit = true;
        for (std::size_t i = 0; i < ehdr->e_phnum; ++i) {
            headers.push_back(
                read_at<Elf64ProgramHeader>(image, ehdr->e_phoff + i * sizeof(Elf64ProgramHeader))
                    .value());
        }
    }
    for (std::size_t i = 0; i < headers.size(); ++i) {
        if (headers[i].p_type != kPtLoad) {
            continue;
        }
        auto seg = check_load_segment(image, headers[i], i);
        if (!seg) {
            return seg.error();
        }
        if (seg->memsz != 0) {
            out.segments.push_back(*seg);
        }
    }
    if (out.segments.empty()) {
        return Error("kernel: ELF has no PT_LOAD segments");
    }
    return out;
}

}  // namespace vireo::loader
