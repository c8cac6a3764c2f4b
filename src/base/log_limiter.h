// A rate limit for log lines a guest (or any outside party) can trigger in a loop: a driver that
// toggles DRIVER_OK, offers refused features or breaks a queue after every reset would otherwise
// fill the log file and the disk under it (DESIGN.md §3: misbehaviour is logged and counted,
// never a flood). Each call site owns one limiter: it admits a burst of lines, then one line per
// interval, and counts the lines it suppressed; the next admitted line reports that count.
//
//     static LogLimiter limit;
//     if (auto note = limit.admit()) {
//         spdlog::warn("{}: ...{}", name, *note);  // *note: "" or " (12 similar lines suppressed)"
//     }
//
// A site's budget is shared by every device that logs through it: one misbehaving device can
// delay another's line by one interval, never hide it beyond that, and the count says so.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace vireo {

class LogLimiter {
public:
    using Clock = std::chrono::steady_clock;

    explicit LogLimiter(unsigned burst = 10, Clock::duration interval = std::chrono::seconds(5))
        : m_burst(burst), m_interval(interval), m_tokens(burst) {}

    // nullopt: drop this line. Otherwise the suffix to append (empty when nothing was dropped
    // since the previous admitted line).
    std::optional<std::string> admit(Clock::time_point now = Clock::now());

    std::uint64_t suppressed() const { return m_suppressed_total.load(std::memory_order_relaxed); }

    // Lines suppressed by every limiter of the process (for metrics).
    static std::uint64_t suppressed_everywhere();

private:
    const unsigned m_burst;
    const Clock::duration m_interval;
    std::mutex m_mutex;
    unsigned m_tokens;                  // guarded by m_mutex
    Clock::time_point m_refilled{};     // guarded by m_mutex
    std::uint64_t m_dropped_since = 0;  // guarded by m_mutex
    std::atomic<std::uint64_t> m_suppressed_total{0};
};

}  // namespace vireo
