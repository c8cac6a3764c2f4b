// Synthetic kernel images and guest memory for the loader tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/elf64.h"
#include "arch/x86_64/hvm_start_info.h"
#include "base/size.h"
#include "memory/guest_memory.h"

namespace vireo::loader::test {

template <typename T>
void put(std::vector<std::uint8_t>& image, std::size_t offset, T value) {
    ASSERT_LE(offset + sizeof(T), image.size());
    std::memcpy(image.data() + offset, &value, sizeof(T));
}

template <typename T>
T get(const std::vector<std::uint8_t>& image, std::size_t offset) {
    T value{};
    EXPECT_LE(offset + sizeof(T), image.size());
    if (offset + sizeof(T) <= image.size()) {
        std::memcpy(&value, image.data() + offset, sizeof(T));
    }
    return value;
}

inline std::uint8_t pattern_byte(std::size_t i) {
    return static_cast<std::uint8_t>(i * 7 + 3);
}

inline std::vector<std::uint8_t> pattern(std::size_t size, std::size_t seed = 0) {
    std::vector<std::uint8_t> v(size);
    for (std::size_t i = 0; i < size; ++i) {
        v[i] = pattern_byte(i + seed);
    }
    return v;
}

struct BzImageSpec {
    std::uint16_t version = 0x020f;
    std::uint8_t setup_sects = 4;                   // setup = 5 * 512 = 2560 bytes
    std::uint8_t jump = 0x6a;                       // header ends at 0x26c, as in Linux 5.x/6.x
    std::uint16_t xloadflags = kXlfKernel64 | 0x2;  // | XLF_CAN_BE_LOADED_ABOVE_4G
    std::uint8_t loadflags = kLoadedHigh;
    std::uint32_t init_size = 0x400000;
    std::uint32_t initrd_addr_max = 0x7fffffff;
    std::uint32_t cmdline_size = 2047;
    std::uint32_t kernel_alignment = 0x200000;
    std::uint8_t relocatable = 1;
    std::uint64_t pref_address = 0x1000000;
    std::size_t payload_size = 0x3000;
};

inline std::uint32_t setup_size_of(const BzImageSpec& spec) {
    return ((spec.setup_sects != 0 ? spec.setup_sects : 4U) + 1) * 512;
}

// Setup (boot sector + setup header + filler) followed by a patterned protected-mode kernel.
inline std::vector<std::uint8_t> make_bzimage(const BzImageSpec& spec = {}) {
    const std::size_t setup = setup_size_of(spec);
    std::vector<std::uint8_t> image(setup + spec.payload_size, 0);
    for (std::size_t i = 0; i < spec.payload_size; ++i) {
        image[setup + i] = pattern_byte(i);
    }
    put<std::uint8_t>(image, 0x1f1, spec.setup_sects);
    put<std::uint16_t>(image, 0x1f2, 0x1234);  // root_flags, recognizable
    put<std::uint32_t>(image, 0x1f4, static_cast<std::uint32_t>(spec.payload_size / 16));
    put<std::uint16_t>(image, 0x1fa, 0x0003);  // vid_mode: the loader overrides it
    put<std::uint16_t>(image, 0x1fe, 0xaa55);
    put<std::uint8_t>(image, 0x200, 0xeb);
    put<std::uint8_t>(image, 0x201, spec.jump);
    put<std::uint32_t>(image, 0x202, 0x53726448);  // "HdrS"
    put<std::uint16_t>(image, 0x206, spec.version);
    put<std::uint16_t>(image, 0x20e, 0x0abc);  // kernel_version, recognizable
    put<std::uint8_t>(image, 0x211, spec.loadflags);
    put<std::uint32_t>(image, 0x214, 0x100000);
    put<std::uint32_t>(image, 0x22c, spec.initrd_addr_max);
    put<std::uint32_t>(image, 0x230, spec.kernel_alignment);
    put<std::uint8_t>(image, 0x234, spec.relocatable);
    put<std::uint16_t>(image, 0x236, spec.xloadflags);
    put<std::uint32_t>(image, 0x238, spec.cmdline_size);
    put<std::uint64_t>(image, 0x250, 0xdeadbeef);  // setup_data: the loader must clear it
    put<std::uint64_t>(image, 0x258, spec.pref_address);
    put<std::uint32_t>(image, 0x260, spec.init_size);
    put<std::uint32_t>(image, 0x264, 0x190);  // handover_offset, recognizable
    // Code after the header (start_of_setup), so a copy past the header end would show.
    for (std::size_t i = 0x26c; i < 0x400; ++i) {
        image[i] = 0x90;
    }
    return image;
}

// Test ELF layout: header at 0, program headers at 0x40 (PT_LOAD, PT_NOTE), notes at 0x100
// (a "Linux" note, then the "Xen" PVH note), segment data at 0x200.
inline constexpr std::size_t kPhoff = 0x40;
inline constexpr std::size_t kNotesAt = 0x100;
inline constexpr std::size_t kLinuxNoteSize = 12 + 8 + 4;  // "Linux\0" padded, 4-byte desc
inline constexpr std::size_t kXenNoteAt = kNotesAt + kLinuxNoteSize;
inline constexpr std::size_t kSegmentAt = 0x200;

inline std::size_t phdr_at(std::size_t index) {
    return kPhoff + index * sizeof(Elf64ProgramHeader);
}

struct ElfSpec {
    std::uint64_t paddr = 0x1000000;
    std::uint64_t filesz = 0x1000;
    std::uint64_t memsz = 0x3000;
    std::uint64_t entry = 0x1000040;
    std::uint32_t entry_descsz = 8;
    bool xen_note = true;
};

inline std::vector<std::uint8_t> make_elf(const ElfSpec& spec = {}) {
    std::vector<std::uint8_t> image(kSegmentAt + spec.filesz, 0);
    Elf64Header eh{};
    std::memcpy(eh.e_ident, kElfMagic, 4);
    eh.e_ident[kEiClass] = kElfClass64;
    eh.e_ident[kEiData] = kElfData2Lsb;
    eh.e_ident[kEiVersion] = kEvCurrent;
    eh.e_type = kEtExec;
    eh.e_machine = kEmX86_64;
    eh.e_version = 1;
    eh.e_entry = 0xffffffff81000000;
    eh.e_phoff = kPhoff;
    eh.e_ehsize = sizeof(Elf64Header);
    eh.e_phentsize = sizeof(Elf64ProgramHeader);
    eh.e_phnum = 2;
    put(image, 0, eh);

    const std::size_t xen_note_size = 12 + 4 + spec.entry_descsz;
    Elf64ProgramHeader load{};
    load.p_type = kPtLoad;
    load.p_offset = kSegmentAt;
    load.p_vaddr = 0xffffffff81000000;
    load.p_paddr = spec.paddr;
    load.p_filesz = spec.filesz;
    load.p_memsz = spec.memsz;
    load.p_align = 0x200000;
    put(image, phdr_at(0), load);
    Elf64ProgramHeader note{};
    note.p_type = kPtNote;
    note.p_offset = kNotesAt;
    note.p_filesz = kLinuxNoteSize + (spec.xen_note ? xen_note_size : 0);
    note.p_align = 4;
    put(image, phdr_at(1), note);

    put(image, kNotesAt, Elf64NoteHeader{6, 4, 6});  // "Linux", NT_ (any non-Xen note)
    std::memcpy(image.data() + kNotesAt + 12, "Linux", 6);
    put<std::uint32_t>(image, kNotesAt + 20, 0x11223344);
    if (spec.xen_note) {
        put(image, kXenNoteAt, Elf64NoteHeader{4, spec.entry_descsz, kXenElfNotePhys32Entry});
        std::memcpy(image.data() + kXenNoteAt + 12, "Xen", 4);
        if (spec.entry_descsz == 4) {
            put<std::uint32_t>(image, kXenNoteAt + 16, static_cast<std::uint32_t>(spec.entry));
        } else if (spec.entry_descsz == 8) {
            put<std::uint64_t>(image, kXenNoteAt + 16, spec.entry);
        }
    }
    for (std::size_t i = 0; i < spec.filesz; ++i) {
        image[kSegmentAt + i] = pattern_byte(i);
    }
    return image;
}

inline GuestMemory make_memory(std::uint64_t size = 64 * MiB) {
    const MemoryRegionSpec specs[] = {{GuestAddress(0), size}};
    auto mem = GuestMemory::create(specs);
    EXPECT_TRUE(mem.ok()) << (mem.ok() ? "" : mem.error().message());
    return std::move(mem).value();
}

// A PC-like map: low RAM, EBDA and BIOS reserved, RAM from 1 MiB to the top.
inline std::vector<E820Entry> pc_e820(std::uint64_t ram_size = 64 * MiB) {
    return {
        {0, 0x9fc00, E820Type::Ram},
        {0x9fc00, 0x400, E820Type::Reserved},
        {0xf0000, 0x10000, E820Type::Reserved},
        {0x100000, ram_size - 0x100000, E820Type::Ram},
    };
}

inline std::vector<std::uint8_t> read_guest(const GuestMemory& mem, std::uint64_t addr,
                                            std::size_t size) {
    std::vector<std::uint8_t> out(size);
    auto r = mem.read(GuestAddress(addr), out);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return out;
}

}  // namespace vireo::loader::test
