// RateLimiter: Firecracker's I/O rate limiter (issue 15): an optional bandwidth bucket (bytes) and
// an optional ops bucket (requests), each a TokenBucket, and the timer a throttled device waits on.
//
// A device asks consume(bytes, ops) before it carries a request out. When either bucket is short,
// nothing is taken (the ops already taken are given back), the limiter becomes blocked and arms
// its timerfd for the moment the short bucket will hold enough; the device puts the request back
// (never fails or drops it) and stops serving that queue. While blocked, consume() says no at
// once and counts nothing but the refusal, so kicks cost a counter. The device's event loop
// watches timer_fd(); on_timer() unblocks, and the device serves the queue again. Never a busy
// loop: the device only retries when the timer fires.
//
// Threads: consume/on_timer on the device thread; update() (PATCH) and state() from the VMM's
// control thread. A mutex makes each call atomic; it is uncontended in the I/O path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "base/rate_limiter_config.h"
#include "base/result.h"
#include "base/token_bucket.h"
#include "base/unique_fd.h"

namespace vireo {

// The saved form (snapshots): the buckets' states; the timer is restored disarmed.
struct RateLimiterState {
    std::optional<TokenBucketState> bandwidth{};
    std::optional<TokenBucketState> ops{};
};

// Counters for metrics (Firecracker's rate_limiter_throttled_events and friends).
struct RateLimiterCounters {
    std::uint64_t throttled_events = 0;  // consume() calls refused
    std::uint64_t timer_events = 0;      // timer expiries that unblocked the limiter
};

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    // The timerfd is made here (the VMM thread, before any sandbox).
    static Result<std::unique_ptr<RateLimiter>> create(const RateLimiterConfig& config);

    // Whether a request of `bytes` bytes and `ops` operations may go now. False: throttled,
    // nothing taken, the timer armed; the caller puts the request back and waits for on_timer().
    bool consume(std::uint64_t bytes, std::uint64_t ops = 1);
    // Hands back what consume() took for a request that was then not carried out.
    void give_back(std::uint64_t bytes, std::uint64_t ops = 1);
    bool blocked() const;
    // Whether any bucket limits at all (an unlimited limiter's consume() always says yes).
    bool limits() const;

    // The fd to watch for EPOLLIN; on_timer() reads it and unblocks.
    int timer_fd() const { return m_timer.get(); }
    void on_timer();

    // PATCH semantics (see RateLimiterConfig). A blocked limiter's timer fires at once, so the
    // device looks at its queue again under the new limits.
    void update(const RateLimiterConfig& config);

    RateLimiterState state() const;
    // Buckets from a saved state (clamped by TokenBucket::restore); unblocked, timer disarmed.
    // An error when a saved bucket is invalid (size or refill time 0).
    Result<void> restore(const RateLimiterState& state);

    RateLimiterCounters counters() const;

    // The monotonic clock as of the last scheduler tick: cheap on any clocksource, never ahead
    // of Clock::now().
    static Clock::time_point coarse_now();

private:
    explicit RateLimiter(UniqueFd timer) : m_timer(std::move(timer)) {}
    void set_bucket(std::optional<TokenBucket>& bucket, const BucketConfig& config,
                    Clock::time_point now);
    void arm(std::chrono::nanoseconds wait);
    // Takes a request's tokens from both buckets at `now`: nullopt when they passed, else the
    // wait until they would (nothing taken).
    std::optional<std::chrono::nanoseconds> take(std::uint64_t bytes, std::uint64_t ops,
                                                 Clock::time_point now);

    mutable std::mutex m_mutex;
    UniqueFd m_timer;
    std::optional<TokenBucket> m_bandwidth;
    std::optional<TokenBucket> m_ops;
    bool m_blocked = false;
    RateLimiterCounters m_counters;
};

template <typename Ar>
void persist(Ar& ar, TokenBucketState& s) {
    ar(s.size, s.refill_time_ms, s.initial_one_time_burst, s.one_time_burst, s.budget, s.debt);
}

template <typename Ar>
void persist(Ar& ar, RateLimiterState& s) {
    ar.opt(s.bandwidth);
    ar.opt(s.ops);
}

}  // namespace vireo
