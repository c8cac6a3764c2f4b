// The JSON spelling of every API enum (firecracker.yaml's "enum" lists), shared by the parsers
// and the serializer so the two cannot drift apart. Internal to api/.
#pragma once

#include <array>
#include <span>
#include <string_view>

#include "api/api_types.h"

namespace vireo::api_detail {

template <typename E>
struct EnumName {
    std::string_view name;
    E value;
};

inline constexpr std::array kHugePagesNames{
    EnumName<HugePages>{"None", HugePages::None},
    EnumName<HugePages>{"Transparent", HugePages::Transparent},
    EnumName<HugePages>{"2M", HugePages::Hugetlbfs2M},
};
inline constexpr std::array kMemoryBackingNames{
    EnumName<MemoryBacking>{"Anonymous", MemoryBacking::Anonymous},
    EnumName<MemoryBacking>{"Memfd", MemoryBacking::Memfd},
};
inline constexpr std::array kCacheTypeNames{
    EnumName<CacheType>{"Unsafe", CacheType::Unsafe},
    EnumName<CacheType>{"Writeback", CacheType::Writeback},
};
inline constexpr std::array kIoEngineNames{
    EnumName<IoEngine>{"Sync", IoEngine::Sync},
    EnumName<IoEngine>{"Async", IoEngine::Async},
};
inline constexpr std::array kInstanceActionNames{
    EnumName<InstanceActionType>{"InstanceStart", InstanceActionType::InstanceStart},
    EnumName<InstanceActionType>{"SendCtrlAltDel", InstanceActionType::SendCtrlAltDel},
    EnumName<InstanceActionType>{"FlushMetrics", InstanceActionType::FlushMetrics},
};
inline constexpr std::array kVmStateNames{
    EnumName<VmStateRequest>{"Paused", VmStateRequest::Paused},
    EnumName<VmStateRequest>{"Resumed", VmStateRequest::Resumed},
};
inline constexpr std::array kSnapshotTypeNames{
    EnumName<SnapshotType>{"Full", SnapshotType::Full},
    EnumName<SnapshotType>{"Diff", SnapshotType::Diff},
};
inline constexpr std::array kTimeoutStrategyNames{
    EnumName<TimeoutStrategy>{"Cancel", TimeoutStrategy::Cancel},
    EnumName<TimeoutStrategy>{"Ignore", TimeoutStrategy::Ignore},
};
inline constexpr std::array kMemoryBackendTypeNames{
    EnumName<MemoryBackendType>{"File", MemoryBackendType::File},
    EnumName<MemoryBackendType>{"Uffd", MemoryBackendType::Uffd},
};
inline constexpr std::array kLogLevelNames{
    EnumName<LogLevel>{"Error", LogLevel::Error}, EnumName<LogLevel>{"Warning", LogLevel::Warning},
    EnumName<LogLevel>{"Info", LogLevel::Info},   EnumName<LogLevel>{"Debug", LogLevel::Debug},
    EnumName<LogLevel>{"Trace", LogLevel::Trace}, EnumName<LogLevel>{"Off", LogLevel::Off},
};
inline constexpr std::array kInstanceStateNames{
    EnumName<InstanceState>{"Not started", InstanceState::NotStarted},
    EnumName<InstanceState>{"Running", InstanceState::Running},
    EnumName<InstanceState>{"Paused", InstanceState::Paused},
};

// The spelling of `value` in `names` (every enumerator is listed, so this always finds one).
template <typename E, std::size_t N>
constexpr std::string_view name_of(const std::array<EnumName<E>, N>& names, E value) {
    for (const auto& n : names) {
        if (n.value == value) {
            return n.name;
        }
    }
    return "?";
}

}  // namespace vireo::api_detail
