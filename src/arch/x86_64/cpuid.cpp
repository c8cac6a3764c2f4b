#include "arch/x86_64/cpuid.h"

#include <cstdio>

#include <algorithm>
#include <bit>

namespace vireo::x86 {

namespace {

// Bits needed to number `n` items (n = 1 -> 0, 2 -> 1, 3..4 -> 2, ...).
std::uint32_t id_bits(std::uint32_t n) {
    return n <= 1 ? 0 : std::bit_width(n - 1);
}

// kvm_cpuid_entry2.flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX — the leaf has subleaves.
constexpr std::uint32_t kSignificantIndex = 1;

}  // namespace

const CpuidEntry* find_leaf(std::span<const CpuidEntry> table, std::uint32_t function,
                            std::uint32_t index) {
    for (const auto& e : table) {
        if (e.function == function && e.index == index) {
            return &e;
        }
    }
    return nullptr;
}

std::vector<CpuidEntry> shape_cpuid(std::span<const CpuidEntry> supported,
                                    const CpuidConfig& config) {
    const std::uint32_t apic_id = config.vcpu_id;
    const std::uint32_t n = config.num_vcpus == 0 ? 1 : config.num_vcpus;
    // Threads per core: 2 only when there are pairs to make (smt with one vCPU is one thread).
    const std::uint32_t threads = config.threads_per_core >= 2 && n >= 2 ? 2 : 1;
    const std::uint32_t cores = (n + threads - 1) / threads;
    std::vector<CpuidEntry> out;
    out.reserve(supported.size() + 2);
    bool have_timing_leaf = false;
    std::vector<std::uint32_t> topology_leaves;  // 0xB and 0x1F, when the host has them

    for (CpuidEntry e : supported) {
        switch (e.function) {
            case kLeafFeatures:
                // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
                e.ebx = (e.ebx & 0x0000ffff) | (apic_id << 24) | ((n & 0xff) << 16);
                e.ecx |= kEcxHypervisor;
                // KVM emulates the TSC-deadline timer; with it Linux skips calibrating the
                // LAPIC timer against the PIT.
                e.ecx |= kEcxTscDeadline;
                if (n > 1) {
                    e.edx |= kEdxHtt;
                } else {
                    e.edx &= ~kEdxHtt;
                }
                break;
            case kLeafCacheParams:
                // EAX[31:26] cores per package - 1; EAX[25:14] logical CPUs sharing this cache
                // - 1: each core has its own L1/L2 (shared by its threads), all share the last
                // level.
                if ((e.eax & 0x1f) != 0) {
                    const std::uint32_t level = (e.eax >> 5) & 0x7;
                    const std::uint32_t sharing = level >= 3 ? n - 1 : threads - 1;
                    e.eax =
                        (e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (((cores - 1) & 0x3f) << 26);
                }
                break;
            case kLeafThermal:
                e.eax = e.ebx = e.ecx = e.edx = 0;  // no thermal/power management to poll
                break;
            case kLeafPmu:
                e.eax = e.ebx = e.ecx = e.edx = 0;  // no PMU: no NMI watchdog on perf counters
                break;
            case kLeafTopology:
            case kLeafTopologyV2:
                // Rebuilt whole below: KVM may list only some subleaves (seen: 0xB.0 alone on
                // an AMD host), and every level the guest walks must be there.
                if (std::find(topology_leaves.begin(), topology_leaves.end(), e.function) ==
                    topology_leaves.end()) {
                    topology_leaves.push_back(e.function);
                }
                continue;
            case kLeafHypervisor:
                // EAX: highest hypervisor leaf. Keep KVM's signature in EBX..EDX.
                if (config.tsc_khz != 0 && e.eax < kLeafHypervisorTiming) {
                    e.eax = kLeafHypervisorTiming;
                }
                break;
            case kLeafHypervisorTiming:
                have_timing_leaf = true;
                if (config.tsc_khz != 0) {
                    e.eax = config.tsc_khz;
                    e.ebx = 1000000;  // LAPIC timer: KVM counts it at 1 GHz (1 ns per tick)
                }
                break;
            case kLeafAmdSizes:
                // ECX[7:0] NC: cores - 1; ECX[15:12] ApicIdSize.
                e.ecx = (e.ecx & ~0xf0ffU) | ((n - 1) & 0xff) | (id_bits(n) << 12);
                break;
            case kLeafAmdTopology:
                // EAX extended APIC ID, EBX[15:8] threads per core - 1, EBX[7:0] core ID, ECX
                // node 0.
                e.eax = apic_id;
                e.ebx = ((threads - 1) << 8) | ((apic_id >> id_bits(threads)) & 0xff);
                e.ecx = 0;
                break;
            default:
                break;
        }
        out.push_back(e);
    }
    for (const std::uint32_t leaf : topology_leaves) {
        // `threads` threads per core, n logical CPUs per package (SDM Vol. 3A §9.9 "Topology"):
        // per level, EAX the APIC ID shift to the next level, EBX the logical CPUs at this level,
        // ECX the level number and type (1 SMT, 2 core, 0 the end), EDX the x2APIC ID.
        out.push_back(
            {leaf, 0, kSignificantIndex, id_bits(threads), threads, (1U << 8) | 0, apic_id});
        out.push_back({leaf, 1, kSignificantIndex, id_bits(n), n, (2U << 8) | 1, apic_id});
        out.push_back({leaf, 2, kSignificantIndex, 0, 0, 2, apic_id});
    }
    if (config.tsc_khz != 0 && !have_timing_leaf && find_leaf(out, kLeafHypervisor) != nullptr) {
        out.push_back({kLeafHypervisorTiming, 0, 0, config.tsc_khz, 1000000, 0, 0});
    }
    return out;
}

std::vector<std::string> missing_cpu_features(std::span<const CpuidEntry> saved,
                                              std::span<const CpuidEntry> available) {
    struct FeatureLeaf {
        std::uint32_t function;
        std::uint32_t index;
    };
    // Leaves whose registers are feature bitmaps (SDM Vol. 2A Table 3-8; AMD APM Vol. 3 E.4.2).
    constexpr FeatureLeaf kLeaves[] = {{0x1, 0}, {0x7, 0}, {0xd, 1}, {0x80000001, 0}};
    std::vector<std::string> missing;
    for (const auto& leaf : kLeaves) {
        const CpuidEntry* s = find_leaf(saved, leaf.function, leaf.index);
        if (s == nullptr) {
            continue;
        }
        const CpuidEntry* a = find_leaf(available, leaf.function, leaf.index);
        const CpuidEntry none{};
        if (a == nullptr) {
            a = &none;
        }
        const std::uint32_t want[4] = {s->eax, s->ebx, s->ecx, s->edx};
        const std::uint32_t have[4] = {a->eax, a->ebx, a->ecx, a->edx};
        static constexpr const char* kRegs[4] = {"eax", "ebx", "ecx", "edx"};
        for (int r = 0; r < 4; ++r) {
            // Leaf 1 EBX holds the APIC ID and counts, not features.
            if (leaf.function == 0x1 && r == 1) {
                continue;
            }
            const std::uint32_t lacking = want[r] & ~have[r];
            for (int bit = 0; bit < 32; ++bit) {
                if ((lacking >> bit) & 1U) {
                    char text[64];
                    std::snprintf(text, sizeof(text), "leaf %#x.%u %s bit %d", leaf.function,
                                  leaf.index, kRegs[r], bit);
                    missing.emplace_back(text);
                }
            }
        }
    }
    return missing;
}

}  // namespace vireo::x86
