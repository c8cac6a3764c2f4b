// The destination's side of the migration stream: a strict state machine over the frames of
// migration_frame.h. It owns no socket (migration_channel.h reads the frames) and builds nothing
// itself: a MigrationTarget (the VMM controller) does, so the order and checks are testable alone.
//
//   AwaitStart --Start--> AwaitConfig --Config--> Memory --State--> AwaitComplete --Complete-->
//   Done
//                                                 (Memory, Iteration)     (Memory)
//
// Anything else in a phase (a frame out of order, a second Start, Memory before Config, a bad
// version, an iteration number that does not follow, a payload that does not decode) fails the
// migration: the phase becomes Failed, the error names the frame and the phase, and every later
// frame is refused. Abandon in any phase fails it with the sender's reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "accel/regs.h"
#include "base/result.h"
#include "memory/guest_memory.h"
#include "migration/migration_frame.h"
#include "migration/migration_pages.h"
#include "snapshot/snapshot_file.h"

namespace vireo::migration {

// The Config frame's payload.
struct MigrationConfig {
    std::string config_json;        // the VM configuration, as in a snapshot's state file
    std::vector<CpuidEntry> cpuid;  // what vCPU 0 was given at the source
    std::uint32_t tsc_khz = 0;      // vCPU 0's TSC frequency at the source
};
inline constexpr std::size_t kMaxCpuidEntries = 256;

std::vector<std::uint8_t> encode_config(const MigrationConfig& config);
Result<MigrationConfig> decode_config(std::span<const std::uint8_t> payload);
std::vector<std::uint8_t> encode_start(std::uint32_t version, std::uint32_t flags = 0);
std::vector<std::uint8_t> encode_memory_fd(std::uint64_t size);
std::vector<std::uint8_t> encode_iteration(std::uint32_t number, std::uint64_t pages);
// Ack and Abandon: ok (Ack only) and a message, cut to 4096 bytes.
std::vector<std::uint8_t> encode_ack(bool ok, const std::string& message);
Result<std::pair<bool, std::string>> decode_ack(std::span<const std::uint8_t> payload);
std::vector<std::uint8_t> encode_reason(const std::string& reason);
std::string decode_reason(std::span<const std::uint8_t> payload);

class MigrationTarget {
public:
    // The Config frame: check the configuration and CPU features, build guest RAM (zeroed) and
    // return it; the pages go there. Nothing else is built yet.
    // In a local migration (`local`) nothing is built for RAM: it comes with MemoryFd, to
    // adopt(), and prepare() returns nullptr.
    virtual Result<GuestMemory*> prepare(const MigrationConfig& config, bool local) = 0;
    // MemoryFd: guest RAM handed over, `size` bytes in `fd` (checked by GuestMemory::adopt_memfd).
    virtual Result<GuestMemory*> adopt(UniqueFd fd, std::uint64_t size) = 0;
    // State and Complete have arrived: build the VM from RAM and `state`, ready to run. An error
    // discards everything (the receiver answers Ack ok = 0).
    virtual Result<void> finish(const SnapshotContents& state) = 0;

protected:
    ~MigrationTarget() = default;
};

class MigrationReceiver {
public:
    enum class Phase { AwaitStart, AwaitConfig, Memory, AwaitComplete, Done, Failed };

    // `local_only`: refuse a migration that copies RAM (PUT /migration/receive "local").
    explicit MigrationReceiver(MigrationTarget& target, bool local_only = false)
        : m_target(target), m_local_only(local_only) {}

    // Acts on one frame (already checked by decode_frame) and `fd`, the file descriptor that came
    // with its bytes, if any: only a MemoryFd frame may carry one. Ok, or the error that failed
    // the migration (phase() is then Failed).
    Result<void> on_frame(const Frame& frame, UniqueFd fd = {});

    Phase phase() const { return m_phase; }
    static const char* phase_name(Phase phase);
    std::uint32_t iterations() const { return m_iteration; }
    std::uint64_t pages() const { return m_pages; }
    std::uint64_t zero_pages() const { return m_zero_pages; }
    // Time spent writing received pages into guest RAM.
    std::chrono::nanoseconds apply_time() const { return m_apply_time; }

private:
    Result<void> act(const Frame& frame, UniqueFd fd);

    MigrationTarget& m_target;
    bool m_local_only = false;
    bool m_local = false;  // the Start frame's kStartLocal
    Phase m_phase = Phase::AwaitStart;
    GuestMemory* m_memory = nullptr;
    WrittenPages m_written;  // of *m_memory, in a copying migration
    SnapshotContents m_state;
    std::uint32_t m_iteration = 0;
    std::uint64_t m_pages = 0;
    std::uint64_t m_zero_pages = 0;
    std::chrono::nanoseconds m_apply_time{0};
};

enum class ReceiveOutcome {
    Committed,    // the source let go: resume the VM
    Uncommitted,  // acknowledged, but Commit never came: keep the VM paused
};

class FrameChannel;

// Runs `receiver` over `channel` until the migration ends. An error: it failed, the target must
// discard what it built (an Abandon or a negative Ack went to the source when the link allowed).
// `idle`: the longest silence tolerated from the source.
Result<ReceiveOutcome> serve_migration(FrameChannel& channel, MigrationReceiver& receiver,
                                       std::chrono::milliseconds idle);

}  // namespace vireo::migration
