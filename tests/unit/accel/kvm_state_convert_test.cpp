// KVM's vCPU structs to and from the neutral VcpuState: nothing KVM saves is lost on the way
// through, and what KVM cannot take is refused by name.
#include <gtest/gtest.h>

#include <cstring>

#include "accel/kvm/kvm_state_convert.h"
#include "machine/snapshot_fixture.h"

namespace vireo::kvm {
namespace {

template <typename T>
bool same_bytes(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

TEST(KvmStateConvert, EveryPieceRoundTrips) {
    const KvmVcpuState k = fixture::fixture_kvm_vcpu();
    auto back = from_neutral(to_neutral(k), /*host_xsave=*/true);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_TRUE(same_bytes(back->mp, k.mp));
    EXPECT_TRUE(same_bytes(back->regs, k.regs));
    EXPECT_TRUE(same_bytes(back->sregs, k.sregs));
    EXPECT_TRUE(same_bytes(back->xsave, k.xsave));
    EXPECT_TRUE(same_bytes(back->xcrs, k.xcrs));
    EXPECT_TRUE(same_bytes(back->debugregs, k.debugregs));
    EXPECT_TRUE(same_bytes(back->lapic, k.lapic));
    EXPECT_TRUE(same_bytes(back->events, k.events));
}

// A KVM without XSAVE saves kvm_fpu: it becomes an XSAVE area with x87 and SSE, and goes back.
TEST(KvmStateConvert, FpuWithoutXsave) {
    KvmVcpuState k = fixture::fixture_kvm_vcpu();
    k.has_xsave = false;
    k.has_xcrs = false;
    k.fpu.fcw = 0x27f;
    k.fpu.fsw = 0x4000;
    k.fpu.ftwx = 0x81;
    k.fpu.last_opcode = 0x1d9;
    k.fpu.last_ip = 0xffffffff81234567;
    k.fpu.last_dp = 0x7ffc0000;
    k.fpu.fpr[3][9] = 0x40;
    k.fpu.xmm[15][0] = 0x5a;
    k.fpu.mxcsr = 0x1fa0;
    const VcpuState n = to_neutral(k);
    ASSERT_EQ(n.xsave.size(), xsave::kMinSize);
    EXPECT_EQ(n.xsave[xsave::kSt0 + 3 * 16 + 9], 0x40);
    EXPECT_EQ(n.xsave[xsave::kXmm0 + 15 * 16], 0x5a);
    auto back = from_neutral(n, /*host_xsave=*/false);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_FALSE(back->has_xsave);
    EXPECT_TRUE(same_bytes(back->fpu, k.fpu));
    // And onto a KVM with XSAVE: the legacy region and XCR0 = x87 (the reset value).
    auto onto_xsave = from_neutral(n, /*host_xsave=*/true);
    ASSERT_TRUE(onto_xsave.ok());
    EXPECT_EQ(reinterpret_cast<const std::uint8_t*>(onto_xsave->xsave.region)[xsave::kXmm0 + 240],
              0x5a);
    EXPECT_EQ(onto_xsave->xcrs.xcrs[0].value, 1U);
}

TEST(KvmStateConvert, RefusesWhatKvmCannotTake) {
    const VcpuState n = to_neutral(fixture::fixture_kvm_vcpu());
    // AVX state onto a KVM without XSAVE.
    auto r = from_neutral(n, /*host_xsave=*/false);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("no XSAVE"), std::string::npos) << r.error().message();
    // State beyond KVM_SET_XSAVE's 4 KiB.
    VcpuState big = n;
    big.xsave.resize(8192, 0);
    EXPECT_TRUE(from_neutral(big, true).ok()) << "zeros beyond 4 KiB are nothing lost";
    big.xsave[6000] = 1;
    r = from_neutral(big, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("beyond"), std::string::npos) << r.error().message();
    VcpuState payload = n;
    payload.events.exception_has_payload = true;
    r = from_neutral(payload, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("payload"), std::string::npos);
    VcpuState short_area = n;
    short_area.xsave.resize(64);
    EXPECT_FALSE(from_neutral(short_area, true).ok());
    VcpuState odd = n;
    odd.mp_state = static_cast<MpState>(9);
    EXPECT_FALSE(from_neutral(odd, true).ok());
}

// Without KVM's payload capability a raised exception is handed over as being delivered.
TEST(KvmStateConvert, PendingExceptionIsDeliveredOnKvm) {
    VcpuState n = to_neutral(fixture::fixture_kvm_vcpu());
    n.events.exception_injected = false;
    n.events.exception_pending = true;
    n.events.exception_vector = 13;
    auto k = from_neutral(n, true);
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(k->events.exception.injected, 1);
    EXPECT_EQ(k->events.exception.pending, 0);
    EXPECT_EQ(k->events.exception.nr, 13);
}

TEST(KvmStateConvert, VersionOneSectionWithAWrongSizedStructIsRefused) {
    auto v1 = load_vcpu_section_v1(std::vector<std::uint8_t>(3, 0));
    EXPECT_FALSE(v1.ok());
    // Read the fixture's section, then cut one byte off its sregs blob by rewriting the count:
    // rather than hand-editing bytes, encode a version-1 section whose sregs is short.
    struct Blobs {
        std::uint32_t id = 0, tsc_khz = 0;
        std::vector<CpuidEntry> cpuid;
        std::vector<std::uint8_t> regs = std::vector<std::uint8_t>(sizeof(kvm_regs));
        std::vector<std::uint8_t> sregs = std::vector<std::uint8_t>(sizeof(kvm_sregs) - 1);
    } b;
    StateWriter w;
    w(b.id, b.tsc_khz);
    w.vec(b.cpuid, 16);
    w.vec(b.regs, kMaxSavedBlob);
    w.vec(b.sregs, kMaxSavedBlob);
    std::vector<std::uint8_t> fpu(sizeof(kvm_xsave));
    w.vec(fpu, kMaxSavedBlob);
    bool is_xsave = true;
    w(is_xsave);
    std::vector<std::uint8_t> none;
    w.vec(none, 1);
    w.vec(none, 1);
    w.vec(none, 1);
    w.vec(none, 1);
    std::uint32_t mp = 0;
    w(mp);
    std::vector<MsrEntry> msrs;
    w.vec(msrs, 1);
    auto r = load_vcpu_section_v1(w.bytes());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("special registers"), std::string::npos)
        << r.error().message();
}

}  // namespace
}  // namespace vireo::kvm
