// Interpreter unit tests: hand-assembled snippets (bytes per SDM Vol. 2 opcode tables, annotated)
// on soft probe guests, for what the differential test cannot reach from user mode: exception
// delivery through the IDT, #PF with CR2 and its error code, SYSCALL/SYSRET, real mode with the
// IVT, self-modifying code, REP under request_exit, and hostile state that must not hurt the host.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "accel/kvm/kvm_state_convert.h"
#include "accel/open_accelerator.h"
#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using probe::CpuMode;
using probe::kCodeAddress;
using Bytes = std::vector<std::uint8_t>;

struct NullIo final : IoHandler {
    void pio_read(std::uint16_t, std::span<std::uint8_t> d) override {
        std::fill(d.begin(), d.end(), 0xff);
    }
    void pio_write(std::uint16_t, std::span<const std::uint8_t>) override {}
    void mmio_read(std::uint64_t, std::span<std::uint8_t> d) override {
        std::fill(d.begin(), d.end(), 0xff);
    }
    void mmio_write(std::uint64_t, std::span<const std::uint8_t>) override {}
};

void put64(Bytes& b, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

// A 64-bit interrupt gate (SDM Vol. 3 §6.14.1) to `handler` through selector 0x08, DPL 3.
void write_gate(probe::ProbeGuest& g, std::uint64_t idt, unsigned vector, std::uint64_t handler,
                unsigned ist = 0) {
    const std::uint64_t lo = (handler & 0xffff) | (0x08ULL << 16) | (std::uint64_t{ist} << 32) |
                             (0xeeULL << 40) | (((handler >> 16) & 0xffff) << 48);
    const std::uint64_t hi = handler >> 32;
    ASSERT_TRUE(g.memory().write_obj(GuestAddress(idt + vector * 16), lo).ok());
    ASSERT_TRUE(g.memory().write_obj(GuestAddress(idt + vector * 16 + 8), hi).ok());
}

TEST(SoftInterpreter, IntegerLoopCountsDown) {
    Bytes c = {0x48, 0xb9};  // mov rcx, 1000000
    put64(c, 1000000);
    Bytes loop = {0x48, 0xff, 0xc9,  // dec rcx
                  0x75, 0xfb,        // jnz -5
                  0xf4};             // hlt
    c.insert(c.end(), loop.begin(), loop.end());
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt);
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rcx, 0U);
    EXPECT_EQ(soft_vcpu(*g).interpreter().instructions(), 1U + 2 * 1000000 + 1);
}

TEST(SoftInterpreter, PageFaultIsDeliveredThroughTheIdtWithCr2AndErrorCode) {
    constexpr std::uint64_t kIdt = 0x20000, kHandler = 0x9000, kUnmapped = 0x40000000;
    Bytes c = {0x48, 0xb8};  // mov rax, kUnmapped (the page tables map only the first GiB)
    put64(c, kUnmapped);
    c.insert(c.end(), {0x48, 0x89, 0x18,  // mov [rax], rbx: a write to a not-present page
                       0xf4});
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    // Handler: pop rdx (error code); mov rbx, cr2 (0F 20 D3); hlt.
    const Bytes h = {0x5a, 0x0f, 0x20, 0xd3, 0xf4};
    ASSERT_TRUE(g->memory().write(GuestAddress(kHandler), h).ok());
    write_gate(*g, kIdt, 14, kHandler);
    auto s = *soft_vcpu(*g).get_sregs();
    s.idt = {kIdt, 0xfff};
    ASSERT_TRUE(soft_vcpu(*g).set_sregs(s).ok());
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_EQ(r.rbx, kUnmapped);
    EXPECT_EQ(r.rdx, 0x2U) << "error code: not present, write, supervisor";
    // The frame: RIP of the faulting instruction, CS, RFLAGS, RSP, SS (16-byte aligned).
    const auto saved_rip = g->memory().read_obj<std::uint64_t>(GuestAddress(r.rsp));
    EXPECT_EQ(*saved_rip, kCodeAddress + 10);
    EXPECT_EQ(soft_vcpu(*g).interpreter().last_fault(), 14);
}

TEST(SoftInterpreter, SyscallAndSysretRoundTrip) {
    constexpr std::uint64_t kEntry = 0x9000;
    // User: syscall; mov al, 1; out 0x80, al (IOPL=3); jmp $.
    const Bytes c = {0x0f, 0x05, 0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe};
    auto g = soft_guest(CpuMode::User64, c);
    ASSERT_TRUE(g);
    // Kernel: mov r12, rcx (49 89 CC); mov r13, cs (41 8C CD); swapgs; swapgs; sysretq.
    const Bytes k = {0x49, 0x89, 0xcc, 0x41, 0x8c, 0xcd, 0x0f, 0x01,
                     0xf8, 0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07};
    ASSERT_TRUE(g->memory().write(GuestAddress(kEntry), k).ok());
    auto& v = soft_vcpu(*g);
    auto s = *v.get_sregs();
    s.efer |= 1;  // EFER.SCE
    ASSERT_TRUE(v.set_sregs(s).ok());
    // STAR: SYSCALL CS=0x08 SS=0x10; SYSRET base 0x08 -> CS=0x18|3, SS=0x10|3.
    const MsrEntry msrs[] = {
        {0xc0000081, (0x08ULL << 32) | (0x08ULL << 48)}, {0xc0000082, kEntry}, {0xc0000084, 0x200}};
    ASSERT_TRUE(v.set_msrs(msrs).ok());
    probe::RecordingIo io;
    io.on_access([&](const probe::IoAccess&) { v.request_exit(); });
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted);
    const Regs r = *v.get_regs();
    EXPECT_EQ(r.r12, kCodeAddress + 2) << "RCX holds the return address";
    EXPECT_EQ(r.r13 & 0xffff, 0x08U) << "kernel CS after SYSCALL";
    EXPECT_EQ(r.r11 & 0x3000, 0x3000U) << "R11 holds the user RFLAGS (IOPL=3)";
    EXPECT_EQ(v.get_sregs()->cs.selector, 0x1bU);
    EXPECT_EQ(v.get_sregs()->cs.dpl, 3);
    EXPECT_EQ(io.accesses().size(), 1U);
}

TEST(SoftInterpreter, RealModeSoftwareInterruptThroughTheIvt) {
    // int 0x10; hlt. IVT[0x10] (at 0x40) -> 0000:9000: mov bx, 0x1234; iret.
    auto g = soft_guest(CpuMode::Real, Bytes{0xcd, 0x10, 0xf4});
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory().write_obj(GuestAddress(0x40), std::uint32_t{0x00009000}).ok());
    ASSERT_TRUE(g->memory().write(GuestAddress(0x9000), Bytes{0xbb, 0x34, 0x12, 0xcf}).ok());
    auto s = *soft_vcpu(*g).get_sregs();
    s.idt = {0, 0x3ff};
    ASSERT_TRUE(soft_vcpu(*g).set_sregs(s).ok());
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_EQ(r.rbx & 0xffff, 0x1234U);
    EXPECT_EQ(r.rip, kCodeAddress + 3);
    EXPECT_EQ(r.rsp, probe::kStackTop) << "IRET popped the 3-word frame";
}

TEST(SoftInterpreter, SelfModifyingCodeIsSeen) {
    // X: mov al, 0x11; test bl, bl; jnz done; inc bl; mov rcx, X+1; mov byte [rcx], 0x22;
    // jmp X; done: hlt.  The second pass must see the patched immediate.
    Bytes c = {0xb0, 0x11, 0x84, 0xdb, 0x75, 0x11, 0xfe, 0xc3, 0x48, 0xb9};
    put64(c, kCodeAddress + 1);
    c.insert(c.end(), {0xc6, 0x01, 0x22, 0xeb, 0xe9, 0xf4});
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt);
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rax & 0xff, 0x22U);
    EXPECT_GE(soft_vcpu(*g).interpreter().decode_stats().invalidations, 1U);
}

// The VMM writes code into guest RAM from the host side (a virtio-blk read of a program into a
// page that held other code): GuestMemory tells the soft VM (its write observer), and the next
// fetch decodes the new bytes instead of running the cached ones.
TEST(SoftInterpreter, HostWriteIntoDecodedCodeIsSeen) {
    const Bytes c = {0xb0, 0x11, 0xf4};  // mov al, 0x11; hlt
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    ASSERT_EQ(exit->kind, VcpuExitKind::Halt);
    ASSERT_EQ(soft_vcpu(*g).get_regs()->rax & 0xff, 0x11U);

    const std::uint8_t patched = 0x33;
    ASSERT_TRUE(g->memory().write_obj(GuestAddress(kCodeAddress + 1), patched).ok());
    auto r = *soft_vcpu(*g).get_regs();
    r.rip = kCodeAddress;
    ASSERT_TRUE(soft_vcpu(*g).set_regs(r).ok());
    exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt);
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rax & 0xff, 0x33U);
}

TEST(SoftInterpreter, EndlessRepStosStopsOnRequestExit) {
    // mov rdi, 0x100000; mov rcx, 2^40; rep stosb; hlt -- past RAM the stores are MMIO.
    Bytes c = {0x48, 0xbf};
    put64(c, 0x100000);
    c.insert(c.end(), {0x48, 0xb9});
    put64(c, 1ULL << 40);
    c.insert(c.end(), {0xf3, 0xaa, 0xf4});
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    NullIo io;
    auto exit = g->run(io, std::chrono::milliseconds(200));
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted);
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_LT(r.rcx, 1ULL << 40);
    EXPECT_GT(r.rcx, 0U);
    EXPECT_EQ(r.rip, kCodeAddress + 20) << "RIP stays on the REP instruction";
}

TEST(SoftInterpreter, DivideErrorAndUndefinedOpcodeAreGuestExceptions) {
    constexpr std::uint64_t kIdt = 0x20000;
    // xor ecx, ecx; div ecx (#DE) ... handler 0: mov r8, 0xde; ud2 -> handler 6: mov r9, 6; hlt
    auto g = soft_guest(CpuMode::Long64, Bytes{0x31, 0xc9, 0xf7, 0xf1, 0xf4});
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->memory()
                    .write(GuestAddress(0x9000), Bytes{0x49, 0xc7, 0xc0, 0xde, 0, 0, 0, 0x0f, 0x0b})
                    .ok());
    ASSERT_TRUE(
        g->memory().write(GuestAddress(0x9100), Bytes{0x49, 0xc7, 0xc1, 6, 0, 0, 0, 0xf4}).ok());
    write_gate(*g, kIdt, 0, 0x9000);
    write_gate(*g, kIdt, 6, 0x9100);
    auto s = *soft_vcpu(*g).get_sregs();
    s.idt = {kIdt, 0xfff};
    ASSERT_TRUE(soft_vcpu(*g).set_sregs(s).ok());
    NullIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_EQ(r.r8, 0xdeU);
    EXPECT_EQ(r.r9, 6U);
}

TEST(SoftInterpreter, HostileStateAndRandomCodeNeverHurtTheHost) {
    // Random bytes as code in every mode, with garbage in CR3/IDT/GDT: whatever happens, run()
    // returns (shutdown, halt, or the watchdog) and the host is fine.
    std::mt19937_64 rng(12345);
    NullIo io;
    for (int round = 0; round < 150; ++round) {
        Bytes code(256);
        for (auto& b : code) {
            b = static_cast<std::uint8_t>(rng());
        }
        const CpuMode mode = round % 3 == 0   ? CpuMode::Real
                             : round % 3 == 1 ? CpuMode::Long64
                                              : CpuMode::User64;
        auto g = soft_guest(mode, code);
        ASSERT_TRUE(g);
        auto& v = soft_vcpu(*g);
        if (round % 5 == 4) {
            auto s = *v.get_sregs();
            s.idt = {rng(), static_cast<std::uint16_t>(rng())};
            s.gdt = {rng(), static_cast<std::uint16_t>(rng())};
            ASSERT_TRUE(v.set_sregs(s).ok());
        }
        Regs r = *v.get_regs();
        r.rax = rng();
        r.rbx = rng();
        r.rcx = rng() % 100000;
        r.rsi = rng();
        r.rdi = rng();
        ASSERT_TRUE(v.set_regs(r).ok());
        auto exit = g->run(io, std::chrono::milliseconds(20));
        ASSERT_TRUE(exit.ok());
    }
    // A non-canonical RIP and page tables outside RAM: a #GP/#PF cascade, then shutdown.
    auto g = soft_guest(CpuMode::Long64, Bytes{0xf4});
    auto& v = soft_vcpu(*g);
    Regs r = *v.get_regs();
    r.rip = 0x8000000000000000ULL;
    ASSERT_TRUE(v.set_regs(r).ok());
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Shutdown);
    auto s = *v.get_sregs();
    s.cr3 = 0xfffff000;
    ASSERT_TRUE(v.set_sregs(s).ok());
    r.rip = kCodeAddress;
    ASSERT_TRUE(v.set_regs(r).ok());
    exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Shutdown);
}

TEST(SoftInterpreter, SnapshotOfTheCpuRoundTrips) {
    auto g = soft_guest(CpuMode::User64, Bytes{0x48, 0xff, 0xc3, 0xeb, 0xfb});  // inc rbx; jmp
    auto& v = soft_vcpu(*g);
    ASSERT_EQ(v.interpreter().step(1001).reason, StopReason::None);
    v.interpreter().state().xmm[5][3] = 0x42;
    v.interpreter().state().st[7][9] = 0x3f;
    v.interpreter().state().fcw = 0x27f;
    v.interpreter().state().msr.mtrr_fixed[4] = 0x0606060606060606ULL;
    auto st = v.save_state();
    ASSERT_TRUE(st.ok());
    // The neutral form: CPL as SS.DPL, x87/SSE in the XSAVE legacy region.
    EXPECT_EQ(st->sregs.ss.dpl, 3);
    EXPECT_EQ(st->xsave.at(xsave::kXmm0 + 5 * 16 + 3), 0x42);
    auto g2 = soft_guest(CpuMode::Real, Bytes{0xf4});
    auto& v2 = soft_vcpu(*g2);
    ASSERT_TRUE(v2.restore_state(*st).ok());
    EXPECT_EQ(v2.get_regs()->rbx, v.get_regs()->rbx);
    EXPECT_EQ(v2.get_regs()->rip, v.get_regs()->rip);
    EXPECT_EQ(v2.get_sregs()->cs.dpl, 3);
    const CpuState& c = v2.interpreter().state();
    EXPECT_EQ(c.cpl, 3);
    EXPECT_EQ(c.xmm[5][3], 0x42);
    EXPECT_EQ(c.st[7][9], 0x3f);
    EXPECT_EQ(c.fcw, 0x27f);
    EXPECT_EQ(c.msr.mtrr_fixed[4], 0x0606060606060606ULL);
}

// A state the interpreter cannot continue from is refused by name and changes nothing.
TEST(SoftInterpreter, RestoreRefusesWhatItCannotResume) {
    auto g = soft_guest(CpuMode::User64, Bytes{0x48, 0xff, 0xc3, 0xeb, 0xfb});
    auto& v = soft_vcpu(*g);
    ASSERT_EQ(v.interpreter().step(11).reason, StopReason::None);
    auto st = v.save_state();
    ASSERT_TRUE(st.ok());
    auto g2 = soft_guest(CpuMode::Real, Bytes{0xf4});
    auto& v2 = soft_vcpu(*g2);
    const auto before = v2.get_regs()->rip;
    const auto refused = [&](const VcpuState& bad, const char* says) {
        auto r = v2.restore_state(bad);
        ASSERT_FALSE(r.ok()) << says;
        EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
        EXPECT_EQ(v2.get_regs()->rip, before) << "a refused restore changed the vCPU";
    };
    VcpuState bad = *st;
    bad.events.nmi_pending = true;
    refused(bad, "NMI");
    bad = *st;
    bad.xsave.resize(100);
    refused(bad, "XSAVE area is 100 bytes");
    bad = *st;
    std::uint64_t avx = 0x7;
    std::memcpy(bad.xsave.data() + xsave::kXstateBv, &avx, 8);
    refused(bad, "x87 and SSE only");
    bad = *st;
    bad.msrs.push_back({0x4b564d02, 1});  // KVM's async page faults: the soft CPU has none
    refused(bad, "MSR 0x4b564d02");
    bad = *st;
    bad.mp_state = MpState::SipiReceived;
    refused(bad, "between INIT and SIPI");
    // Out-of-range bits are cut to what the interpreter implements.
    bad = *st;
    bad.sregs.cr4 |= 1ULL << 22;  // PKE
    bad.regs.rflags |= 1ULL << 40;
    ASSERT_TRUE(v2.restore_state(bad).ok());
    EXPECT_EQ(v2.interpreter().state().cr4 & (1ULL << 22), 0U);
    EXPECT_EQ(v2.interpreter().state().rflags >> 32, 0U);
}

// The neutral form is the meeting point of the accelerators: a soft vCPU's state goes through
// KVM's structs (what a KVM vCPU would be given, and what it would save) and comes back whole.
TEST(SoftInterpreter, StateSurvivesKvmsStructs) {
    auto g = soft_guest(CpuMode::User64, Bytes{0x48, 0xff, 0xc3, 0xeb, 0xfb});
    auto& v = soft_vcpu(*g);
    ASSERT_EQ(v.interpreter().step(101).reason, StopReason::None);
    v.interpreter().state().xmm[15][15] = 0x99;
    v.interpreter().state().dr[7] = 0x401;
    auto st = v.save_state();
    ASSERT_TRUE(st.ok());
    for (bool host_xsave : {true, false}) {
        auto k = kvm::from_neutral(*st, host_xsave);
        ASSERT_TRUE(k.ok()) << k.error().message();
        VcpuState back = kvm::to_neutral(*k);
        back.id = st->id;
        back.tsc_khz = st->tsc_khz;
        back.cpuid = st->cpuid;
        back.msrs = st->msrs;
        auto g2 = soft_guest(CpuMode::Real, Bytes{0xf4});
        auto& v2 = soft_vcpu(*g2);
        ASSERT_TRUE(v2.restore_state(back).ok());
        const CpuState& a = v.interpreter().state();
        const CpuState& b = v2.interpreter().state();
        EXPECT_EQ(a.gpr, b.gpr);
        EXPECT_EQ(a.rip, b.rip);
        EXPECT_EQ(a.cpl, b.cpl);
        EXPECT_EQ(a.xmm, b.xmm);
        EXPECT_EQ(a.dr[7], b.dr[7]);
        EXPECT_EQ(a.cr0, b.cr0);
        EXPECT_EQ(a.efer, b.efer);
        EXPECT_EQ(a.seg[kCs].l, b.seg[kCs].l);
    }
}

TEST(SoftAccel, OpenAcceleratorPicksSoftWhenKvmIsMissing) {
    EXPECT_EQ(*parse_accel_kind("soft"), AccelKind::Soft);
    EXPECT_FALSE(parse_accel_kind("tcg").ok());
    auto a = open_accelerator(AccelKind::Auto, "/nonexistent/kvm");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->kind, AccelKind::Soft);
    EXPECT_STREQ(a->accel->name(), "soft");
    EXPECT_NE(a->reason.find("/nonexistent/kvm"), std::string::npos) << a->reason;
    EXPECT_FALSE(open_accelerator(AccelKind::Kvm, "/nonexistent/kvm").ok());
    auto soft = open_accelerator(AccelKind::Soft);
    ASSERT_TRUE(soft.ok());
    EXPECT_TRUE(soft->accel->create_vm(VmOptions{.irqchip = true}).ok());
}

}  // namespace
}  // namespace vireo::soft::test
