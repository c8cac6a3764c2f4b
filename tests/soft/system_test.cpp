// System-level soft CPU tests: the boot path from real mode through 32-bit protected mode to
// long mode (LGDT, MOV CR0/CR3/CR4, WRMSR EFER, far jumps), an exception from CPL3 delivered on
// the TSS's RSP0 stack and IRETQ back, and LOCK-prefixed increments from two vCPUs on two host
// threads that must not lose a single update.
#include <gtest/gtest.h>

#include <thread>

#include "memory/guest_memory.h"
#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using probe::CpuMode;
using probe::kCodeAddress;
using Bytes = std::vector<std::uint8_t>;

void put(Bytes& b, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

TEST(SoftSystem, RealModeToProtectedModeToLongMode) {
    // 16-bit, at 0x8000: cli; lgdt [0x7000]; mov eax, cr0; or al, 1; mov cr0, eax;
    // jmp 0x08:0x8100
    Bytes real = {0xfa, 0x0f, 0x01, 0x16, 0x00, 0x70, 0x0f, 0x20, 0xc0, 0x0c,
                  0x01, 0x0f, 0x22, 0xc0, 0xea, 0x00, 0x81, 0x08, 0x00};
    // 32-bit, at 0x8100: mov ax, 0x10; mov ds/ss/es, ax; CR4.PAE; CR3 = 0x10000;
    // EFER.LME (rdmsr/wrmsr); CR0.PG; jmp 0x18:0x8200
    Bytes prot = {0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0x8e, 0xc0, 0x0f, 0x20,
                  0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x01, 0x00,
                  0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00,
                  0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00,
                  0x80, 0x0f, 0x22, 0xc0, 0xea, 0x00, 0x82, 0x00, 0x00, 0x18, 0x00};
    // 64-bit, at 0x8200: mov rax, 0x1234567890; mov al, 0x64; out 0xe0, al; hlt
    Bytes lm = {0x48, 0xb8};
    put(lm, 0x1234567890, 8);
    lm.insert(lm.end(), {0xb0, 0x64, 0xe6, 0xe0, 0xf4});
    auto g = soft_guest(CpuMode::Real, real);
    ASSERT_TRUE(g);
    auto& m = g->memory();
    ASSERT_TRUE(m.write(GuestAddress(0x8100), prot).ok());
    ASSERT_TRUE(m.write(GuestAddress(0x8200), lm).ok());
    // GDT at 0x7100: null, 32-bit code, data, 64-bit code; GDTR at 0x7000.
    const std::uint64_t gdt[] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL,
                                 0x00af9a000000ffffULL};
    for (std::size_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(m.write_obj(GuestAddress(0x7100 + 8 * i), gdt[i]).ok());
    }
    ASSERT_TRUE(m.write_obj(GuestAddress(0x7000), std::uint16_t{0x1f}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x7002), std::uint32_t{0x7100}).ok());
    // Page tables: PML4 0x10000 -> PDPT 0x11000 -> PD 0x12000 with one 2 MiB identity page.
    ASSERT_TRUE(m.write_obj(GuestAddress(0x10000), std::uint64_t{0x11003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x11000), std::uint64_t{0x12003}).ok());
    ASSERT_TRUE(m.write_obj(GuestAddress(0x12000), std::uint64_t{0x83}).ok());
    probe::RecordingIo io;
    auto exit = soft_vcpu(*g).run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    const Sregs s = *soft_vcpu(*g).get_sregs();
    EXPECT_NE(s.efer & x86::kEferLma, 0U);
    EXPECT_EQ(s.cs.selector, 0x18);
    EXPECT_EQ(s.cs.l, 1);
    EXPECT_EQ(soft_vcpu(*g).get_regs()->rax, 0x1234567864U);
    const std::vector<probe::IoAccess> expected = {
        {probe::IoAccess::Kind::PioWrite, 0xe0, 1, 0x64}};
    EXPECT_EQ(io.accesses(), expected);
}

TEST(SoftSystem, UserExceptionSwitchesToRsp0AndIretqReturns) {
    constexpr std::uint64_t kIdt = 0x20000, kHandler = 0x9000, kRsp0 = 0x50000;
    // User: ud2; mov al, 1; out 0x80, al; jmp $
    auto g = soft_guest(CpuMode::User64, Bytes{0x0f, 0x0b, 0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe});
    ASSERT_TRUE(g);
    // Handler: mov r12, rsp; mov r13, cs; add qword [rsp], 2; iretq
    const Bytes h = {0x49, 0x89, 0xe4, 0x41, 0x8c, 0xcd, 0x48, 0x83, 0x04, 0x24, 0x02, 0x48, 0xcf};
    ASSERT_TRUE(g->memory().write(GuestAddress(kHandler), h).ok());
    const std::uint64_t lo = (kHandler & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40);
    ASSERT_TRUE(g->memory().write_obj(GuestAddress(kIdt + 6 * 16), lo).ok());
    ASSERT_TRUE(g->memory().write_obj(GuestAddress(probe::kTssAddress + 4), kRsp0).ok());
    auto& v = soft_vcpu(*g);
    auto s = *v.get_sregs();
    s.idt = {kIdt, 0xfff};
    ASSERT_TRUE(v.set_sregs(s).ok());
    probe::RecordingIo io;
    io.on_access([&](const probe::IoAccess&) { v.request_exit(); });
    auto exit = v.run(io);
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Interrupted) << exit->detail;
    const Regs r = *v.get_regs();
    EXPECT_EQ(r.r12, kRsp0 - 40) << "the handler ran on RSP0 with a 5-qword frame";
    EXPECT_EQ(r.r13 & 0xffff, 0x08U);
    EXPECT_EQ(r.rsp, probe::kStackTop) << "IRETQ restored the user stack";
    EXPECT_EQ(v.get_sregs()->cs.dpl, 3);
    EXPECT_EQ(io.accesses().size(), 1U);
}

TEST(SoftSystem, LockedIncrementsFromTwoVcpusAreAtomic) {
    constexpr std::uint32_t kPerCpu = 300000;
    const MemoryRegionSpec spec{GuestAddress(0), 0x100000};
    auto mem = GuestMemory::create(std::span(&spec, 1));
    ASSERT_TRUE(mem.ok());
    SoftVm vm;
    const auto& region = mem->regions()[0];
    ASSERT_TRUE(vm.map_memory({0, region.start, region.size, region.host, false, false}).ok());
    // 16-bit: L: lock inc dword [0x100]; dec ecx; jnz L; hlt
    const Bytes code = {0xf0, 0x66, 0xff, 0x06, 0x00, 0x01, 0x66, 0x49, 0x75, 0xf6, 0xf4};
    ASSERT_TRUE(mem->write(GuestAddress(kCodeAddress), code).ok());
    std::vector<std::unique_ptr<Vcpu>> cpus;
    for (std::uint32_t id = 0; id < 2; ++id) {
        auto c = vm.create_vcpu(id);
        ASSERT_TRUE(c.ok());
        Sregs s = *(*c)->get_sregs();
        for (Segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
            seg->base = 0;
            seg->selector = 0;
            seg->limit = 0xffff;
        }
        ASSERT_TRUE((*c)->set_sregs(s).ok());
        Regs r;
        r.rip = kCodeAddress;
        r.rcx = kPerCpu;
        r.rsp = 0x7000 - 0x100 * id;
        ASSERT_TRUE((*c)->set_regs(r).ok());
        cpus.push_back(std::move(c).value());
    }
    struct NullIo final : IoHandler {
        void pio_read(std::uint16_t, std::span<std::uint8_t>) override {}
        void pio_write(std::uint16_t, std::span<const std::uint8_t>) override {}
        void mmio_read(std::uint64_t, std::span<std::uint8_t>) override {}
        void mmio_write(std::uint64_t, std::span<const std::uint8_t>) override {}
    };
    std::vector<std::thread> threads;
    std::vector<VcpuExitKind> exits(2, VcpuExitKind::InternalError);
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            NullIo io;
            auto e = cpus[static_cast<std::size_t>(i)]->run(io);
            exits[static_cast<std::size_t>(i)] = e.ok() ? e->kind : VcpuExitKind::InternalError;
        });
    }
    for (auto& t : threads) {
        t.join();
    }

    EXPECT_EQ(exits[0], VcpuExitKind::Halt);
    EXPECT_EQ(exits[1], VcpuExitKind::Halt);
    EXPECT_EQ(*mem->read_obj<std::uint32_t>(GuestAddress(0x100)), 2 * kPerCpu);
}

}  // namespace
}  // namespace vireo::soft::test
