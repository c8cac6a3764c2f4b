// Paging on the soft CPU (SDM Vol. 3 §4.5-4.8): 4 KiB pages under a 2 MiB-page identity map,
// #PF error codes and CR2 for each protection rule (present, R/W with CR0.WP, U/S, NX, reserved
// bits), accessed/dirty bits, and INVLPG.
#include <gtest/gtest.h>

#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using probe::CpuMode;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kIdt = 0x20000, kHandler = 0x9000, kPt = 0x180000;
constexpr std::uint64_t kBase = 0x200000;  // linear 2 MiB..4 MiB: 4 KiB pages from kPt
constexpr std::uint64_t kP = 1, kRw = 2, kUs = 4, kA = 0x20, kD = 0x40;
constexpr std::uint64_t kNx = 1ULL << 63;

struct Outcome {
    VcpuExitKind kind;
    bool faulted;
    std::uint64_t error, cr2;
};

void put64(Bytes& b, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

// mov rax, addr; <access>; hlt -- in `mode`, with PT entries `ptes` for pages 0..7 of kBase.
struct PagingGuest {
    std::unique_ptr<probe::ProbeGuest> g;

    PagingGuest(CpuMode mode, const Bytes& access, std::uint64_t addr,
                std::initializer_list<std::uint64_t> ptes, bool nxe = false, bool wp = true) {
        Bytes c = {0x48, 0xb8};
        put64(c, addr);
        c.insert(c.end(), access.begin(), access.end());
        c.push_back(mode == CpuMode::User64 ? 0xeb : 0xf4);  // jmp $ at CPL3 (HLT would #GP)
        if (mode == CpuMode::User64) {
            c.push_back(0xfe);
        }
        g = soft_guest(mode, c, 4 * 1024 * 1024);
        auto& m = g->memory();
        // PD[1] -> the 4 KiB page table; each PTE i maps kBase + i*4K to itself.
        EXPECT_TRUE(m.write_obj(GuestAddress(probe::kPdAddress + 8), kPt | kP | kRw | kUs).ok());
        std::uint64_t i = 0;
        for (std::uint64_t flags : ptes) {
            EXPECT_TRUE(m.write_obj(GuestAddress(kPt + 8 * i), (kBase + i * 4096) | flags).ok());
            ++i;
        }
        // #PF handler (CPL0): pop rdx (error code); mov rbx, cr2; mov r15, 1; hlt
        const Bytes h = {0x5a, 0x0f, 0x20, 0xd3, 0x49, 0xc7, 0xc7, 0x01, 0x00, 0x00, 0x00, 0xf4};
        EXPECT_TRUE(m.write(GuestAddress(kHandler), h).ok());
        const std::uint64_t gate = (kHandler & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40);
        EXPECT_TRUE(m.write_obj(GuestAddress(kIdt + 14 * 16), gate).ok());
        EXPECT_TRUE(m.write_obj(GuestAddress(probe::kTssAddress + 4), std::uint64_t{0x70000}).ok());
        auto& v = soft_vcpu(*g);
        auto s = *v.get_sregs();
        s.idt = {kIdt, 0xfff};
        if (nxe) {
            s.efer |= 1ULL << 11;
        }
        if (!wp) {
            s.cr0 &= ~x86::kCr0Wp;
        }
        EXPECT_TRUE(v.set_sregs(s).ok());
    }

    Outcome run() {
        auto& v = soft_vcpu(*g);
        struct NullIo final : IoHandler {
            void pio_read(std::uint16_t, std::span<std::uint8_t>) override {}
            void pio_write(std::uint16_t, std::span<const std::uint8_t>) override {}
            void mmio_read(std::uint64_t, std::span<std::uint8_t>) override {}
            void mmio_write(std::uint64_t, std::span<const std::uint8_t>) override {}
        } io;
        auto exit = g->run(io, std::chrono::milliseconds(200));
        const Regs r = *v.get_regs();
        return {exit.ok() ? exit->kind : VcpuExitKind::InternalError, r.r15 == 1, r.rdx, r.rbx};
    }
    std::uint64_t pte(unsigned i) {
        return *g->memory().read_obj<std::uint64_t>(GuestAddress(kPt + 8 * i));
    }
};

const Bytes kWrite = {0x89, 0x18};  // mov [rax], ebx
const Bytes kRead = {0x8b, 0x18};   // mov ebx, [rax]
const Bytes kCall = {0xff, 0xd0};   // call rax

TEST(SoftPaging, WriteToReadOnlyPageWithWpFaults) {
    PagingGuest t(CpuMode::Long64, kWrite, kBase + 0x1008, {kP | kRw, kP});
    const Outcome o = t.run();
    EXPECT_TRUE(o.faulted);
    EXPECT_EQ(o.error, 0x3U) << "present | write";
    EXPECT_EQ(o.cr2, kBase + 0x1008);
}

TEST(SoftPaging, SupervisorWriteToReadOnlyPageWithoutWpSucceedsAndSetsDirty) {
    PagingGuest t(CpuMode::Long64, kWrite, kBase + 0x1008, {kP | kRw, kP}, false, false);
    const Outcome o = t.run();
    EXPECT_EQ(o.kind, VcpuExitKind::Halt);
    EXPECT_FALSE(o.faulted);
    EXPECT_EQ(t.pte(1) & (kA | kD), kA | kD);
}

TEST(SoftPaging, UserReadOfSupervisorPageFaults) {
    PagingGuest t(CpuMode::User64, kRead, kBase + 0x10, {kP | kRw});
    const Outcome o = t.run();
    EXPECT_TRUE(o.faulted);
    EXPECT_EQ(o.error, 0x5U) << "present | user";
    EXPECT_EQ(o.cr2, kBase + 0x10);
}

TEST(SoftPaging, FetchFromNxPageFaultsWithInstructionFetchBit) {
    PagingGuest t(CpuMode::Long64, kCall, kBase + 0x2000, {kP | kRw, kP, kP | kRw | kNx}, true);
    const Outcome o = t.run();
    EXPECT_TRUE(o.faulted);
    EXPECT_EQ(o.error, 0x11U) << "present | instruction fetch";
    EXPECT_EQ(o.cr2, kBase + 0x2000);
}

TEST(SoftPaging, NxBitWithoutEferNxeIsReserved) {
    PagingGuest t(CpuMode::Long64, kRead, kBase + 0x2000, {kP, kP, kP | kNx});
    const Outcome o = t.run();
    EXPECT_TRUE(o.faulted);
    EXPECT_EQ(o.error, 0x9U) << "present | reserved bit";
}

TEST(SoftPaging, NotPresentAndReservedAddressBits) {
    PagingGuest t(CpuMode::Long64, kRead, kBase + 0x3000, {kP, kP, kP, 0});
    EXPECT_EQ(t.run().error, 0x0U);
    PagingGuest r(CpuMode::Long64, kWrite, kBase + 0x3000, {kP, kP, kP, kP | kRw | (1ULL << 45)});
    const Outcome o = r.run();
    EXPECT_TRUE(o.faulted);
    EXPECT_EQ(o.error, 0xbU) << "present | write | reserved bit";
}

TEST(SoftPaging, ReadSetsAccessedOnly) {
    PagingGuest t(CpuMode::Long64, kRead, kBase + 0x4000, {kP, kP, kP, kP, kP | kRw});
    EXPECT_FALSE(t.run().faulted);
    EXPECT_EQ(t.pte(4) & (kA | kD), kA);
}

TEST(SoftPaging, InvlpgDropsAStaleTranslation) {
    // Read page 4 (cached in the TLB), point PTE 4 at page 5's frame, read again without and
    // then with INVLPG: the second read may still see the old frame, the third must not.
    constexpr std::uint64_t kPage4 = kBase + 0x4000, kPage5 = kBase + 0x5000;
    Bytes c;
    c.insert(c.end(), {0x8b, 0x18});  // mov ebx, [rax]
    c.insert(c.end(), {0x48, 0xb9});  // mov rcx, &PTE4
    put64(c, kPt + 8 * 4);
    c.insert(c.end(), {0x48, 0xba});  // mov rdx, page5 | P | RW
    put64(c, kPage5 | kP | kRw);
    c.insert(c.end(), {0x48, 0x89, 0x11});  // mov [rcx], rdx
    c.insert(c.end(), {0x0f, 0x01, 0x38});  // invlpg [rax]
    c.insert(c.end(), {0x8b, 0x30});        // mov esi, [rax]
    PagingGuest t(CpuMode::Long64, c, kPage4, {kP, kP, kP, kP, kP | kRw, kP | kRw});
    ASSERT_TRUE(t.g->memory().write_obj(GuestAddress(kPage4), std::uint32_t{0x44444444}).ok());
    ASSERT_TRUE(t.g->memory().write_obj(GuestAddress(kPage5), std::uint32_t{0x55555555}).ok());
    const Outcome o = t.run();
    EXPECT_EQ(o.kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*t.g).get_regs();
    EXPECT_EQ(r.rbx & 0xffffffff, 0x44444444U);
    EXPECT_EQ(r.rsi & 0xffffffff, 0x55555555U);
}

}  // namespace
}  // namespace vireo::soft::test
