#include "base/rate_limiter.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace vireo {

namespace {

// The shortest wait the timer is armed for: a throttled queue is retried at most this often
// (wait_for() may say a few nanoseconds when a token is nearly made).
constexpr std::chrono::nanoseconds kMinWait{100'000};

}  // namespace

Result<std::unique_ptr<RateLimiter>> RateLimiter::create(const RateLimiterConfig& config) {
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer.valid()) {
        return Error(fmt::format("rate limiter: timerfd_create: {}", std::strerror(errno)));
    }
    std::unique_ptr<RateLimiter> limiter(new RateLimiter(std::move(timer)));
    limiter->update(config);
    return limiter;
}

void RateLimiter::set_bucket(std::optional<TokenBucket>& bucket, const BucketConfig& config,
                             Clock::time_point now) {
    // create() says nullopt for a bucket that does not limit (size or refill time 0).
    bucket = TokenBucket::create(config.size, config.one_time_burst, config.refill_time_ms, now);
}

RateLimiter::Clock::time_point RateLimiter::coarse_now() {
    // CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC as of the last scheduler tick (1-4 ms old), read
    // from the vDSO's data page without touching the clocksource. libstdc++'s steady_clock is
    // CLOCK_MONOTONIC from epoch 0, so the two compare; the coarse one is never ahead.
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

std::optional<std::chrono::nanoseconds> RateLimiter::take(std::uint64_t bytes, std::uint64_t ops,
                                                          Clock::time_point now) {
    if (m_ops && m_ops->reduce(ops, now) == TokenBucket::Reduction::Failure) {
        return m_ops->wait_for(ops, now);
    }
    if (m_bandwidth && m_bandwidth->reduce(bytes, now) == TokenBucket::Reduction::Failure) {
        if (m_ops) {
            m_ops->give_back(ops);
        }
        return m_bandwidth->wait_for(bytes, now);
    }
    return std::nullopt;
}

bool RateLimiter::consume(std::uint64_t bytes, std::uint64_t ops) {
    std::scoped_lock lock(m_mutex);
    if (m_blocked) {
        ++m_counters.throttled_events;
        return false;
    }
    if (!m_bandwidth && !m_ops) {
        return true;
    }
    // Every request pays for a clock read. Where the host's clocksource is not the TSC (HPET in
    // the nested test host, under QEMU's TCG; some clouds' VMs) a precise read is a system call
    // plus an emulated device read (bench/resources saw an unlimited limiter cost 18% of 4 KiB
    // IOPS in one run there; its pairs swing by +-25%, so that figure is weak). So the buckets
    // are refilled up to the coarse clock first, which is free; only a request they cannot pass
    // then asks the precise clock, so a throttling decision and the timer's wait are exact. (The
    // buckets ignore a time before their last refill: the two clocks may mix.)
    auto wait = take(bytes, ops, coarse_now());
    if (!wait) {
        return true;
    }
    const auto now = Clock::now();
    wait = take(bytes, ops, now);
    if (!wait) {
        return true;
    }
    ++m_counters.throttled_events;
    arm(*wait);
    return false;
}

void RateLimiter::give_back(std::uint64_t bytes, std::uint64_t ops) {
    std::scoped_lock lock(m_mutex);
    if (m_ops) {
        m_ops->give_back(ops);
    }
    if (m_bandwidth) {
        m_bandwidth->give_back(bytes);
    }
}

bool RateLimiter::blocked() const {
    std::scoped_lock lock(m_mutex);
    return m_blocked;
}

bool RateLimiter::limits() const {
    std::scoped_lock lock(m_mutex);
    return m_bandwidth || m_ops;
}

void RateLimiter::arm(std::chrono::nanoseconds wait) {
    wait = std::max(wait, kMinWait);
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
    // A timerfd made by create() with a valid, non-zero it_value: settime cannot fail short of
    // the fd being gone, and then nothing would ever unblock us, so stay unblocked instead.
    if (::timerfd_settime(m_timer.get(), 0, &spec, nullptr) != 0) {
        return;
    }
    m_blocked = true;
}

void RateLimiter::on_timer() {
    std::uint64_t expiries = 0;
    // Non-blocking: a failed read only means the expiry was consumed already.
    if (::read(m_timer.get(), &expiries, sizeof(expiries)) < 0) {
        expiries = 0;
    }
    std::scoped_lock lock(m_mutex);
    if (m_blocked) {
        ++m_counters.timer_events;
    }
    m_blocked = false;
}

void RateLimiter::update(const RateLimiterConfig& config) {
    std::scoped_lock lock(m_mutex);
    const auto now = Clock::now();
    if (config.bandwidth) {
        set_bucket(m_bandwidth, *config.bandwidth, now);
    }
    if (config.ops) {
        set_bucket(m_ops, *config.ops, now);
    }
    if (m_blocked) {
        arm(std::chrono::nanoseconds(0));  // the device looks again under the new limits
    }
}

RateLimiterState RateLimiter::state() const {
    std::scoped_lock lock(m_mutex);
    RateLimiterState s;
    if (m_bandwidth) {
        s.bandwidth = m_bandwidth->state();
    }
    if (m_ops) {
        s.ops = m_ops->state();
    }
    return s;
}

Result<void> RateLimiter::restore(const RateLimiterState& state) {
    const auto now = Clock::now();
    std::optional<TokenBucket> bandwidth;
    std::optional<TokenBucket> ops;
    if (state.bandwidth) {
        bandwidth = TokenBucket::restore(*state.bandwidth, now);
        if (!bandwidth) {
            return Error("saved rate limiter: the bandwidth bucket has size or refill time 0");
        }
    }
    if (state.ops) {
        ops = TokenBucket::restore(*state.ops, now);
        if (!ops) {
            return Error("saved rate limiter: the ops bucket has size or refill time 0");
        }
    }
    std::scoped_lock lock(m_mutex);
    m_bandwidth = std::move(bandwidth);
    m_ops = std::move(ops);
    m_blocked = false;
    itimerspec off{};
    static_cast<void>(::timerfd_settime(m_timer.get(), 0, &off, nullptr));
    return ok();
}

RateLimiterCounters RateLimiter::counters() const {
    std::scoped_lock lock(m_mutex);
    return m_counters;
}

}  // namespace vireo
