#include "base/log_limiter.h"

#include <fmt/format.h>

namespace vireo {

namespace {
std::atomic<std::uint64_t> g_suppressed{0};
}

std::optional<std::string> LogLimiter::admit(Clock::time_point now) {
    std::lock_guard lock(m_mutex);
    if (m_refilled == Clock::time_point{}) {
        m_refilled = now;
    }
    // One token per whole interval elapsed, up to the burst.
    if (now > m_refilled && m_interval.count() > 0) {
        const auto periods = static_cast<std::uint64_t>((now - m_refilled) / m_interval);
        if (periods > 0) {
            const std::uint64_t tokens = std::min<std::uint64_t>(m_burst, m_tokens + periods);
            m_tokens = static_cast<unsigned>(tokens);
            m_refilled += m_interval * static_cast<Clock::rep>(periods);
        }
    }
    if (m_tokens == 0) {
        ++m_dropped_since;
        m_suppressed_total.fetch_add(1, std::memory_order_relaxed);
        g_suppressed.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }
    --m_tokens;
    std::string note;
    if (m_dropped_since > 0) {
        note = fmt::format(" ({} similar lines suppressed)", m_dropped_since);
        m_dropped_since = 0;
    }
    return note;
}

std::uint64_t LogLimiter::suppressed_everywhere() {
    return g_suppressed.load(std::memory_order_relaxed);
}

}  // namespace vireo
