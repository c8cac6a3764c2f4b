// The ELF64 structures the PVH loader reads from an uncompressed vmlinux (System V gABI, "ELF-64
// Object File Format"; <elf.h> Elf64_Ehdr / Elf64_Phdr / Elf64_Nhdr). Little-endian x86-64 only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::loader {

// e_ident: "\x7fELF", EI_CLASS (4) = ELFCLASS64 (2), EI_DATA (5) = ELFDATA2LSB (1),
// EI_VERSION (6) = EV_CURRENT (1).
inline constexpr std::uint8_t kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
inline constexpr std::size_t kEiClass = 4;
inline constexpr std::size_t kEiData = 5;
inline constexpr std::size_t kEiVersion = 6;
inline constexpr std::uint8_t kElfClass64 = 2;
inline constexpr std::uint8_t kElfData2Lsb = 1;
inline constexpr std::uint8_t kEvCurrent = 1;
inline constexpr std::uint16_t kEtExec = 2;
inline constexpr std::uint16_t kEmX86_64 = 62;
inline constexpr std::uint16_t kPnXnum = 0xffff;  // e_phnum escape to section 0's sh_info
inline constexpr std::uint32_t kPtLoad = 1;
inline constexpr std::uint32_t kPtNote = 4;

struct Elf64Header {
    std::uint8_t e_ident[16];
    std::uint16_t e_type;
    std::uint16_t e_machine;
    std::uint32_t e_version;
    std::uint64_t e_entry;
    std::uint64_t e_phoff;
    std::uint64_t e_shoff;
    std::uint32_t e_flags;
    std::uint16_t e_ehsize;
    std::uint16_t e_phentsize;
    std::uint16_t e_phnum;
    std::uint16_t e_shentsize;
    std::uint16_t e_shnum;
    std::uint16_t e_shstrndx;
};
static_assert(sizeof(Elf64Header) == 64);
static_assert(offsetof(Elf64Header, e_type) == 16);
static_assert(offsetof(Elf64Header, e_machine) == 18);
static_assert(offsetof(Elf64Header, e_entry) == 24);
static_assert(offsetof(Elf64Header, e_phoff) == 32);
static_assert(offsetof(Elf64Header, e_phentsize) == 54);
static_assert(offsetof(Elf64Header, e_phnum) == 56);

struct Elf64ProgramHeader {
    std::uint32_t p_type;
    std::uint32_t p_flags;
    std::uint64_t p_offset;
    std::uint64_t p_vaddr;
    std::uint64_t p_paddr;
    std::uint64_t p_filesz;
    std::uint64_t p_memsz;
    std::uint64_t p_align;
};
static_assert(sizeof(Elf64ProgramHeader) == 56);
static_assert(offsetof(Elf64ProgramHeader, p_offset) == 8);
static_assert(offsetof(Elf64ProgramHeader, p_paddr) == 24);
static_assert(offsetof(Elf64ProgramHeader, p_filesz) == 32);
static_assert(offsetof(Elf64ProgramHeader, p_memsz) == 40);

// ELF32 (ELFCLASS32, EM_386): what multiboot kernels usually are (multiboot.h). Read into the
// 64-bit structures above.
inline constexpr std::uint8_t kElfClass32 = 1;
inline constexpr std::uint16_t kEm386 = 3;

struct Elf32Header {
    std::uint8_t e_ident[16];
    std::uint16_t e_type;
    std::uint16_t e_machine;
    std::uint32_t e_version;
    std::uint32_t e_entry;
    std::uint32_t e_phoff;
    std::uint32_t e_shoff;
    std::uint32_t e_flags;
    std::uint16_t e_ehsize;
    std::uint16_t e_phentsize;
    std::uint16_t e_phnum;
    std::uint16_t e_shentsize;
    std::uint16_t e_shnum;
    std::uint16_t e_shstrndx;
};
static_assert(sizeof(Elf32Header) == 52);
static_assert(offsetof(Elf32Header, e_entry) == 24);
static_assert(offsetof(Elf32Header, e_phoff) == 28);
static_assert(offsetof(Elf32Header, e_phentsize) == 42);
static_assert(offsetof(Elf32Header, e_phnum) == 44);

struct Elf32ProgramHeader {
    std::uint32_t p_type;
    std::uint32_t p_offset;
    std::uint32_t p_vaddr;
    std::uint32_t p_paddr;
    std::uint32_t p_filesz;
    std::uint32_t p_memsz;
    std::uint32_t p_flags;
    std::uint32_t p_align;
};
static_assert(sizeof(Elf32ProgramHeader) == 32);
static_assert(offsetof(Elf32ProgramHeader, p_paddr) == 12);
static_assert(offsetof(Elf32ProgramHeader, p_memsz) == 20);

// A note: this header, then the name (n_namesz bytes incl. NUL) and the descriptor (n_descsz
// bytes), each padded to 4 bytes.
struct Elf64NoteHeader {
    std::uint32_t n_namesz;
    std::uint32_t n_descsz;
    std::uint32_t n_type;
};
static_assert(sizeof(Elf64NoteHeader) == 12);
inline constexpr std::uint64_t kNoteAlign = 4;

}  // namespace vireo::loader
