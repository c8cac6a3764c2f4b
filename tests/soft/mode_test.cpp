// Privilege and mode changes outside plain 64-bit code: a CPL3 exception in 32-bit protected
// mode switching to the TSS's SS0:ESP0 and IRET back to ring 3 (SDM Vol. 3 §6.12.1), and a far
// jump from 64-bit mode into a 32-bit compatibility-mode code segment (SDM Vol. 3 §5.2.1).
#include <gtest/gtest.h>

#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

Segment seg32(std::uint16_t sel, std::uint8_t type, std::uint8_t dpl) {
    Segment s;
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = sel;
    s.type = type;
    s.present = 1;
    s.s = 1;
    s.dpl = dpl;
    s.db = 1;
    s.g = 1;
    return s;
}

TEST(SoftModes, Ring3ExceptionInProtectedModeUsesTheTssStackAndIretReturns) {
    // Ring 3: ud2; mov al, 1; out 0x80, al (IOPL 3); jmp $
    auto g =
        soft_guest(probe::CpuMode::Real, Bytes{0x0f, 0x0b, 0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe});
    ASSERT_TRUE(g);
    auto& m = g->memory();
    // GDT at 0x500: null, ring-0 code/data, ring-3 code/data, 32-bit TSS at 0x600.
    const std::uint64_t tss = 0x67 | (0x600ULL << 16) | (0x89ULL << 40);
    const std::uint64_t gdt[] = {0,
                                 0x00cf9a000000ffffULL,
                                 0x00cf92000000ffffULL,
                                 0x00cffa000000ffffULL,
                                 0x00cff2000000ffffULL,
                                 tss};
    for (std::size_t i = 0; i < std::size(gdt); ++i) {
        ASSERT_TRUE(m.write_obj(GuestAddress(0x500 + 8 * i), gdt[i]).ok());
    }
    ASSERT_TRUE(m.write_obj(GuestAddress(0x604), std::uint32_t{0x70000}).ok());  // ESP0
    ASSERT_TRUE(m.write_obj(GuestAddress(0x608), std::uint32_t{0x10}).ok());     // SS0
    // IDT at 0x20000: #UD -> 0x08:0x9000, 32-bit interrupt gate.
    const std::uint64_t gate = 0x9000 | (0x08ULL << 16) | (0x8eULL << 40);
    ASSERT_TRUE(m.write_obj(GuestAddress(0x20000 + 6 * 8), gate).ok());
    // Handler: mov ebx, esp; mov ecx, ss; add dword [esp], 2; iretd
    ASSERT_TRUE(
        m.write(GuestAddress(0x9000), Bytes{0x89, 0xe3, 0x8c, 0xd1, 0x83, 0x04, 0x24, 0x02, 0xcf})
            .ok());
    auto& v = soft_vcpu(*g);
    Sregs s = *v.get_sregs();
    s.cs = seg32(0x1b, 0xb, 3);
    s.ds = s.es = s.fs = s.gs = s.ss = seg32(0x23, 0x3, 3);
    s.tr = Segment{};
    s.tr.base = 0x600;
    s.tr.limit = 0x67;
    s.tr.selector = 0x28;
    s.tr.type = 0xb;
    s.tr.present = 1;
    s.gdt = {0x500, 47};
    s.idt = {0x20000, 0x7ff};
    s.cr0 = x86::kCr0Pe | x86::kCr0Et;
    ASSERT_TRUE(v.set_sregs(s).ok());
    Regs r;
    r.rip = probe::kCodeAddress;
    r.rsp = 0x7ff0;
    r.rflags = 0x3002;  // IOPL 3
    ASSERT_TRUE(v.set_regs(r).ok());
    probe::RecordingIo io;
    io.on_access([&](const probe::IoAccess&) { v.request_exit(); });
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted) << exit->detail;
    const Regs out = *v.get_regs();
    EXPECT_EQ(out.rbx, 0x70000U - 20) << "SS, ESP, EFLAGS, CS, EIP on the ring-0 stack";
    EXPECT_EQ(out.rcx & 0xffff, 0x10U);
    EXPECT_EQ(out.rsp, 0x7ff0U) << "IRET restored the ring-3 stack";
    EXPECT_EQ(v.get_sregs()->cs.dpl, 3);
    EXPECT_EQ(v.get_sregs()->ss.selector, 0x23);
    EXPECT_EQ(io.accesses().size(), 1U);
}

TEST(SoftModes, FarJumpIntoCompatibilityMode) {
    // 64-bit: jmp far [rip+0] -> m16:32 {0x8100, 0x38}; 32-bit at 0x8100: mov eax, 0x12345678;
    // mov ebx, esp; hlt
    auto g = soft_guest(probe::CpuMode::Long64, Bytes{0xff, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                      0x81, 0x00, 0x00, 0x38, 0x00});
    ASSERT_TRUE(g);
    auto& m = g->memory();
    ASSERT_TRUE(
        m.write(GuestAddress(0x8100), Bytes{0xb8, 0x78, 0x56, 0x34, 0x12, 0x89, 0xe3, 0xf4}).ok());
    // A 32-bit ring-0 code segment at GDT slot 0x38 (the probe's GDT ends at 0x37).
    std::uint64_t gdt[8];
    for (int i = 0; i < 7; ++i) {
        gdt[i] = *m.read_obj<std::uint64_t>(GuestAddress(probe::kGdtAddress + 8 * i));
    }
    gdt[7] = 0x00cf9a000000ffffULL;
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(m.write_obj(GuestAddress(0x7000 + 8 * i), gdt[i]).ok());
    }
    auto& v = soft_vcpu(*g);
    Sregs s = *v.get_sregs();
    s.gdt = {0x7000, 63};
    ASSERT_TRUE(v.set_sregs(s).ok());
    probe::RecordingIo io;
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    const Sregs after = *v.get_sregs();
    EXPECT_EQ(after.cs.selector, 0x38);
    EXPECT_EQ(after.cs.l, 0);
    EXPECT_EQ(after.cs.db, 1);
    EXPECT_NE(after.efer & x86::kEferLma, 0U) << "still in IA-32e mode";
    EXPECT_EQ(v.get_regs()->rax, 0x12345678U);
    EXPECT_EQ(v.get_regs()->rip, 0x8108U);
}

}  // namespace
}  // namespace vireo::soft::test
