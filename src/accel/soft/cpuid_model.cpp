#include "accel/soft/cpuid_model.h"

#include <cstring>

#include "accel/soft/kvm_clock.h"

namespace vireo::soft {

namespace {

std::uint32_t bits(std::initializer_list<int> list) {
    std::uint32_t v = 0;
    for (int b : list) {
        v |= 1u << b;
    }
    return v;
}

std::uint32_t chars(const char* s) {
    std::uint32_t v = 0;
    std::memcpy(&v, s, 4);
    return v;
}

}  // namespace

std::vector<CpuidEntry> cpuid_model() {
    std::vector<CpuidEntry> t;
    // Leaf 0: highest basic leaf and vendor "AuthenticAMD" (EBX, EDX, ECX), as qemu64.
    t.push_back({0, 0, 0, 0xd, chars("Auth"), chars("cAMD"), chars("enti")});
    // Leaf 1: family 15, model 107, stepping 1 (qemu64); EBX: CLFLUSH 8*8 bytes, 1 logical
    // CPU; ECX: SSE3, CX16, TSC-deadline (a LAPIC timer mode), hypervisor; EDX: FPU DE PSE TSC
    // MSR PAE MCE CX8 APIC MTRR PGE MCA CMOV PAT PSE36 CLFSH MMX FXSR SSE SSE2 (SDM Vol. 2,
    // CPUID Tables 3-10, 3-11).
    t.push_back({1, 0, 0, 0x00060fb1, 0x00010800, bits({0, 13, 24, 31}),
                 bits({0, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 19, 23, 24, 25, 26})});
    // Leaf 2: cache and TLB descriptors (one-byte descriptors, AL=1): 64-byte prefetch, 32 KiB
    // L1d/L1i, 2 MiB L2, as QEMU reports.
    t.push_back({2, 0, 0, 0x00000001, 0, 0x0000004d, 0x002c307d});
    // Leaf 4: deterministic cache parameters, one entry per level, ending with type 0.
    t.push_back({4, 0, 1, 0x00000121, 0x01c0003f, 0x0000003f, 0x00000001});
    t.push_back({4, 1, 1, 0x00000122, 0x01c0003f, 0x0000003f, 0x00000001});
    t.push_back({4, 2, 1, 0x00000143, 0x03c0003f, 0x00000fff, 0x00000001});
    t.push_back({4, 3, 1, 0, 0, 0, 0});
    t.push_back({7, 0, 1, 0, 0, 0, 0});    // no structured extended features
    t.push_back({0xd, 0, 1, 0, 0, 0, 0});  // no XSAVE
    // The KVM leaves (Linux Documentation/virt/kvm/x86/cpuid.rst): signature "KVMKVMKVM\0\0\0"
    // and, of the paravirtual features, kvmclock alone (CLOCKSOURCE2, CLOCKSOURCE_STABLE_BIT):
    // the guest takes the TSC frequency from it instead of calibrating (kvm_clock.h says why
    // that matters here).
    t.push_back({0x40000000, 0, 0, 0x40000001, chars("KVMK"), chars("VMKV"), chars("M\0\0\0")});
    t.push_back(
        {0x40000001, 0, 0, kKvmFeatureClocksource2 | kKvmFeatureClocksourceStable, 0, 0, 0});
    t.push_back({0x80000000, 0, 0, 0x8000000a, chars("Auth"), chars("cAMD"), chars("enti")});
    // 0x80000001: ECX LAHF/SAHF in 64-bit mode; EDX SYSCALL, NX, LM and AMD's copies of leaf 1
    // EDX bits.
    t.push_back({0x80000001, 0, 0, 0x00060fb1, 0, bits({0}),
                 bits({0, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 20, 23, 24, 29})});
    const char brand[49] = "QEMU Virtual CPU version 2.5+";
    for (std::uint32_t i = 0; i < 3; ++i) {
        std::uint32_t r[4];
        std::memcpy(r, brand + 16 * i, 16);
        t.push_back({0x80000002 + i, 0, 0, r[0], r[1], r[2], r[3]});
    }
    t.push_back({0x80000005, 0, 0, 0x01ff01ff, 0x01ff01ff, 0x40020140, 0x40020140});
    t.push_back({0x80000006, 0, 0, 0, 0x42004200, 0x02008140, 0x00808140});
    t.push_back({0x80000007, 0, 0, 0, 0, 0, 0});
    // 0x80000008: 40 physical and 48 linear address bits.
    t.push_back({0x80000008, 0, 0, 0x00003028, 0, 0, 0});
    t.push_back({0x8000000a, 0, 0, 0, 0, 0, 0});
    return t;
}

}  // namespace vireo::soft
