// TokenBucket: the bucket of Firecracker's rate limiters (issue 15), for bytes or operations.
//
// Semantics (Firecracker's API docs, "rate_limiter"): `size` tokens refill evenly over
// `refill_time` (continuously: any elapsed time yields its share, the fraction of a token carried
// over, never lost or counted twice); the bucket starts full; a one-time burst is spent before
// the bucket and never refills. A request for more tokens than the bucket holds when full is let
// through once (big I/O must never deadlock) and empties it; what it took beyond the bucket is a
// debt that refills pay first, so the long-run rate still holds.
//
// Time is passed in (`now`), so tests drive it and the owner decides the clock (steady).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace vireo {

// A bucket's saved form (snapshots): everything but the time, which restarts at restore.
struct TokenBucketState {
    std::uint64_t size = 0;
    std::uint64_t refill_time_ms = 0;
    std::uint64_t initial_one_time_burst = 0;
    std::uint64_t one_time_burst = 0;  // left
    std::uint64_t budget = 0;
    std::uint64_t debt = 0;
};

class TokenBucket {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    // A full bucket; nullopt when `size` or `refill_time_ms` is 0 (no limit, as Firecracker
    // treats them) or the refill time does not fit in nanoseconds.
    static std::optional<TokenBucket> create(std::uint64_t size, std::uint64_t one_time_burst,
                                             std::uint64_t refill_time_ms, TimePoint now);
    // From a saved state (its checks as create's); the refill clock starts at `now`.
    static std::optional<TokenBucket> restore(const TokenBucketState& state, TimePoint now);

    enum class Reduction {
        Success,          // taken
        Failure,          // not enough now: nothing taken (wait_for says how long)
        OverConsumption,  // more than the bucket holds: let through, the bucket emptied
    };
    Reduction reduce(std::uint64_t tokens, TimePoint now);

    // Hands back tokens taken for a request that was then not carried out (to the burst while
    // some of it is left, else to the bucket), never beyond what either holds when full.
    void give_back(std::uint64_t tokens);

    // How long until reduce(tokens) can succeed (requests beyond the bucket count as a full
    // bucket): zero if it can now.
    std::chrono::nanoseconds wait_for(std::uint64_t tokens, TimePoint now) const;

    TokenBucketState state() const;
    std::uint64_t size() const { return m_size; }
    std::uint64_t refill_time_ms() const { return m_refill_time_ms; }
    std::uint64_t budget() const { return m_budget; }
    std::uint64_t one_time_burst() const { return m_one_time_burst; }

private:
    TokenBucket(std::uint64_t size, std::uint64_t refill_time_ms, TimePoint now);
    // Adds the tokens the time since m_last has made (paying the debt first).
    void refill(TimePoint now);

    std::uint64_t m_size;
    std::uint64_t m_refill_time_ms;
    std::uint64_t m_refill_ns;
    std::uint64_t m_initial_one_time_burst = 0;
    std::uint64_t m_one_time_burst = 0;
    std::uint64_t m_budget;
    std::uint64_t m_debt = 0;
    std::uint64_t m_carry = 0;  // a token's fraction, in units of 1/refill_ns (< refill_ns)
    TimePoint m_last;           // the time up to which refills are counted
};

}  // namespace vireo
