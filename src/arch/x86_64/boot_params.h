// The x86 Linux boot ABI: the real-mode kernel header (Documentation/arch/x86/boot.rst, "The
// real-mode kernel header") and struct boot_params, the "zero page"
// (Documentation/arch/x86/zero-page.rst, arch/x86/include/uapi/asm/bootparam.h). Every offset the
// loader uses is pinned below; fields the loader never touches are kept as opaque byte arrays.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::loader {

// boot.rst: boot_flag at 0x1fe holds 0xAA55; header at 0x202 holds "HdrS" (little-endian).
inline constexpr std::uint16_t kBootFlagMagic = 0xaa55;
inline constexpr std::uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
// Protocol 2.12 added xloadflags (XLF_KERNEL_64); the 64-bit boot protocol needs it.
inline constexpr std::uint16_t kMinBootProtocol = 0x020c;
// boot.rst "loadflags": bit 0 LOADED_HIGH (protected-mode code at 0x100000, i.e. a bzImage),
// bit 7 CAN_USE_HEAP (heap_end_ptr is valid).
inline constexpr std::uint8_t kLoadedHigh = 1U << 0;
inline constexpr std::uint8_t kCanUseHeap = 1U << 7;
// boot.rst "xloadflags": bit 0 XLF_KERNEL_64 (64-bit entry at +0x200 of the protected-mode kernel).
inline constexpr std::uint16_t kXlfKernel64 = 1U << 0;
// boot.rst "type_of_loader": 0xff means "undefined" (no assigned boot loader id).
inline constexpr std::uint8_t kLoaderTypeUndefined = 0xff;
// boot.rst "vid_mode": 0xffff is "normal" (80x25 text, no mode switch).
inline constexpr std::uint16_t kVidModeNormal = 0xffff;
// boot.rst "setup_sects": 0 means 4; the setup is (setup_sects + 1) 512-byte sectors, the extra
// one being the boot sector.
inline constexpr std::uint32_t kSectorSize = 512;
inline constexpr std::uint32_t kDefaultSetupSects = 4;
// boot.rst "64-bit Boot Protocol": the 64-bit entry is the protected-mode kernel's load address
// plus 0x200 (startup_64).
inline constexpr std::uint64_t kEntry64Offset = 0x200;
// zero-page.rst: e820_table holds E820_MAX_ENTRIES_ZEROPAGE = 128 entries.
inline constexpr std::size_t kZeroPageE820Max = 128;

// boot.rst "The real-mode kernel header", offsets relative to the start of the image (and of the
// zero page, which embeds it at 0x1f1).
struct __attribute__((packed)) SetupHeader {
    std::uint8_t setup_sects;             // 0x1f1
    std::uint16_t root_flags;             // 0x1f2
    std::uint32_t syssize;                // 0x1f4
    std::uint16_t ram_size;               // 0x1f8
    std::uint16_t vid_mode;               // 0x1fa
    std::uint16_t root_dev;               // 0x1fc
    std::uint16_t boot_flag;              // 0x1fe  0xAA55
    std::uint8_t jump[2];                 // 0x200  0xEB, header end - 0x202
    std::uint32_t header;                 // 0x202  "HdrS"
    std::uint16_t version;                // 0x206  boot protocol version
    std::uint32_t realmode_swtch;         // 0x208
    std::uint16_t start_sys_seg;          // 0x20c
    std::uint16_t kernel_version;         // 0x20e
    std::uint8_t type_of_loader;          // 0x210  written by the loader
    std::uint8_t loadflags;               // 0x211  modified by the loader
    std::uint16_t setup_move_size;        // 0x212
    std::uint32_t code32_start;           // 0x214
    std::uint32_t ramdisk_image;          // 0x218  written by the loader
    std::uint32_t ramdisk_size;           // 0x21c  written by the loader
    std::uint32_t bootsect_kludge;        // 0x220
    std::uint16_t heap_end_ptr;           // 0x224  written by the loader
    std::uint8_t ext_loader_ver;          // 0x226
    std::uint8_t ext_loader_type;         // 0x227
    std::uint32_t cmd_line_ptr;           // 0x228  written by the loader
    std::uint32_t initrd_addr_max;        // 0x22c  highest address the initrd may occupy
    std::uint32_t kernel_alignment;       // 0x230
    std::uint8_t relocatable_kernel;      // 0x234
    std::uint8_t min_alignment;           // 0x235
    std::uint16_t xloadflags;             // 0x236
    std::uint32_t cmdline_size;           // 0x238  max cmdline length, excluding the NUL
    std::uint32_t hardware_subarch;       // 0x23c
    std::uint64_t hardware_subarch_data;  // 0x240
    std::uint32_t payload_offset;         // 0x248
    std::uint32_t payload_length;         // 0x24c
    std::uint64_t setup_data;             // 0x250  linked list; the loader passes none (0)
    std::uint64_t pref_address;           // 0x258  LOAD_PHYSICAL_ADDR
    std::uint32_t init_size;              // 0x260
    std::uint32_t handover_offset;        // 0x264
    std::uint32_t kernel_info_offset;     // 0x268
};

// zero-page.rst: struct boot_e820_entry, packed, 20 bytes.
struct __attribute__((packed)) BootE820Entry {
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t type;
};

// zero-page.rst / bootparam.h: struct boot_params, exactly one 4 KiB page.
struct __attribute__((packed)) BootParams {
    std::uint8_t screen_info[0x40];        // 0x000
    std::uint8_t apm_bios_info[0x14];      // 0x040
    std::uint8_t pad2[4];                  // 0x054
    std::uint64_t tboot_addr;              // 0x058
    std::uint8_t ist_info[0x10];           // 0x060
    std::uint64_t acpi_rsdp_addr;          // 0x070  protocol 2.14+
    std::uint8_t pad3[8];                  // 0x078
    std::uint8_t hd0_info[0x10];           // 0x080
    std::uint8_t hd1_info[0x10];           // 0x090
    std::uint8_t sys_desc_table[0x10];     // 0x0a0
    std::uint8_t olpc_ofw_header[0x10];    // 0x0b0
    std::uint32_t ext_ramdisk_image;       // 0x0c0  ramdisk_image bits 63:32
    std::uint32_t ext_ramdisk_size;        // 0x0c4  ramdisk_size bits 63:32
    std::uint32_t ext_cmd_line_ptr;        // 0x0c8  cmd_line_ptr bits 63:32
    std::uint8_t pad4[0x70];               // 0x0cc
    std::uint32_t cc_blob_address;         // 0x13c
    std::uint8_t edid_info[0x80];          // 0x140
    std::uint8_t efi_info[0x20];           // 0x1c0
    std::uint32_t alt_mem_k;               // 0x1e0
    std::uint32_t scratch;                 // 0x1e4
    std::uint8_t e820_entries;             // 0x1e8  number of e820_table entries
    std::uint8_t eddbuf_entries;           // 0x1e9
    std::uint8_t edd_mbr_sig_buf_entries;  // 0x1ea
    std::uint8_t kbd_status;               // 0x1eb
    std::uint8_t secure_boot;              // 0x1ec
    std::uint8_t pad5[2];                  // 0x1ed
    std::uint8_t sentinel;                 // 0x1ef  must stay 0 (the loader zeroes the page)
    std::uint8_t pad6[1];                  // 0x1f0
    SetupHeader hdr;                       // 0x1f1
    std::uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
    std::uint32_t edd_mbr_sig_buffer[16];        // 0x290
    BootE820Entry e820_table[kZeroPageE820Max];  // 0x2d0
    std::uint8_t pad8[0x30];                     // 0xcd0
    std::uint8_t eddbuf[0x1ec];                  // 0xd00
    std::uint8_t pad9[0x114];                    // 0xeec
};

// The bytes of the setup header the loader copies from the image into the zero page stop at the
// end of hdr's slot (0x290) even when the jump byte claims more (see bzimage.cpp).
inline constexpr std::size_t kSetupHeaderOffset = 0x1f1;
inline constexpr std::size_t kSetupHeaderSlotEnd = 0x290;

static_assert(sizeof(BootE820Entry) == 20);
static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);
static_assert(sizeof(BootParams) == 4096);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(BootParams, ext_ramdisk_size) == 0x0c4);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(BootParams, cc_blob_address) == 0x13c);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == kSetupHeaderOffset);
static_assert(offsetof(BootParams, edd_mbr_sig_buffer) == kSetupHeaderSlotEnd);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);

// Header offsets as boot.rst numbers them (from the start of the image / zero page).
template <std::size_t HeaderOffset>
constexpr bool hdr_at(std::size_t field_offset) {
    return kSetupHeaderOffset + field_offset == HeaderOffset;
}
static_assert(hdr_at<0x1f1>(offsetof(SetupHeader, setup_sects)));
static_assert(hdr_at<0x1fa>(offsetof(SetupHeader, vid_mode)));
static_assert(hdr_at<0x1fe>(offsetof(SetupHeader, boot_flag)));
static_assert(hdr_at<0x200>(offsetof(SetupHeader, jump)));
static_assert(hdr_at<0x202>(offsetof(SetupHeader, header)));
static_assert(hdr_at<0x206>(offsetof(SetupHeader, version)));
static_assert(hdr_at<0x210>(offsetof(SetupHeader, type_of_loader)));
static_assert(hdr_at<0x211>(offsetof(SetupHeader, loadflags)));
static_assert(hdr_at<0x214>(offsetof(SetupHeader, code32_start)));
static_assert(hdr_at<0x218>(offsetof(SetupHeader, ramdisk_image)));
static_assert(hdr_at<0x21c>(offsetof(SetupHeader, ramdisk_size)));
static_assert(hdr_at<0x224>(offsetof(SetupHeader, heap_end_ptr)));
static_assert(hdr_at<0x228>(offsetof(SetupHeader, cmd_line_ptr)));
static_assert(hdr_at<0x22c>(offsetof(SetupHeader, initrd_addr_max)));
static_assert(hdr_at<0x230>(offsetof(SetupHeader, kernel_alignment)));
static_assert(hdr_at<0x234>(offsetof(SetupHeader, relocatable_kernel)));
static_assert(hdr_at<0x236>(offsetof(SetupHeader, xloadflags)));
static_assert(hdr_at<0x238>(offsetof(SetupHeader, cmdline_size)));
static_assert(hdr_at<0x250>(offsetof(SetupHeader, setup_data)));
static_assert(hdr_at<0x258>(offsetof(SetupHeader, pref_address)));
static_assert(hdr_at<0x260>(offsetof(SetupHeader, init_size)));
static_assert(hdr_at<0x268>(offsetof(SetupHeader, kernel_info_offset)));

}  // namespace vireo::loader
