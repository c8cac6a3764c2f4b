// The request state machine both block engines share, driven with made-up system call results:
// short transfers, retries and the fallocate fallbacks, which real files rarely produce on demand.
#include <linux/falloc.h>

#include <array>
#include <cerrno>
#include <cstdint>

#include <gtest/gtest.h>

#include "backends/block/block_engine.h"

namespace vireo {
namespace {

using Kind = BlockStep::Kind;

TEST(BlockRequestState, ShortReadsContinueWhereTheyStopped) {
    std::array<std::uint8_t, 300> buf{};
    const std::array<iovec, 3> iov{
        {{buf.data(), 100}, {buf.data() + 100, 100}, {buf.data() + 200, 100}}};
    FallocatePolicy policy;
    BlockRequestState s;
    s.start({BlockOp::Read, 4096, 300, iov.data(), 3, 7}, &policy);
    BlockStep step = s.step();
    ASSERT_EQ(step.kind, Kind::Readv);
    EXPECT_EQ(step.iov, iov.data());  // the caller's array, untouched, on the first attempt
    EXPECT_EQ(step.iov_count, 3U);
    EXPECT_EQ(step.offset, 4096U);

    s.complete_step(150);  // stopped in the middle of the second buffer
    step = s.step();
    ASSERT_EQ(step.kind, Kind::Readv);
    ASSERT_EQ(step.iov_count, 2U);
    EXPECT_EQ(step.iov[0].iov_base, buf.data() + 150);
    EXPECT_EQ(step.iov[0].iov_len, 50U);
    EXPECT_EQ(step.iov[1].iov_base, buf.data() + 200);
    EXPECT_EQ(step.offset, 4096U + 150);

    s.complete_step(-EINTR);  // retried as is
    EXPECT_EQ(s.step().offset, 4096U + 150);

    s.complete_step(50);  // exactly the end of an iovec
    step = s.step();
    ASSERT_EQ(step.iov_count, 1U);
    EXPECT_EQ(step.iov[0].iov_base, buf.data() + 200);
    EXPECT_EQ(step.iov[0].iov_len, 100U);

    s.complete_step(100);
    step = s.step();
    ASSERT_EQ(step.kind, Kind::Done);
    EXPECT_EQ(step.result, 300);
    EXPECT_EQ(s.tag(), 7U);
    EXPECT_EQ(iov[1].iov_len, 100U);  // the caller's array was never modified
}

TEST(BlockRequestState, NoProgressIsAnIoErrorAndErrorsPassThrough) {
    std::array<std::uint8_t, 64> buf{};
    const iovec iov{buf.data(), buf.size()};
    FallocatePolicy policy;
    BlockRequestState s;
    s.start({BlockOp::Write, 0, 64, &iov, 1, 1}, &policy);
    s.complete_step(0);
    EXPECT_EQ(s.step().kind, Kind::Done);
    EXPECT_EQ(s.step().result, -EIO);

    s.start({BlockOp::Read, 0, 64, &iov, 1, 2}, &policy);
    s.complete_step(-ENOSPC);
    EXPECT_EQ(s.step().result, -ENOSPC);

    // EAGAIN forever gives up eventually instead of spinning.
    s.start({BlockOp::Read, 0, 64, &iov, 1, 3}, &policy);
    int attempts = 0;
    while (s.step().kind != Kind::Done && attempts < 100) {
        s.complete_step(-EAGAIN);
        ++attempts;
    }
    EXPECT_EQ(s.step().result, -EAGAIN);
    EXPECT_LT(attempts, 100);
}

TEST(BlockRequestState, WriteZeroesFallsBackToPunchHoleThenToWritingZeros) {
    FallocatePolicy policy;
    BlockRequestState s;
    const std::uint64_t len = (1 << 20) + (64 << 10) + 100;  // 1 MiB + 64 KiB + 100 bytes
    s.start({BlockOp::WriteZeroes, 512, len, nullptr, 0, 9}, &policy);
    BlockStep step = s.step();
    ASSERT_EQ(step.kind, Kind::Fallocate);
    EXPECT_EQ(step.mode, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
    EXPECT_EQ(step.offset, 512U);
    EXPECT_EQ(step.length, len);

    s.complete_step(-EOPNOTSUPP);
    EXPECT_FALSE(policy.zero_range.load());
    step = s.step();
    ASSERT_EQ(step.kind, Kind::Fallocate);
    EXPECT_EQ(step.mode, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);

    s.complete_step(-EOPNOTSUPP);
    EXPECT_FALSE(policy.punch_hole.load());
    std::uint64_t written = 0;
    for (step = s.step(); step.kind == Kind::Writev; step = s.step()) {
        EXPECT_EQ(step.offset, 512 + written);
        std::uint64_t bytes = 0;
        for (std::uint32_t i = 0; i < step.iov_count; ++i) {
            const auto* p = static_cast<const std::uint8_t*>(step.iov[i].iov_base);
            for (std::size_t j = 0; j < step.iov[i].iov_len; j += 4093) {
                ASSERT_EQ(p[j], 0);
            }
            bytes += step.iov[i].iov_len;
        }
        written += bytes;
        s.complete_step(static_cast<std::int64_t>(bytes));
    }
    EXPECT_EQ(written, len);
    EXPECT_EQ(step.kind, Kind::Done);
    EXPECT_EQ(step.result, 0);

    // What was learnt applies to the next request: straight to writing zeros.
    s.start({BlockOp::WriteZeroes, 0, 4096, nullptr, 0, 10}, &policy);
    EXPECT_EQ(s.step().kind, Kind::Writev);
}

TEST(BlockRequestState, DiscardIsAHintAndZeroLengthNeedsNoSystemCall) {
    FallocatePolicy policy;
    BlockRequestState s;
    s.start({BlockOp::Discard, 0, 4096, nullptr, 0, 1}, &policy);
    ASSERT_EQ(s.step().kind, Kind::Fallocate);
    s.complete_step(-EOPNOTSUPP);
    EXPECT_EQ(s.step().kind, Kind::Done);
    EXPECT_EQ(s.step().result, 0);
    // Known unsupported: done without trying.
    s.start({BlockOp::Discard, 0, 4096, nullptr, 0, 2}, &policy);
    EXPECT_EQ(s.step().kind, Kind::Done);
    // Real errors are reported.
    FallocatePolicy fresh;
    s.start({BlockOp::Discard, 0, 4096, nullptr, 0, 3}, &fresh);
    s.complete_step(-EIO);
    EXPECT_EQ(s.step().result, -EIO);

    s.start({BlockOp::WriteZeroes, 0, 0, nullptr, 0, 4}, &fresh);
    EXPECT_EQ(s.step().kind, Kind::Done);
    s.start({BlockOp::Read, 0, 0, nullptr, 0, 5}, &fresh);
    EXPECT_EQ(s.step().kind, Kind::Done);
    EXPECT_EQ(s.step().result, 0);
    s.start({BlockOp::Flush, 0, 0, nullptr, 0, 6}, &fresh);
    EXPECT_EQ(s.step().kind, Kind::Fdatasync);
    s.complete_step(0);
    EXPECT_EQ(s.step().result, 0);
}

}  // namespace
}  // namespace vireo
