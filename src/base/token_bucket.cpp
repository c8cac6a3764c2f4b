#include "base/token_bucket.h"

#include <algorithm>
#include <limits>

namespace vireo {

namespace {

using u128 = unsigned __int128;

constexpr std::uint64_t kNsPerMs = 1'000'000;

std::uint64_t clamp_u64(u128 v) {
    return v > std::numeric_limits<std::uint64_t>::max() ? std::numeric_limits<std::uint64_t>::max()
                                                         : static_cast<std::uint64_t>(v);
}

}  // namespace

TokenBucket::TokenBucket(std::uint64_t size, std::uint64_t refill_time_ms, TimePoint now)
    : m_size(size),
      m_refill_time_ms(refill_time_ms),
      m_refill_ns(refill_time_ms * kNsPerMs),
      m_budget(size),
      m_last(now) {}

std::optional<TokenBucket> TokenBucket::create(std::uint64_t size, std::uint64_t one_time_burst,
                                               std::uint64_t refill_time_ms, TimePoint now) {
    if (size == 0 || refill_time_ms == 0 ||
        refill_time_ms > std::numeric_limits<std::uint64_t>::max() / kNsPerMs) {
        return std::nullopt;
    }
    TokenBucket b(size, refill_time_ms, now);
    b.m_initial_one_time_burst = one_time_burst;
    b.m_one_time_burst = one_time_burst;
    return b;
}

std::optional<TokenBucket> TokenBucket::restore(const TokenBucketState& s, TimePoint now) {
    auto b = create(s.size, s.initial_one_time_burst, s.refill_time_ms, now);
    if (!b) {
        return std::nullopt;
    }
    // A state file is outside input: clamp what cannot be, rather than trust it.
    b->m_one_time_burst = std::min(s.one_time_burst, s.initial_one_time_burst);
    b->m_budget = std::min(s.budget, s.size);
    b->m_debt = s.debt;
    return b;
}

void TokenBucket::refill(TimePoint now) {
    if (now <= m_last) {
        return;
    }
    const auto elapsed = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - m_last).count());
    m_last = now;
    // Tokens made = (elapsed * size + carry) / refill_ns, in 128 bits (both factors may use 64);
    // the remainder is the fraction of a token carried to the next refill, so no time is lost
    // to rounding and none counts twice.
    const u128 acc = u128{elapsed} * m_size + m_carry;
    const u128 made = acc / m_refill_ns;
    if (made >= u128{m_debt} + (m_size - m_budget)) {
        m_debt = 0;
        m_budget = m_size;
        m_carry = 0;  // full: time beyond it makes nothing
        return;
    }
    m_carry = static_cast<std::uint64_t>(acc % m_refill_ns);
    auto tokens = static_cast<std::uint64_t>(made);  // < debt + size - budget: fits
    const std::uint64_t pay = std::min(tokens, m_debt);
    m_debt -= pay;
    tokens -= pay;
    m_budget += tokens;  // tokens <= size - budget here
}

TokenBucket::Reduction TokenBucket::reduce(std::uint64_t tokens, TimePoint now) {
    // The burst first; it is only spent if the whole request goes through.
    const std::uint64_t from_burst = std::min(tokens, m_one_time_burst);
    const std::uint64_t rest = tokens - from_burst;
    if (rest == 0) {
        m_one_time_burst -= from_burst;
        return Reduction::Success;
    }
    refill(now);
    if (rest <= m_budget) {
        m_one_time_burst -= from_burst;
        m_budget -= rest;
        return Reduction::Success;
    }
    if (rest > m_size) {
        m_one_time_burst -= from_burst;
        const std::uint64_t beyond = rest - m_budget;
        m_debt = m_debt > std::numeric_limits<std::uint64_t>::max() - beyond
                     ? std::numeric_limits<std::uint64_t>::max()
                     : m_debt + beyond;
        m_budget = 0;
        return Reduction::OverConsumption;
    }
    return Reduction::Failure;
}

void TokenBucket::give_back(std::uint64_t tokens) {
    if (m_one_time_burst > 0) {
        m_one_time_burst = clamp_u64(
            std::min<u128>(u128{m_one_time_burst} + tokens, u128{m_initial_one_time_burst}));
        return;
    }
    const std::uint64_t pay = std::min(tokens, m_debt);
    m_debt -= pay;
    m_budget = clamp_u64(std::min<u128>(u128{m_budget} + (tokens - pay), u128{m_size}));
}

std::chrono::nanoseconds TokenBucket::wait_for(std::uint64_t tokens, TimePoint now) const {
    const std::uint64_t rest = tokens - std::min(tokens, m_one_time_burst);
    if (rest == 0 || rest > m_size) {
        return std::chrono::nanoseconds(0);  // the burst covers it, or it passes as too big
    }
    TokenBucket b = *this;
    b.refill(now);
    if (rest <= b.m_budget) {
        return std::chrono::nanoseconds(0);
    }
    // The debt, then the missing tokens: made once t * size + carry reaches needed * refill_ns
    // (needed and refill_ns are each below 2^64: the product fits in 128 bits).
    const u128 needed = u128{b.m_debt} + (rest - b.m_budget);
    const u128 wait = (needed * b.m_refill_ns - b.m_carry + b.m_size - 1) / b.m_size;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(
        std::min<u128>(wait, u128{std::numeric_limits<std::int64_t>::max()})));
}

TokenBucketState TokenBucket::state() const {
    return {m_size, m_refill_time_ms, m_initial_one_time_burst, m_one_time_burst, m_budget, m_debt};
}

}  // namespace vireo
