// What a rate limiter is configured with (issue 15), as plain values: the API's request types, the
// machine configuration and the devices share it (base/rate_limiter.h is the limiter itself).
#pragma once

#include <cstdint>
#include <optional>

namespace vireo {

// The longest refill time a bucket takes: its nanoseconds must fit in 64 bits (584 years).
inline constexpr std::uint64_t kMaxRefillTimeMs = ~std::uint64_t{0} / 1'000'000;

// One bucket as Firecracker's API gives it: `size` tokens per `refill_time_ms`, plus a one-time
// burst. size 0 or refill_time_ms 0 means no limit.
struct BucketConfig {
    std::uint64_t size = 0;
    std::uint64_t one_time_burst = 0;
    std::uint64_t refill_time_ms = 0;

    bool limits() const { return size != 0 && refill_time_ms != 0; }
    friend bool operator==(const BucketConfig&, const BucketConfig&) = default;
};

// A limiter's configuration. At creation an absent bucket is no limit; in an update (PATCH) an
// absent bucket is left as it is, and a present one replaces the old with a fresh full bucket
// (the one-time burst re-armed), or removes it when it does not limit.
struct RateLimiterConfig {
    std::optional<BucketConfig> bandwidth{};  // bytes
    std::optional<BucketConfig> ops{};        // requests

    bool limits() const { return (bandwidth && bandwidth->limits()) || (ops && ops->limits()); }
    friend bool operator==(const RateLimiterConfig&, const RateLimiterConfig&) = default;
};

// `current` after a PATCH with `update`: a bucket the update names replaces the old one, or
// removes it when it does not limit; the others stay.
inline RateLimiterConfig updated(const std::optional<RateLimiterConfig>& current,
                                 const RateLimiterConfig& update) {
    RateLimiterConfig out = current.value_or(RateLimiterConfig{});
    if (update.bandwidth) {
        out.bandwidth = update.bandwidth->limits() ? update.bandwidth : std::nullopt;
    }
    if (update.ops) {
        out.ops = update.ops->limits() ? update.ops : std::nullopt;
    }
    return out;
}

}  // namespace vireo
