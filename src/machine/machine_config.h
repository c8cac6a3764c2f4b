// What `vireo run` (and later the API) asks for.
#pragma once

#include <cstdint>
#include <string>

namespace vireo {

struct MachineConfig {
    std::string kernel_path;
    std::string initrd_path;  // empty: no initrd
    std::string cmdline;
    std::uint32_t cpus = 1;
    std::uint64_t memory = 512ULL << 20;
};

inline constexpr std::uint32_t kMaxVcpus = 254;  // 8-bit APIC IDs, one left for the IOAPIC

}  // namespace vireo
