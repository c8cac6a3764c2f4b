#include "migration/migration_receiver.h"

#include <fmt/format.h>

#include "accel/accel_state.h"
#include "base/state_archive.h"
#include "base/time_account.h"
#include "migration/migration_channel.h"
#include "migration/migration_pages.h"

namespace vireo::migration {

namespace {

// The peer's words go into logs and API answers: printable ASCII only.
std::string printable(std::string s) {
    for (char& c : s) {
        if (c < 0x20 || c > 0x7e) {
            c = '?';
        }
    }
    return s;
}

template <typename Fill>
std::vector<std::uint8_t> write_fields(Fill&& fill) {
    StateWriter w;
    fill(w);
    return w.take();
}

}  // namespace

std::vector<std::uint8_t> encode_config(const MigrationConfig& config) {
    MigrationConfig c = config;
    return write_fields([&](StateWriter& w) {
        w.str(c.config_json, kSnapshotMaxConfigSize);
        w.vec(c.cpuid, kMaxCpuidEntries);
        w(c.tsc_khz);
    });
}

Result<MigrationConfig> decode_config(std::span<const std::uint8_t> payload) {
    StateReader r(payload);
    MigrationConfig c;
    r.str(c.config_json, kSnapshotMaxConfigSize);
    r.vec(c.cpuid, kMaxCpuidEntries);
    r(c.tsc_khz);
    if (auto done = r.finish(); !done) {
        return done.error().wrap("Config frame");
    }
    return c;
}

std::vector<std::uint8_t> encode_start(std::uint32_t version, std::uint32_t flags) {
    return write_fields([&](StateWriter& w) { w(version, flags); });
}

std::vector<std::uint8_t> encode_memory_fd(std::uint64_t size) {
    return write_fields([&](StateWriter& w) { w(size); });
}

std::vector<std::uint8_t> encode_iteration(std::uint32_t number, std::uint64_t pages) {
    return write_fields([&](StateWriter& w) { w(number, pages); });
}

std::vector<std::uint8_t> encode_ack(bool ok, const std::string& message) {
    std::string m = message.substr(0, 4096);
    return write_fields([&](StateWriter& w) {
        w(ok);
        w.str(m, 4096);
    });
}

Result<std::pair<bool, std::string>> decode_ack(std::span<const std::uint8_t> payload) {
    StateReader r(payload);
    bool ok = false;
    std::string message;
    r(ok);
    r.str(message, 4096);
    if (auto done = r.finish(); !done) {
        return done.error().wrap("Ack frame");
    }
    return std::pair{ok, printable(std::move(message))};
}

std::vector<std::uint8_t> encode_reason(const std::string& reason) {
    std::string m = reason.substr(0, 4096);
    return write_fields([&](StateWriter& w) { w.str(m, 4096); });
}

std::string decode_reason(std::span<const std::uint8_t> payload) {
    StateReader r(payload);
    std::string reason;
    r.str(reason, 4096);
    if (!r.finish()) {
        return "(an unreadable reason)";
    }
    return printable(std::move(reason));
}

const char* MigrationReceiver::phase_name(Phase phase) {
    switch (phase) {
        case Phase::AwaitStart:
            return "awaiting Start";
        case Phase::AwaitConfig:
            return "awaiting Config";
        case Phase::Memory:
            return "receiving memory";
        case Phase::AwaitComplete:
            return "awaiting Complete";
        case Phase::Done:
            return "done";
        case Phase::Failed:
            return "failed";
    }
    return "?";
}

Result<void> MigrationReceiver::on_frame(const Frame& frame, UniqueFd fd) {
    if (m_phase == Phase::Failed || m_phase == Phase::Done) {
        return Error(fmt::format("{} frame after the migration {}", command_name(frame.command),
                                 m_phase == Phase::Done ? "completed" : "failed"));
    }
    if (fd.valid() && frame.command != MigrationCommand::MemoryFd) {
        m_phase = Phase::Failed;
        return Error(
            fmt::format("a file descriptor came with a {} frame (only MemoryFd carries one)",
                        command_name(frame.command)));
    }
    auto r = act(frame, std::move(fd));
    if (!r) {
        m_phase = Phase::Failed;
    }
    return r;
}

Result<void> MigrationReceiver::act(const Frame& frame, UniqueFd fd) {
    const auto unexpected = [&] {
        return Error(fmt::format("unexpected {} frame while {}", command_name(frame.command),
                                 phase_name(m_phase)));
    };
    switch (frame.command) {
        case MigrationCommand::Abandon:
            return Error("the sender abandoned the migration: " + decode_reason(frame.payload));
        case MigrationCommand::Start: {
            if (m_phase != Phase::AwaitStart) {
                return unexpected();
            }
            StateReader r(frame.payload);
            std::uint32_t version = 0;
            std::uint32_t flags = 0;
            r(version, flags);
            if (auto done = r.finish(); !done) {
                return done.error().wrap("Start frame");
            }
            if (version != kMigrationProtocolVersion) {
                return Error(
                    fmt::format("the sender speaks migration protocol version {}; this vireo "
                                "speaks version {}",
                                version, kMigrationProtocolVersion));
            }
            if ((flags & ~kStartLocal) != 0) {
                return Error(fmt::format("Start frame with unknown flags {:#x}", flags));
            }
            m_local = (flags & kStartLocal) != 0;
            if (m_local_only && !m_local) {
                return Error(
                    "this destination takes only a local migration (RAM handed over, \"local\": "
                    "true); the sender copies it");
            }
            m_phase = Phase::AwaitConfig;
            return ok();
        }
        case MigrationCommand::Config: {
            if (m_phase != Phase::AwaitConfig) {
                return unexpected();
            }
            auto config = decode_config(frame.payload);
            if (!config) {
                return config.error();
            }
            auto memory = m_target.prepare(*config, m_local);
            if (!memory) {
                return memory.error();
            }
            if ((*memory == nullptr) != m_local) {
                return Error("the destination prepared guest RAM the wrong way for this migration");
            }
            m_memory = *memory;
            if (m_memory != nullptr) {
                m_written = WrittenPages(*m_memory);
            }
            m_phase = Phase::Memory;
            return ok();
        }
        case MigrationCommand::MemoryFd: {
            // Once, in a local migration, before anything else of the memory phase.
            if (m_phase != Phase::Memory || !m_local || m_memory != nullptr) {
                return unexpected();
            }
            StateReader r(frame.payload);
            std::uint64_t size = 0;
            r(size);
            if (auto done = r.finish(); !done) {
                return done.error().wrap("MemoryFd frame");
            }
            if (!fd.valid()) {
                return Error(
                    "MemoryFd frame without its file descriptor (a local migration needs a Unix "
                    "socket)");
            }
            auto memory = m_target.adopt(std::move(fd), size);
            if (!memory) {
                return memory.error();
            }
            m_memory = *memory;
            return ok();
        }
        case MigrationCommand::Memory: {
            if ((m_phase != Phase::Memory && m_phase != Phase::AwaitComplete) || m_local) {
                return unexpected();
            }
            const TimeAccount account(m_apply_time);
            auto applied = apply_page_run(*m_memory, frame.payload, &m_written);
            if (!applied) {
                return applied.error();
            }
            m_pages += applied->pages;
            m_zero_pages += applied->zero_pages;
            return ok();
        }
        case MigrationCommand::Iteration: {
            if (m_phase != Phase::Memory || m_local) {
                return unexpected();
            }
            StateReader r(frame.payload);
            std::uint32_t number = 0;
            std::uint64_t pages = 0;
            r(number, pages);
            if (auto done = r.finish(); !done) {
                return done.error().wrap("Iteration frame");
            }
            if (number != m_iteration + 1) {
                return Error(
                    fmt::format("Iteration frame {} after iteration {}", number, m_iteration));
            }
            m_iteration = number;
            return ok();
        }
        case MigrationCommand::State: {
            if (m_phase != Phase::Memory || m_memory == nullptr) {
                return unexpected();
            }
            auto state = decode_snapshot(frame.payload);
            if (!state) {
                return state.error().wrap("State frame");
            }
            m_state = std::move(state).value();
            m_phase = Phase::AwaitComplete;
            return ok();
        }
        case MigrationCommand::Complete: {
            if (m_phase != Phase::AwaitComplete) {
                return unexpected();
            }
            if (auto r = m_target.finish(m_state); !r) {
                return r;
            }
            m_phase = Phase::Done;
            return ok();
        }
        case MigrationCommand::Ack:
        case MigrationCommand::Commit:
            return unexpected();
    }
    return unexpected();
}

Result<ReceiveOutcome> serve_migration(FrameChannel& channel, MigrationReceiver& receiver,
                                       std::chrono::milliseconds idle) {
    Frame frame;  // one payload buffer for the whole stream
    while (receiver.phase() != MigrationReceiver::Phase::Done) {
        if (auto got = channel.receive_into(frame, idle); !got) {
            // A frame that fails its checks (or a silent source): say why, if the link works.
            static_cast<void>(
                channel.send(MigrationCommand::Abandon, encode_reason(got.error().message())));
            return got.error();
        }
        const bool completing = frame.command == MigrationCommand::Complete;
        const bool configuring = frame.command == MigrationCommand::Config;
        if (auto r = receiver.on_frame(frame, channel.take_received_fd()); !r) {
            // Complete failed: the VM could not be built; tell the source in the Ack it waits
            // for. Anything else: Abandon (unless the source abandoned first).
            if (completing) {
                static_cast<void>(
                    channel.send(MigrationCommand::Ack, encode_ack(false, r.error().message())));
            } else if (frame.command != MigrationCommand::Abandon) {
                static_cast<void>(
                    channel.send(MigrationCommand::Abandon, encode_reason(r.error().message())));
            }
            return r.error();
        }
        if (configuring) {
            if (auto r = channel.send(MigrationCommand::Ack, encode_ack(true, "ready")); !r) {
                return r.error();
            }
        }
    }
    if (auto r = channel.send(MigrationCommand::Ack, encode_ack(true, "")); !r) {
        // The source cannot know the VM is here: it resumes its own. Ours must not run.
        return r.error().wrap("sending the acknowledgement");
    }
    auto commit = channel.receive(idle);
    if (!commit || commit->command != MigrationCommand::Commit) {
        return ReceiveOutcome::Uncommitted;
    }
    return ReceiveOutcome::Committed;
}

}  // namespace vireo::migration
