// Shapes the CPUID table a vCPU sees, from what the accelerator supports: the guest must learn it
// runs under a hypervisor (CPUID.1:ECX[31], which KVM_GET_SUPPORTED_CPUID leaves clear; without
// it Linux never reads the KVM leaves, gets no kvmclock and stalls calibrating the TSC against the
// PIT — DESIGN.md §5), its APIC ID and the topology, and nothing it would waste exits probing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "accel/regs.h"

namespace vireo::x86 {

struct CpuidConfig {
    std::uint32_t vcpu_id = 0;  // also the initial APIC ID
    std::uint32_t num_vcpus = 1;
    std::uint32_t tsc_khz = 0;  // when non-zero, published in leaf 0x40000010
    // 2: vCPUs pair up as the two hardware threads of a core (Firecracker's "smt"): vCPUs 2k and
    // 2k+1 share core k, whose APIC IDs differ in bit 0. 1: one thread per core.
    std::uint32_t threads_per_core = 1;
};

// Leaf numbers and bits used (SDM Vol. 2A "CPUID", AMD APM Vol. 3 Appendix E, Linux
// Documentation/virt/kvm/x86/cpuid.rst).
inline constexpr std::uint32_t kLeafFeatures = 0x1;
inline constexpr std::uint32_t kLeafCacheParams = 0x4;
inline constexpr std::uint32_t kLeafThermal = 0x6;
inline constexpr std::uint32_t kLeafPmu = 0xa;
inline constexpr std::uint32_t kLeafTopology = 0xb;
inline constexpr std::uint32_t kLeafTopologyV2 = 0x1f;
inline constexpr std::uint32_t kLeafHypervisor = 0x40000000;
inline constexpr std::uint32_t kLeafKvmFeatures = 0x40000001;
inline constexpr std::uint32_t kLeafHypervisorTiming = 0x40000010;
inline constexpr std::uint32_t kLeafAmdSizes = 0x80000008;
inline constexpr std::uint32_t kLeafAmdTopology = 0x8000001e;

inline constexpr std::uint32_t kEcxTscDeadline = 1U << 24;
inline constexpr std::uint32_t kEcxHypervisor = 1U << 31;
inline constexpr std::uint32_t kEdxHtt = 1U << 28;

std::vector<CpuidEntry> shape_cpuid(std::span<const CpuidEntry> supported,
                                    const CpuidConfig& config);

// The CPU features a saved guest was given that `available` (what this host would give a guest,
// shape_cpuid's output) lacks, as "leaf 0x7.0 ebx bit 5" strings; empty when the guest can run
// here. Checks the feature-flag leaves: 0x1, 0x7.0, 0xd.1, 0x80000001.
std::vector<std::string> missing_cpu_features(std::span<const CpuidEntry> saved,
                                              std::span<const CpuidEntry> available);

// Finds a leaf/subleaf in a table (nullptr if absent).
const CpuidEntry* find_leaf(std::span<const CpuidEntry> table, std::uint32_t function,
                            std::uint32_t index = 0);

}  // namespace vireo::x86
