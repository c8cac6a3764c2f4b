// A validated view of an uncompressed x86-64 vmlinux (ELF64) for PVH boot: its PT_LOAD segments
// and the PVH entry point from its XEN_ELFNOTE_PHYS32_ENTRY note. Parsing checks every offset and
// size read from the file against the file size with overflow-safe arithmetic; guest-memory
// checks are the loader's (elf_pvh.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vireo::loader {

struct ElfLoadSegment {
    std::uint64_t file_offset;  // p_offset; [file_offset, file_offset + filesz) is in the file
    std::uint64_t paddr;        // p_paddr; paddr + memsz does not wrap
    std::uint64_t filesz;       // p_filesz <= p_memsz
    std::uint64_t memsz;        // p_memsz
};

// An executable's loadable segments and entry, 32- or 64-bit, for loaders that need no note
// (multiboot.h). Every segment's file range is inside the image and paddr + memsz does not wrap.
struct ElfExecutable {
    std::vector<ElfLoadSegment> segments;  // PT_LOAD with memsz > 0, at least one
    std::uint64_t entry = 0;               // e_entry
    bool is_64bit = false;
};

class ElfImage {
public:
    // A 64-bit vmlinux with a PVH entry note.
    static Result<ElfImage> parse(std::span<const std::uint8_t> image);
    // ELFCLASS32 with EM_386 or ELFCLASS64 with EM_X86_64, ET_EXEC, little-endian.
    static Result<ElfExecutable> parse_executable(std::span<const std::uint8_t> image);

    std::span<const ElfLoadSegment> load_segments() const { return m_segments; }
    // The XEN_ELFNOTE_PHYS32_ENTRY address (below 4 GiB, inside a PT_LOAD segment).
    std::uint64_t pvh_entry() const { return m_pvh_entry; }

private:
    ElfImage(std::vector<ElfLoadSegment> segments, std::uint64_t pvh_entry)
        : m_segments(std::move(segments)), m_pvh_entry(pvh_entry) {}

    std::vector<ElfLoadSegment> m_segments;
    std::uint64_t m_pvh_entry;
};

}  // namespace vireo::loader
