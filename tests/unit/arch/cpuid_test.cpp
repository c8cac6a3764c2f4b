#include "arch/x86_64/cpuid.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace vireo::x86 {
namespace {

// A supported-CPUID table shaped like KVM's answer on an Intel host: leaf 1 without the
// hypervisor bit, topology and cache leaves, PMU, and KVM's own leaves.
std::vector<CpuidEntry> supported() {
    return {
        {0x0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69},
        {0x1, 0, 0, 0x000906ea, 0x00010800, 0x7ffafbff, 0xbfebfbff & ~kEdxHtt},
        {0x4, 0, 1, 0x00000121, 0x01c0003f, 0x3f, 0},
        {0x4, 3, 1, 0x00000163, 0x03c0003f, 0x2fff, 6},
        {0x6, 0, 0, 0x77, 0x2, 0x9, 0},
        {0xa, 0, 0, 0x07300404, 0, 0, 0x603},
        {0xb, 0, 1, 1, 2, 0x100, 7},
        {0xb, 1, 1, 4, 8, 0x201, 7},
        {0xb, 2, 1, 0, 0, 2, 7},
        {0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d},
        {0x40000001, 0, 0, 0x01007afb, 0, 0, 0},
        {0x80000008, 0, 0, 0x3027, 0, 0, 0},
    };
}

TEST(Cpuid, SetsHypervisorBitApicIdAndTscDeadline) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 3, .num_vcpus = 4, .tsc_khz = 0});
    const CpuidEntry* l1 = find_leaf(t, 1);
    ASSERT_NE(l1, nullptr);
    EXPECT_TRUE(l1->ecx & kEcxHypervisor);
    EXPECT_TRUE(l1->ecx & kEcxTscDeadline);
    EXPECT_EQ(l1->ebx >> 24, 3U);           // initial APIC ID
    EXPECT_EQ((l1->ebx >> 16) & 0xff, 4U);  // logical processors
    EXPECT_EQ(l1->ebx & 0xffff, 0x0800U);   // CLFLUSH size etc. kept
    EXPECT_TRUE(l1->edx & kEdxHtt);
}

TEST(Cpuid, SingleCpuHasNoHtt) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 0, .num_vcpus = 1, .tsc_khz = 0});
    EXPECT_FALSE(find_leaf(t, 1)->edx & kEdxHtt);
}

TEST(Cpuid, TopologyLeafDescribesOneThreadPerCore) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 2, .num_vcpus = 3, .tsc_khz = 0});
    const CpuidEntry* smt = find_leaf(t, 0xb, 0);
    const CpuidEntry* core = find_leaf(t, 0xb, 1);
    const CpuidEntry* end = find_leaf(t, 0xb, 2);
    ASSERT_TRUE(smt && core && end);
    EXPECT_EQ(smt->eax, 0U);
    EXPECT_EQ(smt->ebx, 1U);
    EXPECT_EQ((smt->ecx >> 8) & 0xff, 1U);
    EXPECT_EQ(core->eax, 2U);  // 3 CPUs need 2 bits of APIC ID
    EXPECT_EQ(core->ebx, 3U);
    EXPECT_EQ((core->ecx >> 8) & 0xff, 2U);
    EXPECT_EQ((end->ecx >> 8) & 0xff, 0U);
    for (const auto* e : {smt, core, end}) {
        EXPECT_EQ(e->edx, 2U);  // x2APIC ID
    }
}

TEST(Cpuid, SmtPairsVcpusIntoCores) {
    // 4 vCPUs with smt: 2 cores of 2 threads; vCPU 3 is thread 1 of core 1.
    const auto t = shape_cpuid(supported(),
                               {.vcpu_id = 3, .num_vcpus = 4, .tsc_khz = 0, .threads_per_core = 2});
    const CpuidEntry* smt = find_leaf(t, 0xb, 0);
    const CpuidEntry* core = find_leaf(t, 0xb, 1);
    ASSERT_TRUE(smt && core);
    EXPECT_EQ(smt->eax, 1U);  // one APIC ID bit for the thread
    EXPECT_EQ(smt->ebx, 2U);
    EXPECT_EQ(core->eax, 2U);
    EXPECT_EQ(core->ebx, 4U);
    const CpuidEntry* l1d = find_leaf(t, 4, 0);
    const CpuidEntry* l3 = find_leaf(t, 4, 3);
    EXPECT_EQ((l1d->eax >> 14) & 0xfff, 1U);  // L1 shared by the core's two threads
    EXPECT_EQ((l3->eax >> 14) & 0xfff, 3U);
    EXPECT_EQ(l1d->eax >> 26, 1U);  // 2 cores
}

TEST(Cpuid, EveryTopologyLevelIsThereWhenKvmListsOnlyTheFirst) {
    // Seen on an AMD host: KVM lists 0xB.0 alone; a guest walking the levels must find 0xB.1.
    std::vector<CpuidEntry> table;
    for (const auto& e : supported()) {
        if (e.function != 0xb || e.index == 0) {
            table.push_back(e);
        }
    }
    const auto t =
        shape_cpuid(table, {.vcpu_id = 1, .num_vcpus = 2, .tsc_khz = 0, .threads_per_core = 2});
    const CpuidEntry* core = find_leaf(t, 0xb, 1);
    const CpuidEntry* end = find_leaf(t, 0xb, 2);
    ASSERT_TRUE(core && end);
    EXPECT_EQ(core->ebx, 2U);
    EXPECT_EQ((core->ecx >> 8) & 0xff, 2U);
    EXPECT_EQ(core->edx, 1U);
    EXPECT_EQ((end->ecx >> 8) & 0xff, 0U);
    EXPECT_EQ(
        std::count_if(t.begin(), t.end(), [](const CpuidEntry& e) { return e.function == 0xb; }),
        3);
}

TEST(Cpuid, SmtWithOneVcpuIsOneThread) {
    const auto t = shape_cpuid(supported(),
                               {.vcpu_id = 0, .num_vcpus = 1, .tsc_khz = 0, .threads_per_core = 2});
    EXPECT_EQ(find_leaf(t, 0xb, 0)->ebx, 1U);
}

TEST(Cpuid, AmdTopologyLeafNamesTheCoreAndItsThreads) {
    auto table = supported();
    table.push_back({0x8000001e, 0, 0, 0, 0, 0, 0});
    const auto t =
        shape_cpuid(table, {.vcpu_id = 3, .num_vcpus = 4, .tsc_khz = 0, .threads_per_core = 2});
    const CpuidEntry* amd = find_leaf(t, 0x8000001e);
    ASSERT_NE(amd, nullptr);
    EXPECT_EQ(amd->eax, 3U);
    EXPECT_EQ((amd->ebx >> 8) & 0xff, 1U);  // two threads per core
    EXPECT_EQ(amd->ebx & 0xff, 1U);         // core 1
    const auto single = shape_cpuid(table, {.vcpu_id = 3, .num_vcpus = 4, .tsc_khz = 0});
    EXPECT_EQ(find_leaf(single, 0x8000001e)->ebx, 3U);
}

TEST(Cpuid, CacheLeafSharesOnlyTheLastLevel) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 0, .num_vcpus = 4, .tsc_khz = 0});
    const CpuidEntry* l1d = find_leaf(t, 4, 0);
    const CpuidEntry* l3 = find_leaf(t, 4, 3);
    EXPECT_EQ((l1d->eax >> 14) & 0xfff, 0U);
    EXPECT_EQ((l3->eax >> 14) & 0xfff, 3U);
    EXPECT_EQ(l1d->eax >> 26, 3U);
    EXPECT_EQ(l1d->eax & 0x3fff, 0x121U);  // type and level kept
}

TEST(Cpuid, PmuAndThermalHidden) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 0, .num_vcpus = 1, .tsc_khz = 0});
    const CpuidEntry* pmu = find_leaf(t, 0xa);
    EXPECT_EQ(pmu->eax | pmu->ebx | pmu->ecx | pmu->edx, 0U);
    EXPECT_EQ(find_leaf(t, 6)->eax, 0U);
}

TEST(Cpuid, KvmLeavesKeptAndTscFrequencyPublished) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 0, .num_vcpus = 1, .tsc_khz = 2'600'000});
    const CpuidEntry* sig = find_leaf(t, 0x40000000);
    EXPECT_EQ(sig->ebx, 0x4b4d564bU);  // "KVMKVMKVM"
    EXPECT_EQ(sig->eax, 0x40000010U);
    EXPECT_EQ(find_leaf(t, 0x40000001)->eax, 0x01007afbU);  // KVM's paravirtual features as offered
    const CpuidEntry* timing = find_leaf(t, 0x40000010);
    ASSERT_NE(timing, nullptr);
    EXPECT_EQ(timing->eax, 2'600'000U);
}

TEST(Cpuid, AmdCoreCount) {
    const auto t = shape_cpuid(supported(), {.vcpu_id = 0, .num_vcpus = 8, .tsc_khz = 0});
    const CpuidEntry* e = find_leaf(t, 0x80000008);
    EXPECT_EQ(e->ecx & 0xff, 7U);
    EXPECT_EQ((e->ecx >> 12) & 0xf, 3U);
    EXPECT_EQ(e->eax, 0x3027U);
}

TEST(MissingCpuFeatures, ASubsetRunsAndExtraFeaturesAreNamed) {
    const std::vector<CpuidEntry> here = {
        {0x1, 0, 0, 0x000806f8, 0x00010800, 0x80202001, 0x078bfbff},
        {0x7, 0, 0, 0, 0x000001a9, 0x00000004, 0},
        {0x80000001, 0, 0, 0, 0, 0x00000121, 0x2c100800},
    };
    std::vector<CpuidEntry> saved = here;
    saved[1].ebx = 0x9;         // fewer features: fine
    saved[0].ebx = 0x07000800;  // leaf 1 EBX (APIC ID, counts) is not a feature register
    EXPECT_TRUE(x86::missing_cpu_features(saved, here).empty());

    saved[1].ebx |= 1U << 16;  // AVX-512F, which this host lacks
    saved[2].ecx |= 1U << 6;   // SSE4A
    const auto missing = x86::missing_cpu_features(saved, here);
    ASSERT_EQ(missing.size(), 2U);
    EXPECT_EQ(missing[0], "leaf 0x7.0 ebx bit 16");
    EXPECT_EQ(missing[1], "leaf 0x80000001.0 ecx bit 6");

    // A leaf the host does not have at all: every bit the guest saw there is missing.
    saved = here;
    saved.push_back({0xd, 1, 0, 0x1, 0, 0, 0});
    EXPECT_EQ(x86::missing_cpu_features(saved, here).size(), 1U);
}

}  // namespace
}  // namespace vireo::x86
