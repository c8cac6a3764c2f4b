// The live migration stream (issue 14): framed messages over a connected socket (TCP or Unix).
//
// Every message is one frame, little-endian:
//   offset 0   u32 magic       "VMIG"
//          4   u16 command     MigrationCommand
//          6   u16 flags       0 (others are refused: a later protocol version may use them)
//          8   u32 length      of the payload; capped per command (kMaxPayload)
//         12   payload
//   12 + len   u64 CRC-64/XZ   over the header and the payload
//
// The receiver checks, in this order: magic, command, flags, the length against the command's
// cap (before anything is allocated), then the CRC once the frame is whole. Any failure ends the
// migration: a frame that cannot be trusted is never acted on.
//
// Conversation (sender -> receiver unless marked):
//   Start      u32 protocol version (kMigrationProtocolVersion), u32 flags: 0, or kStartLocal
//              for a local migration (RAM handed over, never copied)
//   Config     string VM configuration (snapshot JSON), CPUID table given to vCPU 0, u32 tsc_khz:
//              the destination checks the CPU features and builds RAM, then answers Ack (ready)
//              or Abandon (why not): no memory moves before that answer
//   Memory     a run of pages (migration_pages.h), any number, in iterations; never in a local
//              migration, which sends instead, once, right after the Ack to Config:
//   MemoryFd   u64 size of guest RAM, with the memfd that holds it attached (SCM_RIGHTS, Unix
//              sockets only); the destination maps it shared (GuestMemory::adopt_memfd)
//   Iteration  u32 number of the pass that just ended (1, 2, ...), u64 pages it sent
//   State      the snapshot state encoding (snapshot_file.h) of every component, VM paused
//   Complete   empty: the sender is done; the receiver builds the VM
//   Ack        (receiver -> sender) u8 ok, string message. After Config: ready for memory. After
//              Complete, the commit point: ok = 1: the VM is
//              built at the destination, paused; the source never runs it again. ok = 0: it is
//              not; the source goes on.
//   Commit     empty: the source has let go of the VM; the destination resumes it. A destination
//              that acknowledged but never hears Commit keeps the VM paused (never two running
//              copies of one guest on one disk): its operator resumes it (PATCH /vm).
//   Abandon    string reason, either way: the migration is over, nothing is kept
// Memory frames may also follow State (what saving the state touched) until Complete.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace vireo::migration {

inline constexpr std::uint32_t kMigrationProtocolVersion = 1;
inline constexpr std::uint32_t kFrameMagic = 0x47494d56;  // "VMIG"
inline constexpr std::size_t kFrameHeaderSize = 12;
inline constexpr std::size_t kFrameTrailerSize = 8;

enum class MigrationCommand : std::uint16_t {
    Start = 1,
    Config = 2,
    Memory = 3,
    Iteration = 4,
    State = 5,
    Complete = 6,
    Ack = 7,
    Abandon = 8,
    Commit = 9,
    MemoryFd = 10,
};

inline constexpr std::uint32_t kStartLocal = 1;  // Start flags

const char* command_name(MigrationCommand command);
// The payload cap of `command`; 0 for a value that is not a command.
std::size_t max_payload(std::uint16_t command);

struct Frame {
    MigrationCommand command = MigrationCommand::Start;
    std::vector<std::uint8_t> payload;
};

// The whole frame for `command` with `payload` (which must fit its cap).
std::vector<std::uint8_t> encode_frame(MigrationCommand command,
                                       std::span<const std::uint8_t> payload);
// A frame built in place, without copying its payload again: begin_frame() replaces `out`'s
// bytes with the header (length 0), the caller appends the payload, and finish_frame() sets the
// length and appends the CRC. `out` keeps its capacity, so one buffer serves every frame.
void begin_frame(std::vector<std::uint8_t>& out, MigrationCommand command);
void finish_frame(std::vector<std::uint8_t>& out);

// The header's payload length after checking magic, command, flags and cap: the frame is then
// kFrameHeaderSize + length + kFrameTrailerSize bytes long.
Result<std::size_t> check_frame_header(std::span<const std::uint8_t, kFrameHeaderSize> header);
// A frame read in its three parts, after check_frame_header() passed on `header`: its command,
// once the CRC over header and payload matches the trailer.
Result<MigrationCommand> check_frame_checksum(
    std::span<const std::uint8_t, kFrameHeaderSize> header, std::span<const std::uint8_t> payload,
    std::span<const std::uint8_t, kFrameTrailerSize> trailer);
// One whole frame (exactly its bytes): every check, the CRC included.
Result<Frame> decode_frame(std::span<const std::uint8_t> bytes);

}  // namespace vireo::migration
