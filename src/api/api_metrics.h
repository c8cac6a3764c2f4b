// Counts of API requests per endpoint and of those that failed (answered 4xx/5xx), for the VMM's
// metrics output (Firecracker's get_api_requests / put_api_requests / patch_api_requests).
// Written by the server's threads, read from any thread; relaxed atomics: each counter is
// independent and only ever grows.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vireo {

enum class ApiEndpoint : std::uint8_t {
    GetInstanceInfo,        // GET /
    GetVersion,             // GET /version
    GetMachineConfig,       // GET /machine-config
    GetVmConfig,            // GET /vm/config
    PutActions,             // PUT /actions
    PutBootSource,          // PUT /boot-source
    PutMachineConfig,       // PUT /machine-config
    PatchMachineConfig,     // PATCH /machine-config
    PutDrive,               // PUT /drives/{drive_id}
    PatchDrive,             // PATCH /drives/{drive_id}
    PutNetworkInterface,    // PUT /network-interfaces/{iface_id}
    PatchNetworkInterface,  // PATCH /network-interfaces/{iface_id}
    PatchVm,                // PATCH /vm
    PutLogger,              // PUT /logger
    PutMetrics,             // PUT /metrics
    PutEntropy,             // PUT /entropy
    PutSnapshotCreate,      // PUT /snapshot/create
    PutSnapshotLoad,        // PUT /snapshot/load
    GetMigration,           // GET /migration (vireo extension)
    PutMigrationSend,       // PUT /migration/send
    PutMigrationReceive,    // PUT /migration/receive
    PutMigrationCancel,     // PUT /migration/cancel
    PutBalloon,             // PUT /balloon
    PatchBalloon,           // PATCH /balloon
    GetBalloon,             // GET /balloon
    GetBalloonStats,        // GET /balloon/statistics
    PatchBalloonStats,      // PATCH /balloon/statistics
    NotSupported,           // a Firecracker endpoint vireo does not implement yet
    Invalid,                // unknown path or method, malformed HTTP
};
inline constexpr std::size_t kApiEndpointCount = static_cast<std::size_t>(ApiEndpoint::Invalid) + 1;

// snake_case name for metrics output: "get_instance_info", "put_drive", "not_supported", ...
std::string_view api_endpoint_name(ApiEndpoint endpoint);

class ApiMetrics {
public:
    void record(ApiEndpoint endpoint, bool failed) {
        auto i = static_cast<std::size_t>(endpoint);
        m_requests[i].fetch_add(1, std::memory_order_relaxed);
        if (failed) {
            m_fails[i].fetch_add(1, std::memory_order_relaxed);
        }
    }

    std::uint64_t requests(ApiEndpoint endpoint) const {
        return m_requests[static_cast<std::size_t>(endpoint)].load(std::memory_order_relaxed);
    }
    std::uint64_t fails(ApiEndpoint endpoint) const {
        return m_fails[static_cast<std::size_t>(endpoint)].load(std::memory_order_relaxed);
    }
    std::uint64_t total_requests() const { return sum(m_requests); }
    std::uint64_t total_fails() const { return sum(m_fails); }

private:
    using Counters = std::array<std::atomic<std::uint64_t>, kApiEndpointCount>;
    static std::uint64_t sum(const Counters& counters) {
        std::uint64_t total = 0;
        for (const auto& c : counters) {
            total += c.load(std::memory_order_relaxed);
        }
        return total;
    }

    Counters m_requests{};
    Counters m_fails{};
};

}  // namespace vireo
