#include "migration/migration_frame.h"

#include <cstring>

#include <fmt/format.h>

#include "base/crc64.h"
#include "migration/migration_pages.h"
#include "snapshot/snapshot_file.h"

namespace vireo::migration {

namespace {

std::uint32_t load_u32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::uint16_t load_u16(const std::uint8_t* p) {
    std::uint16_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}

void store(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out.insert(out.end(), b, b + n);
}

}  // namespace

const char* command_name(MigrationCommand command) {
    switch (command) {
        case MigrationCommand::Start:
            return "Start";
        case MigrationCommand::Config:
            return "Config";
        case MigrationCommand::Memory:
            return "Memory";
        case MigrationCommand::Iteration:
            return "Iteration";
        case MigrationCommand::State:
            return "State";
        case MigrationCommand::Complete:
            return "Complete";
        case MigrationCommand::Ack:
            return "Ack";
        case MigrationCommand::Abandon:
            return "Abandon";
        case MigrationCommand::Commit:
            return "Commit";
        case MigrationCommand::MemoryFd:
            return "MemoryFd";
    }
    return "unknown";
}

std::size_t max_payload(std::uint16_t command) {
    switch (static_cast<MigrationCommand>(command)) {
        case MigrationCommand::Start:
            return 8;
        // The configuration JSON (capped as in a state file) and a CPUID table.
        case MigrationCommand::Config:
            return kSnapshotMaxConfigSize + 64 * 1024;
        case MigrationCommand::Memory:
            return kMaxPagesPayload;
        case MigrationCommand::Iteration:
            return 12;
        case MigrationCommand::MemoryFd:
            return 8;
        case MigrationCommand::State:
            return kSnapshotMaxFileSize;
        case MigrationCommand::Complete:
            return 0;
        case MigrationCommand::Ack:
            return 1 + 4 + 4096;
        case MigrationCommand::Abandon:
            return 4 + 4096;
        case MigrationCommand::Commit:
            return 0;
    }
    return 0;
}

void begin_frame(std::vector<std::uint8_t>& out, MigrationCommand command) {
    out.clear();
    const std::uint32_t magic = kFrameMagic;
    const auto cmd = static_cast<std::uint16_t>(command);
    const std::uint16_t flags = 0;
    const std::uint32_t length = 0;
    store(out, &magic, 4);
    store(out, &cmd, 2);
    store(out, &flags, 2);
    store(out, &length, 4);
}

void finish_frame(std::vector<std::uint8_t>& out) {
    const auto length = static_cast<std::uint32_t>(out.size() - kFrameHeaderSize);
    std::memcpy(out.data() + 8, &length, sizeof length);
    const std::uint64_t crc = Crc64::of(out);
    store(out, &crc, 8);
}

std::vector<std::uint8_t> encode_frame(MigrationCommand command,
                                       std::span<const std::uint8_t> payload) {
    std::vector<std::uint8_t> out;
    out.reserve(kFrameHeaderSize + payload.size() + kFrameTrailerSize);
    begin_frame(out, command);
    out.insert(out.end(), payload.begin(), payload.end());
    finish_frame(out);
    return out;
}

Result<std::size_t> check_frame_header(std::span<const std::uint8_t, kFrameHeaderSize> header) {
    if (load_u32(header.data()) != kFrameMagic) {
        return Error(
            fmt::format("not a vireo migration frame (magic {:#010x})", load_u32(header.data())));
    }
    const std::uint16_t command = load_u16(header.data() + 4);
    if (command < static_cast<std::uint16_t>(MigrationCommand::Start) ||
        command > static_cast<std::uint16_t>(MigrationCommand::MemoryFd)) {
        return Error(fmt::format("unknown migration command {}", command));
    }
    if (const std::uint16_t flags = load_u16(header.data() + 6); flags != 0) {
        return Error(fmt::format("{} frame with unknown flags {:#x}",
                                 command_name(static_cast<MigrationCommand>(command)), flags));
    }
    const std::uint32_t length = load_u32(header.data() + 8);
    if (length > max_payload(command)) {
        return Error(fmt::format("{} frame of {} bytes (at most {})",
                                 command_name(static_cast<MigrationCommand>(command)), length,
                                 max_payload(command)));
    }
    return std::size_t{length};
}

Result<MigrationCommand> check_frame_checksum(
    std::span<const std::uint8_t, kFrameHeaderSize> header, std::span<const std::uint8_t> payload,
    std::span<const std::uint8_t, kFrameTrailerSize> trailer) {
    Crc64 crc;
    crc.update(header);
    crc.update(payload);
    std::uint64_t stored = 0;
    std::memcpy(&stored, trailer.data(), sizeof stored);
    const auto command = static_cast<MigrationCommand>(load_u16(header.data() + 4));
    if (stored != crc.value()) {
        return Error(fmt::format("{} frame fails its checksum (corrupted in transit)",
                                 command_name(command)));
    }
    return command;
}

Result<Frame> decode_frame(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kFrameHeaderSize + kFrameTrailerSize) {
        return Error(fmt::format("migration frame of {} bytes is truncated", bytes.size()));
    }
    auto length = check_frame_header(bytes.first<kFrameHeaderSize>());
    if (!length) {
        return length.error();
    }
    const std::size_t body = kFrameHeaderSize + *length;
    if (bytes.size() != body + kFrameTrailerSize) {
        return Error(fmt::format("migration frame of {} bytes, its header says {}", bytes.size(),
                                 body + kFrameTrailerSize));
    }
    auto command = check_frame_checksum(bytes.first<kFrameHeaderSize>(),
                                        bytes.subspan(kFrameHeaderSize, *length),
                                        bytes.subspan(body).first<kFrameTrailerSize>());
    if (!command) {
        return command.error();
    }
    Frame f;
    f.command = *command;
    f.payload.assign(bytes.begin() + kFrameHeaderSize, bytes.begin() + static_cast<long>(body));
    return f;
}

}  // namespace vireo::migration
