// Smaller soft CPU behaviours: string port I/O (REP OUTSB/INSB), the CPUID model, RDTSC,
// #GP(0) for an MSR the model does not have, and an IST stack from the TSS.
#include <gtest/gtest.h>

#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using probe::CpuMode;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kIdt = 0x20000;

void put(Bytes& b, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

void gate(probe::ProbeGuest& g, unsigned vector, std::uint64_t handler, unsigned ist = 0) {
    const std::uint64_t lo = (handler & 0xffff) | (0x08ULL << 16) | (std::uint64_t{ist} << 32) |
                             (0x8eULL << 40) | (((handler >> 16) & 0xffff) << 48);
    ASSERT_TRUE(g.memory().write_obj(GuestAddress(kIdt + vector * 16), lo).ok());
    ASSERT_TRUE(g.memory().write_obj(GuestAddress(kIdt + vector * 16 + 8), handler >> 32).ok());
    auto s = *soft_vcpu(g).get_sregs();
    s.idt = {kIdt, 0xfff};
    ASSERT_TRUE(soft_vcpu(g).set_sregs(s).ok());
}

TEST(SoftMisc, RepOutsbAndRepInsb) {
    Bytes c = {0x48, 0xbe};  // mov rsi, 0x100000
    put(c, 0x100000, 8);
    c.insert(c.end(), {0xb9, 4, 0, 0, 0, 0x66, 0xba, 0xf8, 0x03, 0xf3, 0x6e});  // rep outsb
    c.insert(c.end(), {0x48, 0xbf});                                            // mov rdi, 0x100100
    put(c, 0x100100, 8);
    c.insert(c.end(), {0xb9, 3, 0, 0, 0, 0x66, 0xba, 0x60, 0x00, 0xf3, 0x6c, 0xf4});  // rep insb
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory().write(GuestAddress(0x100000), Bytes{'v', 'i', 'r', 'e'}).ok());
    probe::RecordingIo io;
    io.set_read_value(0x60, 0x5a);
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt);
    const auto acc = io.accesses();
    ASSERT_EQ(acc.size(), 7U);
    EXPECT_EQ(acc[0].value, 'v');
    EXPECT_EQ(acc[3].value, 'e');
    EXPECT_EQ(acc[3].address, 0x3f8U);
    EXPECT_EQ(acc[4].kind, probe::IoAccess::Kind::PioRead);
    Bytes in(4);
    ASSERT_TRUE(g->memory().read(GuestAddress(0x100100), std::span(in)).ok());
    EXPECT_EQ(in, (Bytes{0x5a, 0x5a, 0x5a, 0}));
    EXPECT_EQ(soft_vcpu(*g).stats()[ExitReason::PioWrite], 4U);
    EXPECT_EQ(soft_vcpu(*g).stats()[ExitReason::PioRead], 3U);
}

TEST(SoftMisc, CpuidIsQemu64Like) {
    // xor eax, eax; cpuid; mov r8, rbx; mov r9, rdx; mov r10, rcx;
    // mov eax, 0x80000001; cpuid; mov r11, rdx; mov eax, 7; xor ecx, ecx; cpuid; hlt
    const Bytes c = {0x31, 0xc0, 0x0f, 0xa2, 0x49, 0x89, 0xd8, 0x49, 0x89, 0xd1, 0x49,
                     0x89, 0xca, 0xb8, 0x01, 0x00, 0x00, 0x80, 0x0f, 0xa2, 0x49, 0x89,
                     0xd3, 0xb8, 0x07, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2, 0xf4};
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*g).get_regs();
    char vendor[13] = {};
    std::memcpy(vendor, &r.r8, 4);
    std::memcpy(vendor + 4, &r.r9, 4);
    std::memcpy(vendor + 8, &r.r10, 4);
    EXPECT_STREQ(vendor, "AuthenticAMD");
    EXPECT_NE(r.r11 & (1u << 29), 0U) << "long mode";
    EXPECT_NE(r.r11 & (1u << 20), 0U) << "NX";
    EXPECT_EQ(r.rbx & 0xffffffff, 0U) << "no SMEP/SMAP/FSGSBASE... in leaf 7";
}

TEST(SoftMisc, RdtscAdvances) {
    // rdtsc; shl rdx, 32; or rax, rdx; mov r8, rax; (spin) rdtsc; shl rdx, 32; or rax, rdx; hlt
    const Bytes c = {0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0x49,
                     0x89, 0xc0, 0xb9, 0x00, 0x10, 0x00, 0x00, 0xe2, 0xfe,  // mov ecx, 4096; loop $
                     0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0xf4};
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_GT(r.rax, r.r8);
    EXPECT_GT(*soft_vcpu(*g).tsc_khz(), 100000U);
}

TEST(SoftMisc, UnknownMsrRaisesGeneralProtection) {
    // mov ecx, 0x12345; rdmsr; hlt. #GP handler: pop rdx; mov r15, 1; hlt
    auto g = soft_guest(CpuMode::Long64, Bytes{0xb9, 0x45, 0x23, 0x01, 0x00, 0x0f, 0x32, 0xf4});
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory()
                    .write(GuestAddress(0x9000), Bytes{0x5a, 0x49, 0xc7, 0xc7, 1, 0, 0, 0, 0xf4})
                    .ok());
    gate(*g, 13, 0x9000);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_EQ(r.r15, 1U);
    EXPECT_EQ(r.rdx, 0U);
}

TEST(SoftMisc, InterruptStackTableEntryIsUsed) {
    // ud2 -> #UD gate with IST 1 (TSS + 36): mov r12, rsp; hlt
    auto g = soft_guest(CpuMode::Long64, Bytes{0x0f, 0x0b});
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory().write(GuestAddress(0x9000), Bytes{0x49, 0x89, 0xe4, 0xf4}).ok());
    ASSERT_TRUE(
        g->memory().write_obj(GuestAddress(probe::kTssAddress + 36), std::uint64_t{0x60008}).ok());
    gate(*g, 6, 0x9000, 1);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    EXPECT_EQ(soft_vcpu(*g).get_regs()->r12, 0x60000U - 40) << "IST1, aligned down to 16";
}

}  // namespace
}  // namespace vireo::soft::test

namespace vireo::soft::test {
namespace {

TEST(SoftMisc, FxsaveFxrstorAndControlWords) {
    // fninit; mov word [0x100000], 0x27f; fldcw [0x100000]; fnstcw [0x100002];
    // stmxcsr [0x100004]; pcmpeqb xmm3, xmm3; fxsave [0x100200]; pxor xmm3, xmm3;
    // fxrstor [0x100200]; pmovmskb eax, xmm3; hlt   (addresses through RBX = 0x100000)
    const Bytes c = {0x48, 0xc7, 0xc3, 0x00, 0x00, 0x10, 0x00,  // mov rbx, 0x100000
                     0xdb, 0xe3,                                // fninit
                     0x66, 0xc7, 0x03, 0x7f, 0x02,              // mov word [rbx], 0x27f
                     0xd9, 0x2b,                                // fldcw [rbx]
                     0xd9, 0x7b, 0x02,                          // fnstcw [rbx+2]
                     0x0f, 0xae, 0x5b, 0x04,                    // stmxcsr [rbx+4]
                     0x66, 0x0f, 0x74, 0xdb,                    // pcmpeqb xmm3, xmm3
                     0x0f, 0xae, 0x83, 0x00, 0x02, 0x00, 0x00,  // fxsave [rbx+0x200]
                     0x66, 0x0f, 0xef, 0xdb,                    // pxor xmm3, xmm3
                     0x0f, 0xae, 0x8b, 0x00, 0x02, 0x00, 0x00,  // fxrstor [rbx+0x200]
                     0x66, 0x0f, 0xd7, 0xc3,                    // pmovmskb eax, xmm3
                     0xf4};
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    auto& v = soft_vcpu(*g);
    auto s = *v.get_sregs();
    s.cr4 |= 1u << 9;  // OSFXSR
    ASSERT_TRUE(v.set_sregs(s).ok());
    probe::RecordingIo io;
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    ASSERT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    EXPECT_EQ(*g->memory().read_obj<std::uint16_t>(GuestAddress(0x100002)), 0x27fU);
    EXPECT_EQ(*g->memory().read_obj<std::uint32_t>(GuestAddress(0x100004)), 0x1f80U);
    EXPECT_EQ(*g->memory().read_obj<std::uint16_t>(GuestAddress(0x100200)), 0x27fU) << "FCW";
    EXPECT_EQ(v.get_regs()->rax, 0xffffU) << "XMM3 came back from the FXSAVE image";
}

TEST(SoftMisc, SseWithCr0TsRaisesDeviceNotAvailable) {
    // pxor xmm0, xmm0 with CR0.TS: #NM (vector 7); handler: mov r15, 7; hlt
    auto g = soft_guest(CpuMode::Long64, Bytes{0x66, 0x0f, 0xef, 0xc0, 0xf4});
    ASSERT_TRUE(g);
    ASSERT_TRUE(
        g->memory().write(GuestAddress(0x9000), Bytes{0x49, 0xc7, 0xc7, 7, 0, 0, 0, 0xf4}).ok());
    gate(*g, 7, 0x9000);
    auto& v = soft_vcpu(*g);
    auto s = *v.get_sregs();
    s.cr4 |= 1u << 9;
    s.cr0 |= 1u << 3;  // TS
    ASSERT_TRUE(v.set_sregs(s).ok());
    probe::RecordingIo io;
    ASSERT_EQ(v.run(io)->kind, VcpuExitKind::Halt);
    EXPECT_EQ(v.get_regs()->r15, 7U);
}

}  // namespace
}  // namespace vireo::soft::test

namespace vireo::soft::test {
namespace {

TEST(SoftMisc, TrapFlagSingleSteps) {
    // pushfq; or qword [rsp], 0x100; popfq; nop; nop; nop; hlt. #DB handler: inc r14;
    // cmp r14, 3; jne done; and qword [rsp+16], ~0x100 (clear TF in the frame); done: iretq.
    auto g = soft_guest(CpuMode::Long64, Bytes{0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00,
                                               0x9d, 0x90, 0x90, 0x90, 0xf4});
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory()
                    .write(GuestAddress(0x9000),
                           Bytes{0x49, 0xff, 0xc6, 0x49, 0x83, 0xfe, 0x03, 0x75, 0x09, 0x48,
                                 0x81, 0x64, 0x24, 0x10, 0xff, 0xfe, 0xff, 0xff, 0x48, 0xcf})
                    .ok());
    gate(*g, 1, 0x9000);
    probe::RecordingIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    EXPECT_EQ(soft_vcpu(*g).get_regs()->r14, 3U) << "one trap after each NOP";
}

}  // namespace
}  // namespace vireo::soft::test
