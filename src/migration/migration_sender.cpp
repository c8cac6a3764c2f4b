#include "migration/migration_sender.h"

#include <poll.h>

#include <bit>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/time_account.h"
#include "migration/migration_pages.h"

namespace vireo::migration {

namespace {

using Clock = std::chrono::steady_clock;

double ms_of(std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

constexpr auto kConnectTimeout = std::chrono::seconds(10);
// The destination builds the VM between Complete and Ack (devices, taps, disks): generous.
constexpr auto kAckTimeout = std::chrono::seconds(60);
// Auto-converge, as QEMU's: the first step and each further one, and the ceiling.
constexpr unsigned kThrottleFirst = 20;
constexpr unsigned kThrottleStep = 10;
constexpr unsigned kThrottleMax = 99;
// Once the estimate fits the limit, another pass is still worth its time while it leaves at most
// half as many dirty pages as the one before and more than this many remain: the VM stops only
// for what a pass can no longer shrink (an idle guest: a handful of pages, not what it dirtied
// during the whole first pass). Bounded by kMaxExtraPasses and by the time limit.
constexpr std::uint64_t kFewPages = 64;
constexpr unsigned kMaxExtraPasses = 4;

}  // namespace

const char* migration_state_name(MigrationState state) {
    switch (state) {
        case MigrationState::None:
            return "none";
        case MigrationState::Active:
            return "active";
        case MigrationState::Completed:
            return "completed";
        case MigrationState::Failed:
            return "failed";
        case MigrationState::Cancelled:
            return "cancelled";
    }
    return "?";
}

std::uint64_t count_pages(const std::vector<std::vector<std::uint64_t>>& bitmaps) {
    std::uint64_t n = 0;
    for (const auto& b : bitmaps) {
        for (std::uint64_t w : b) {
            n += static_cast<std::uint64_t>(std::popcount(w));
        }
    }
    return n;
}

Result<std::unique_ptr<MigrationSender>> MigrationSender::create(MigrationSource& source,
                                                                 SendOptions options) {
    auto stop = EventFd::create();
    if (!stop) {
        return stop.error();
    }
    std::unique_ptr<MigrationSender> s(
        new MigrationSender(source, std::move(options), std::move(stop).value()));
    s->m_progress.state = MigrationState::Active;
    s->m_progress.role = "send";
    s->m_progress.peer = s->m_options.destination.to_string();
    return s;
}

void MigrationSender::cancel() {
    if (!m_committed.load()) {
        m_cancelled.store(true);
        m_stop.signal();
    }
}

MigrationProgress MigrationSender::progress() const {
    std::lock_guard lock(m_mutex);
    MigrationProgress p = m_progress;
    if (m_channel) {
        p.bytes = m_channel->bytes_sent();
    }
    return p;
}

void MigrationSender::update(const std::function<void(MigrationProgress&)>& change) {
    std::lock_guard lock(m_mutex);
    change(m_progress);
}

Result<void> MigrationSender::check_cancel() const {
    if (m_cancelled.load()) {
        return Error("the migration was cancelled");
    }
    return ok();
}

Result<void> MigrationSender::send_pages(const std::vector<std::vector<std::uint64_t>>* dirty,
                                         bool all) {
    const GuestMemory& mem = m_source.memory();
    const auto regions = mem.regions();
    PageRunStats stats;
    const auto started = Clock::now();
    const std::uint64_t bytes_before = m_channel->bytes_sent();
    const auto socket_before = m_channel->io_time();
    m_read_time = m_checksum_time = std::chrono::nanoseconds{0};
    const auto is_set = [&](std::size_t region, std::uint64_t page) {
        if (all) {
            return true;
        }
        const auto& b = (*dirty)[region];
        return page / 64 < b.size() && ((b[page / 64] >> (page % 64)) & 1) != 0;
    };
    for (std::size_t r = 0; r < regions.size(); ++r) {
        const std::uint64_t pages = regions[r].pages();
        std::uint64_t page = 0;
        while (page < pages) {
            if (!all && page % 64 == 0 && page / 64 < (*dirty)[r].size() &&
                (*dirty)[r][page / 64] == 0) {
                page += 64;  // a clean word: 64 pages at once
                continue;
            }
            if (!is_set(r, page)) {
                ++page;
                continue;
            }
            std::uint32_t n = 1;
            while (n < kMaxPagesPerFrame && page + n < pages && is_set(r, page + n)) {
                ++n;
            }
            // Built in place in one buffer: each page is copied once, into the frame.
            begin_frame(m_frame, MigrationCommand::Memory);
            auto appended = [&] {
                const TimeAccount account(m_read_time);
                return append_page_run(mem, GuestAddress{regions[r].start.value + page * kPageSize},
                                       n, all, stats, m_frame);
            }();
            if (!appended) {
                return appended.error();
            }
            if (*appended) {
                {
                    const TimeAccount account(m_checksum_time);
                    finish_frame(m_frame);
                }
                if (auto s = send_encoded(m_frame); !s) {
                    return s;
                }
            }
            page += n;
            if (m_options.max_bandwidth != 0) {
                // Hold the average of this call at the limit: sleep off any lead (cancellable).
                const double sent = static_cast<double>(m_channel->bytes_sent() - bytes_before);
                const auto due =
                    started +
                    std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                        sent / static_cast<double>(m_options.max_bandwidth)));
                if (const auto now = Clock::now(); due > now) {
                    pollfd p{m_stop.fd(), POLLIN, 0};
                    ::poll(&p, 1, static_cast<int>(ms_between(now, due)) + 1);
                    if (auto c = check_cancel(); !c) {
                        return c;
                    }
                }
            }
        }
    }
    m_socket_time = m_channel->io_time() - socket_before;
    m_memory_bytes += m_channel->bytes_sent() - bytes_before;
    m_memory_time += Clock::now() - started;
    update([&](MigrationProgress& p) {
        p.pages += stats.pages;
        const double secs = std::chrono::duration<double>(m_memory_time).count();
        if (secs > 0) {
            p.bandwidth_mib_s = static_cast<double>(m_memory_bytes) / secs / (1 << 20);
        }
    });
    return ok();
}

Result<void> MigrationSender::await_ack(const char* after) {
    auto frame = m_channel->receive(kAckTimeout);
    if (!frame) {
        return m_cancelled.load() ? Error("the migration was cancelled")
                                  : frame.error().wrap("waiting for the destination's answer");
    }
    if (frame->command == MigrationCommand::Abandon) {
        return Error("the destination refused: " + decode_reason(frame->payload));
    }
    if (frame->command != MigrationCommand::Ack) {
        return Error(fmt::format("the destination answered {} with {}", after,
                                 command_name(frame->command)));
    }
    auto ack = decode_ack(frame->payload);
    if (!ack) {
        return ack.error();
    }
    if (!ack->first) {
        return Error("the destination could not build the VM: " + ack->second);
    }
    return ok();
}

Result<void> MigrationSender::send_frame(MigrationCommand command,
                                         std::span<const std::uint8_t> payload) {
    return send_encoded(encode_frame(command, payload));
}

Result<void> MigrationSender::send_encoded(std::span<const std::uint8_t> frame) {
    if (auto c = check_cancel(); !c) {
        return c;
    }
    if (auto r = m_channel->send_encoded(frame); !r) {
        if (m_cancelled.load()) {
            return Error("the migration was cancelled");
        }
        // A destination that gave up said why before it closed: that is the better reason.
        if (auto said = m_channel->receive(std::chrono::milliseconds(200));
            said && said->command == MigrationCommand::Abandon) {
            return Error("the destination gave up: " + decode_reason(said->payload));
        }
        return r.error();
    }
    return ok();
}

Result<void> MigrationSender::run() {
    m_start = Clock::now();
    auto result = migrate();
    const double total = ms_between(m_start, Clock::now());
    if (result) {
        update([&](MigrationProgress& p) {
            p.state = MigrationState::Completed;
            p.total_ms = total;
            p.throttle_percent = 0;
        });
        return result;
    }
    // Back as it was. A resume that fails is reported with the migration's own error.
    std::string extra;
    bool may_run = true;
    if (m_released_storage) {
        m_released_storage = false;
        if (auto r = m_source.retake_storage(); !r) {
            // Someone else has the disk now (the destination, if it built the VM after all):
            // running here too could corrupt it. The VM stays paused for its operator.
            may_run = false;
            extra = "; the VM stays paused: " + r.error().message();
        }
    }
    if (m_stopped_vm && may_run) {
        if (auto r = m_source.resume_vm(); !r) {
            extra = "; resuming the VM failed too: " + r.error().message();
        }
        m_stopped_vm = false;
    }
    m_source.set_throttle(0);
    static_cast<void>(m_source.set_dirty_log(false));
    if (m_channel) {
        // Best effort: a destination still listening discards what it has at once.
        static_cast<void>(
            m_channel->send(MigrationCommand::Abandon, encode_reason(result.error().message())));
        m_channel->shutdown();
    }
    const bool cancelled = m_cancelled.load();
    update([&](MigrationProgress& p) {
        p.state = cancelled ? MigrationState::Cancelled : MigrationState::Failed;
        p.error = result.error().message() + extra;
        p.total_ms = total;
        p.throttle_percent = 0;
    });
    return Error(result.error().message() + extra);
}

Result<void> MigrationSender::migrate() {
    auto fd = connect_migration(m_options.destination, m_stop.fd(), kConnectTimeout);
    if (!fd) {
        return m_cancelled.load() ? Error("the migration was cancelled") : fd.error();
    }
    {
        std::lock_guard lock(m_mutex);
        m_channel = std::make_unique<FrameChannel>(std::move(fd).value(), m_stop.fd());
    }
    if (m_options.local && m_source.memory().fd() < 0) {
        return Error(
            "a local migration hands guest RAM over as a memfd: this VM's RAM is not in one "
            "(machine-config \"memory_backend\": \"Memfd\")");
    }
    if (auto r =
            send_frame(MigrationCommand::Start,
                       encode_start(kMigrationProtocolVersion, m_options.local ? kStartLocal : 0));
        !r) {
        return r;
    }
    auto config = m_source.config();
    if (!config) {
        return config.error();
    }
    if (auto r = send_frame(MigrationCommand::Config, encode_config(*config)); !r) {
        return r;
    }
    if (auto r = await_ack("Config"); !r) {
        return r;
    }
    if (m_options.local) {
        if (auto c = check_cancel(); !c) {
            return c;
        }
        const GuestMemory& mem = m_source.memory();
        if (auto r = m_channel->send_with_fd(MigrationCommand::MemoryFd,
                                             encode_memory_fd(mem.total_size()), mem.fd());
            !r) {
            return r;
        }
        return switch_over({});
    }
    if (auto r = m_source.set_dirty_log(true); !r) {
        return r.error().wrap("starting the dirty log");
    }
    // From here every write is logged: pass 1 reads RAM after the log started, so a page written
    // during the pass is either read new or sent again in pass 2.
    if (auto r = m_source.take_dirty(); !r) {
        return r.error();
    }
    auto pass_start = Clock::now();
    std::uint64_t pass_bytes = m_channel->bytes_sent();
    if (auto r = send_pages(nullptr, true); !r) {
        return r;
    }
    std::uint32_t iteration = 1;
    unsigned throttle = 0;
    std::uint64_t previous = UINT64_MAX;  // dirty pages the pass before left
    unsigned extra_passes = 0;
    for (;;) {
        const std::uint64_t sent_in_pass = m_channel->bytes_sent() - pass_bytes;
        if (auto r = send_frame(MigrationCommand::Iteration,
                                encode_iteration(iteration, sent_in_pass / kPageSize));
            !r) {
            return r;
        }
        auto dirty = m_source.take_dirty();
        if (!dirty) {
            return dirty.error();
        }
        const auto now = Clock::now();
        const std::uint64_t n = count_pages(*dirty);
        const double pass_s =
            std::max(1e-6, std::chrono::duration<double>(now - pass_start).count());
        const double secs = std::chrono::duration<double>(m_memory_time).count();
        const double bandwidth =
            secs > 0 ? static_cast<double>(m_memory_bytes) / secs : 1e9;  // bytes per second
        const double expected_ms = static_cast<double>(n * kPageSize) / bandwidth * 1000.0;
        update([&](MigrationProgress& p) {
            p.iteration = iteration;
            p.remaining_pages = n;
            p.dirty_rate_pages_s = static_cast<double>(n) / pass_s;
            p.expected_downtime_ms = expected_ms;
        });
        spdlog::info(
            "migration to {}: pass {} done: {} MiB sent, {} pages dirty, {:.0f} MiB/s, expected "
            "downtime {:.1f} ms{} (reading RAM {:.0f} ms, checksums {:.0f} ms, socket {:.0f} ms)",
            m_options.destination.to_string(), iteration, sent_in_pass >> 20, n,
            bandwidth / (1 << 20), expected_ms,
            throttle != 0 ? fmt::format(", vCPUs throttled {}%", throttle) : "", ms_of(m_read_time),
            ms_of(m_checksum_time), ms_of(m_socket_time));
        if (expected_ms <= static_cast<double>(m_options.downtime.count())) {
            const bool shrinking = n > kFewPages && n <= previous / 2;
            if (!shrinking || extra_passes == kMaxExtraPasses ||
                now - m_start >= m_options.timeout) {
                return switch_over(std::move(dirty).value());
            }
            ++extra_passes;  // it fits already, but one more pass leaves less for the pause
        } else {
            if (now - m_start >= m_options.timeout) {
                if (m_options.cancel_on_timeout) {
                    return Error(fmt::format(
                        "the migration did not converge within {} s (expected downtime {:.0f} ms, "
                        "limit {} ms); timeout_strategy Cancel",
                        m_options.timeout.count(), expected_ms, m_options.downtime.count()));
                }
                spdlog::warn(
                    "migration to {}: time limit reached; switching over anyway "
                    "(timeout_strategy Ignore, expected downtime {:.0f} ms)",
                    m_options.destination.to_string(), expected_ms);
                return switch_over(std::move(dirty).value());
            }
            if (m_options.auto_converge && iteration >= 2 &&
                static_cast<double>(n * kPageSize) > 0.5 * static_cast<double>(sent_in_pass) &&
                throttle < kThrottleMax) {
                throttle = throttle == 0 ? kThrottleFirst
                                         : std::min(kThrottleMax, throttle + kThrottleStep);
                m_source.set_throttle(throttle);
                update([&](MigrationProgress& p) { p.throttle_percent = throttle; });
            }
        }
        previous = n;
        ++iteration;
        pass_start = Clock::now();
        pass_bytes = m_channel->bytes_sent();
        if (auto r = send_pages(&*dirty, false); !r) {
            return r;
        }
    }
}

Result<void> MigrationSender::switch_over(std::vector<std::vector<std::uint64_t>> pending) {
    const auto t0 = Clock::now();
    if (auto r = m_source.stop_vm(); !r) {
        return r.error().wrap("stopping the VM");
    }
    m_stopped_vm = true;
    const auto t_paused = Clock::now();
    m_source.set_throttle(0);
    // A local migration shares RAM with the destination: no page is ever sent.
    const bool copy = !m_options.local;
    if (copy) {
        auto last = m_source.take_dirty();
        if (!last) {
            return last.error();
        }
        for (std::size_t i = 0; i < pending.size() && i < last->size(); ++i) {
            for (std::size_t w = 0; w < pending[i].size() && w < (*last)[i].size(); ++w) {
                pending[i][w] |= (*last)[i][w];
            }
        }
    }
    const std::uint64_t last_pages = count_pages(pending);
    if (auto r = copy ? send_pages(&pending, false) : ok(); !r) {
        return r;
    }
    const auto t_pages = Clock::now();
    auto state = m_source.save_state();
    if (!state) {
        return state.error().wrap("saving the device state");
    }
    if (auto r = send_frame(MigrationCommand::State, *state); !r) {
        return r;
    }
    // Saving the state may write guest RAM (a device's rings, the guest clock page).
    if (copy) {
        auto touched = m_source.take_dirty();
        if (!touched) {
            return touched.error();
        }
        if (auto r = send_pages(&*touched, false); !r) {
            return r;
        }
    }
    // The destination opens the disks when it builds the VM: the images' locks go to it now.
    m_released_storage = true;  // before: a release that fails half-way is taken back whole
    if (auto r = m_source.release_storage(); !r) {
        return r.error().wrap("handing the disks over");
    }
    const auto t_state = Clock::now();
    if (auto r = send_frame(MigrationCommand::Complete, {}); !r) {
        return r;
    }
    if (auto r = await_ack("Complete"); !r) {
        return r;
    }
    // The commit point: the VM is the destination's. Nothing below may bring it back here.
    m_committed.store(true);
    const auto t_ack = Clock::now();
    const double downtime = ms_between(t0, t_ack);
    spdlog::info(
        "migration to {}: switch-over took {:.1f} ms: pausing {:.1f}, the last {} pages {:.1f}, "
        "device state ({} bytes) and the pages it touched {:.1f}, the destination's restore "
        "until its acknowledgement {:.1f}",
        m_options.destination.to_string(), downtime, ms_between(t0, t_paused), last_pages,
        ms_between(t_paused, t_pages), state->size(), ms_between(t_pages, t_state),
        ms_between(t_state, t_ack));
    if (auto r = m_channel->send(MigrationCommand::Commit, {}); !r) {
        spdlog::warn(
            "migration to {}: the destination acknowledged but Commit could not be sent ({}): "
            "it keeps the VM paused until its operator resumes it",
            m_options.destination.to_string(), r.error().message());
    }
    update([&](MigrationProgress& p) {
        p.downtime_ms = downtime;
        p.remaining_pages = 0;
    });
    return ok();
}

}  // namespace vireo::migration
