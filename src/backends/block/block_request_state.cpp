#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "backends/block/block_engine.h"

namespace vireo {

namespace {

// Source of zeros for write_zeroes where fallocate cannot help. Never written after static
// initialization, so every thread may hand it to the kernel at once. Page-aligned for O_DIRECT.
constexpr std::size_t kZeroBufferSize = std::size_t{64} * 1024;
constexpr std::uint32_t kZeroIovecs = 16;  // 1 MiB per system call
alignas(4096) std::uint8_t g_zeros[kZeroBufferSize];

const std::array<iovec, kZeroIovecs>& zero_iovecs() {
    static const std::array<iovec, kZeroIovecs> iovs = [] {
        std::array<iovec, kZeroIovecs> a{};
        for (auto& v : a) {
            v.iov_base = g_zeros;
            v.iov_len = kZeroBufferSize;
        }
        return a;
    }();
    return iovs;
}

// EINTR/EAGAIN are retried this many times in a row before the request fails with them.
constexpr std::uint32_t kMaxRetries = 16;

}  // namespace

void BlockRequestState::start(const BlockRequest& request, FallocatePolicy* policy) {
    m_request = request;
    m_policy = policy;
    m_done = 0;
    m_result = 0;
    m_retries = 0;
    switch (request.op) {
        case BlockOp::Read:
        case BlockOp::Write:
            m_stage = Stage::Transfer;
            break;
        case BlockOp::Flush:
            m_stage = Stage::Sync;
            return;  // length is irrelevant
        case BlockOp::Discard:
            m_stage =
                policy->punch_hole.load(std::memory_order_relaxed) ? Stage::PunchHole : Stage::Done;
            break;
        case BlockOp::WriteZeroes:
            if (policy->zero_range.load(std::memory_order_relaxed)) {
                m_stage = Stage::ZeroRange;
            } else if (policy->punch_hole.load(std::memory_order_relaxed)) {
                m_stage = Stage::PunchHole;
            } else {
                m_stage = Stage::WriteZeros;
            }
            break;
    }
    if (request.length == 0) {
        finish(0);  // nothing to do; fallocate(len = 0) would even fail with EINVAL
    }
}

const iovec* BlockRequestState::remaining_iovecs(std::uint32_t* count) {
    if (m_done == 0) {
        *count = m_request.iov_count;
        return m_request.iov;
    }
    // Skip what was transferred: whole iovecs, then part of the first remaining one.
    std::uint64_t skip = m_done;
    std::uint32_t first = 0;
    while (first < m_request.iov_count && skip >= m_request.iov[first].iov_len) {
        skip -= m_request.iov[first].iov_len;
        ++first;
    }
    m_rest.assign(m_request.iov + first, m_request.iov + m_request.iov_count);
    if (!m_rest.empty()) {
        m_rest[0].iov_base = static_cast<std::uint8_t*>(m_rest[0].iov_base) + skip;
        m_rest[0].iov_len -= skip;
    }
    *count = static_cast<std::uint32_t>(m_rest.size());
    return m_rest.data();
}

BlockStep BlockRequestState::step() {
    BlockStep s;
    switch (m_stage) {
        case Stage::Transfer:
            s.kind =
                m_request.op == BlockOp::Read ? BlockStep::Kind::Readv : BlockStep::Kind::Writev;
            s.iov = remaining_iovecs(&s.iov_count);
            s.offset = m_request.offset + m_done;
            break;
        case Stage::Sync:
            s.kind = BlockStep::Kind::Fdatasync;
            break;
        case Stage::ZeroRange:
        case Stage::PunchHole:
            s.kind = BlockStep::Kind::Fallocate;
            s.mode = (m_stage == Stage::ZeroRange ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) |
                     FALLOC_FL_KEEP_SIZE;
            s.offset = m_request.offset;
            s.length = m_request.length;
            break;
        case Stage::WriteZeros: {
            s.kind = BlockStep::Kind::Writev;
            s.offset = m_request.offset + m_done;
            const std::uint64_t left = m_request.length - m_done;
            if (left >= kZeroBufferSize) {
                s.iov = zero_iovecs().data();
                s.iov_count = static_cast<std::uint32_t>(
                    std::min<std::uint64_t>(kZeroIovecs, left / kZeroBufferSize));
            } else {
                m_zero_tail.iov_base = g_zeros;
                m_zero_tail.iov_len = left;
                s.iov = &m_zero_tail;
                s.iov_count = 1;
            }
            break;
        }
        case Stage::Done:
            s.kind = BlockStep::Kind::Done;
            s.result = m_result;
            break;
    }
    return s;
}

void BlockRequestState::complete_step(std::int64_t result) {
    if ((result == -EINTR || result == -EAGAIN) && m_stage != Stage::Done &&
        ++m_retries <= kMaxRetries) {
        return;  // the same step again
    }
    m_retries = 0;
    switch (m_stage) {
        case Stage::Transfer:
        case Stage::WriteZeros:
            if (result < 0) {
                finish(result);
            } else if (result == 0) {
                finish(-EIO);  // no progress: the file shrank under us, or a device error
            } else {
                m_done += std::min<std::uint64_t>(static_cast<std::uint64_t>(result),
                                                  m_request.length - m_done);
                if (m_done == m_request.length) {
                    finish(m_stage == Stage::Transfer ? static_cast<std::int64_t>(m_done) : 0);
                }
            }
            break;
        case Stage::Sync:
            finish(result < 0 ? result : 0);
            break;
        case Stage::ZeroRange:
            if (result == -EOPNOTSUPP) {
                m_policy->zero_range.store(false, std::memory_order_relaxed);
                m_stage = m_policy->punch_hole.load(std::memory_order_relaxed) ? Stage::PunchHole
                                                                               : Stage::WriteZeros;
            } else if (result == -EINVAL) {
                // A mode or an alignment this file refuses for this range only (block devices
                // want logical-block alignment): write the zeros instead.
                m_stage = Stage::WriteZeros;
            } else {
                finish(result < 0 ? result : 0);
            }
            break;
        case Stage::PunchHole:
            if (result == -EOPNOTSUPP) {
                m_policy->punch_hole.store(false, std::memory_order_relaxed);
            }
            if (m_request.op == BlockOp::Discard) {
                // Discard is a hint: a file system that cannot punch holes simply keeps the data.
                finish(result < 0 && result != -EOPNOTSUPP ? result : 0);
            } else if (result == -EOPNOTSUPP || result == -EINVAL) {
                m_stage = Stage::WriteZeros;
            } else {
                finish(result < 0 ? result : 0);
            }
            break;
        case Stage::Done:
            break;
    }
}

std::int64_t run_block_step(int fd, const BlockStep& step) {
    // Offsets were checked against the image size, which fits off_t: the casts are exact.
    const auto offset = static_cast<off_t>(step.offset);
    long r = 0;
    switch (step.kind) {
        case BlockStep::Kind::Readv:
            r = ::preadv(fd, step.iov, static_cast<int>(step.iov_count), offset);
            break;
        case BlockStep::Kind::Writev:
            r = ::pwritev(fd, step.iov, static_cast<int>(step.iov_count), offset);
            break;
        case BlockStep::Kind::Fdatasync:
            r = ::fdatasync(fd);
            break;
        case BlockStep::Kind::Fallocate:
            r = ::fallocate(fd, step.mode, offset, static_cast<off_t>(step.length));
            break;
        case BlockStep::Kind::Done:
            return step.result;
    }
    return r < 0 ? -errno : r;
}

}  // namespace vireo
