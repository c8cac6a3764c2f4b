#include "arch/x86_64/boot_cpu.h"

namespace vireo::x86 {

namespace {

// GDT descriptors (SDM Vol. 3A §3.4.5): flags nibble << 52 | access byte << 40 | limit/base.
constexpr std::uint64_t gdt_entry(std::uint16_t flags_access, std::uint32_t base,
                                  std::uint32_t limit) {
    return ((static_cast<std::uint64_t>(base) & 0xff000000ULL) << 32) |
           ((static_cast<std::uint64_t>(base) & 0x00ffffffULL) << 16) |
           (static_cast<std::uint64_t>(limit) & 0x0000ffffULL) |
           ((static_cast<std::uint64_t>(limit) & 0x000f0000ULL) << 32) |
           (static_cast<std::uint64_t>(flags_access & 0xf0ff) << 40);
}

// Unpacks a descriptor into the hidden segment cache KVM loads.
Segment segment_from_gdt(std::uint64_t d, std::uint16_t selector) {
    Segment s;
    s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
    const std::uint32_t limit =
        static_cast<std::uint32_t>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
    s.g = static_cast<std::uint8_t>((d >> 55) & 1);
    s.limit = s.g ? (limit << 12) | 0xfff : limit;
    s.selector = selector;
    s.type = static_cast<std::uint8_t>((d >> 40) & 0xf);
    s.s = static_cast<std::uint8_t>((d >> 44) & 1);
    s.dpl = static_cast<std::uint8_t>((d >> 45) & 3);
    s.present = static_cast<std::uint8_t>((d >> 47) & 1);
    s.avl = static_cast<std::uint8_t>((d >> 52) & 1);
    s.l = static_cast<std::uint8_t>((d >> 53) & 1);
    s.db = static_cast<std::uint8_t>((d >> 54) & 1);
    s.unusable = s.present ? 0 : 1;
    return s;
}

// Access 0x9b: present, DPL0, code, execute/read, accessed; 0x93: data read/write, accessed;
// 0x8b: busy 32/64-bit TSS. Flags 0xa: G + L (64-bit code); 0xc: G + D/B (32-bit).
constexpr std::uint64_t kCode64 = gdt_entry(0xa09b, 0, 0xfffff);
constexpr std::uint64_t kCode32 = gdt_entry(0xc09b, 0, 0xfffff);
constexpr std::uint64_t kData = gdt_entry(0xc093, 0, 0xfffff);
constexpr std::uint64_t kTss = gdt_entry(0x808b, 0, 0xfffff);

}  // namespace

Result<BootCpuState> setup_boot_cpu(GuestMemory& mem, EntryMode mode, std::uint64_t entry,
                                    std::uint64_t boot_info, const Sregs& base) {
    const bool long_mode = mode == EntryMode::Long64;
    // Slots 0 and 1 null so that CS/DS land on Linux's __BOOT_CS/__BOOT_DS numbers.
    const std::uint64_t gdt[] = {0, 0, long_mode ? kCode64 : kCode32, kData, kTss};
    for (std::size_t i = 0; i < std::size(gdt); ++i) {
        if (auto r = mem.write_obj(GuestAddress(kBootGdtAddress + i * 8), gdt[i]); !r) {
            return r.error().wrap("boot GDT");
        }
    }
    if (auto r = mem.write_obj(GuestAddress(kBootIdtAddress), std::uint64_t{0}); !r) {
        return r.error().wrap("boot IDT");
    }

    BootCpuState st;
    Sregs& s = st.sregs;
    s = base;
    s.gdt = {kBootGdtAddress, static_cast<std::uint16_t>(sizeof(gdt) - 1)};
    s.idt = {kBootIdtAddress, 7};
    s.cs = segment_from_gdt(gdt[2], kBootCsSelector);
    s.ds = s.es = s.fs = s.gs = s.ss = segment_from_gdt(gdt[3], kBootDsSelector);
    s.tr = segment_from_gdt(gdt[4], kBootTssSelector);
    s.ldt = Segment{};
    s.ldt.type = 0x2;
    s.ldt.unusable = 1;
    s.cr0 = kCr0Pe | kCr0Et;  // protected mode; the kernel sets the rest
    s.cr4 = 0;
    s.efer = 0;

    if (long_mode) {
        // PML4[0] -> PDPT; PDPT[0..3] -> 4 page directories of 512 2 MiB pages each.
        constexpr std::uint64_t kPresentWritable = 0x3;
        constexpr std::uint64_t kLargePage = 0x80;
        auto w = mem.write_obj(GuestAddress(kPml4Address), kPdptAddress | kPresentWritable);
        for (std::uint64_t i = 0; w && i < kIdentityMapSize >> 30; ++i) {
            w = mem.write_obj(GuestAddress(kPdptAddress + i * 8),
                              (kPdAddress + i * 0x1000) | kPresentWritable);
        }
        for (std::uint64_t i = 0; w && i < kIdentityMapSize >> 21; ++i) {
            w = mem.write_obj(GuestAddress(kPdAddress + i * 8),
                              (i << 21) | kPresentWritable | kLargePage);
        }
        if (!w) {
            return w.error().wrap("boot page tables");
        }
        s.cr3 = kPml4Address;
        s.cr4 = kCr4Pae;
        s.cr0 |= kCr0Pg;
        s.efer = kEferLme | kEferLma;
    }

    Regs& r = st.regs;
    r = Regs{};
    r.rip = entry;
    r.rflags = 0x2;  // interrupts off
    if (long_mode) {
        r.rsp = r.rbp = kBootStackPointer;
        r.rsi = boot_info;
    } else {
        r.rbx = boot_info;
    }
    return st;
}

std::vector<MsrEntry> boot_msrs() {
    // Indices from SDM Vol. 4 "Model-Specific Registers".
    constexpr std::uint32_t kSysenterCs = 0x174, kSysenterEsp = 0x175, kSysenterEip = 0x176;
    constexpr std::uint32_t kStar = 0xc0000081, kLstar = 0xc0000082, kCstar = 0xc0000083;
    constexpr std::uint32_t kSyscallMask = 0xc0000084, kKernelGsBase = 0xc0000102;
    constexpr std::uint32_t kTsc = 0x10, kMiscEnable = 0x1a0, kMtrrDefType = 0x2ff;
    constexpr std::uint64_t kMiscEnableFastString = 1;
    constexpr std::uint64_t kMtrrEnable = 1ULL << 11, kMemTypeWriteBack = 6;
    return {
        {kSysenterCs, 0},
        {kSysenterEsp, 0},
        {kSysenterEip, 0},
        {kStar, 0},
        {kLstar, 0},
        {kCstar, 0},
        {kSyscallMask, 0},
        {kKernelGsBase, 0},
        {kTsc, 0},
        {kMiscEnable, kMiscEnableFastString},
        {kMtrrDefType, kMtrrEnable | kMemTypeWriteBack},
    };
}

Result<void> install_reset_vector(GuestMemory& mem, std::uint16_t port, std::uint8_t value) {
    // 16-bit code: mov dx, port; mov al, value; out dx, al; cli; hlt; jmp short hlt.
    const std::uint8_t stub[] = {
        0xba,
        static_cast<std::uint8_t>(port),
        static_cast<std::uint8_t>(port >> 8),
        0xb0,
        value,
        0xee,
        0xfa,
        0xf4,
        0xeb,
        0xfd,
    };
    static_assert(sizeof(stub) <= 16, "the reset vector has 16 bytes below 1 MiB");
    if (auto r = mem.write(GuestAddress(kResetVectorAddress), stub); !r) {
        return r.error().wrap("reset vector");
    }
    return ok();
}

void setup_lapic_lints(LapicState& lapic) {
    // LVT LINT0 at 0x350, LINT1 at 0x360; delivery mode in bits 8..10 (SDM Vol. 3A §11.5.1).
    constexpr std::size_t kLint0 = 0x350, kLint1 = 0x360;
    constexpr std::uint32_t kModeMask = 0x700, kExtInt = 0x700, kNmi = 0x400;
    lapic.write(kLint0, (lapic.read(kLint0) & ~kModeMask) | kExtInt);
    lapic.write(kLint1, (lapic.read(kLint1) & ~kModeMask) | kNmi);
}

}  // namespace vireo::x86
