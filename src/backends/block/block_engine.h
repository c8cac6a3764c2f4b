// Internals shared by BlockFile's two engines. A request is a small state machine
// (BlockRequestState) that says which system call it needs next (a BlockStep) and digests that
// call's result; the io_uring engine turns steps into SQEs, the thread pool runs them as plain
// system calls. So short transfers and the fallocate fallbacks behave the same in both.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "backends/block/block_file.h"
#include "base/result.h"

namespace vireo {

enum class BlockOp : std::uint8_t { Read, Write, Flush, Discard, WriteZeroes };

struct BlockRequest {
    BlockOp op = BlockOp::Read;
    std::uint64_t offset = 0;
    // Read/Write: the sum of the iovec lengths. Discard/WriteZeroes: the range. Flush: 0.
    std::uint64_t length = 0;
    const iovec* iov = nullptr;  // caller-owned until completion (block_file.h)
    std::uint32_t iov_count = 0;
    std::uint64_t tag = 0;
};

// What a file supports, learnt from EOPNOTSUPP answers and shared by all requests (workers update
// it concurrently, hence atomics; relaxed is enough: a stale value only costs one extra attempt).
struct FallocatePolicy {
    std::atomic<bool> zero_range{true};
    std::atomic<bool> punch_hole{true};
};

// One system call to make. Done carries the request's final result instead.
struct BlockStep {
    enum class Kind : std::uint8_t { Readv, Writev, Fdatasync, Fallocate, Done };
    Kind kind = Kind::Done;
    const iovec* iov = nullptr;
    std::uint32_t iov_count = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // Fallocate
    int mode = 0;              // Fallocate
    std::int64_t result = 0;   // Done: bytes or -errno
};

class BlockRequestState {
public:
    void start(const BlockRequest& request, FallocatePolicy* policy);
    // The next system call; the pointers in it stay valid until complete_step().
    BlockStep step();
    // The result of the step returned last: a byte count or 0 on success, -errno on failure.
    void complete_step(std::int64_t result);
    std::uint64_t tag() const { return m_request.tag; }

private:
    enum class Stage : std::uint8_t { Transfer, Sync, ZeroRange, PunchHole, WriteZeros, Done };

    void finish(std::int64_t result) {
        m_stage = Stage::Done;
        m_result = result;
    }
    const iovec* remaining_iovecs(std::uint32_t* count);

    BlockRequest m_request;
    FallocatePolicy* m_policy = nullptr;
    Stage m_stage = Stage::Done;
    std::int64_t m_result = 0;
    std::uint64_t m_done = 0;     // bytes transferred so far (Transfer, WriteZeros)
    std::uint32_t m_retries = 0;  // consecutive EINTR/EAGAIN answers to the current step
    // The rest of the caller's iovecs after a short transfer. Grows on the first short transfer of
    // this slot and keeps its capacity: no allocation in the steady state.
    std::vector<iovec> m_rest;
    iovec m_zero_tail{};  // the last, partial buffer of zeros for WriteZeros
};

// The engine interface BlockFile drives; both implementations own queue_depth request slots.
class BlockEngine {
public:
    virtual ~BlockEngine() = default;
    virtual std::uint32_t free_slots() const = 0;
    // Takes a free slot and queues the request; false when every slot is busy.
    [[nodiscard]] virtual bool enqueue(const BlockRequest& request) = 0;
    virtual Result<void> submit() = 0;
    // Moves up to out.size() completions to `out`, freeing their slots; returns how many.
    virtual std::size_t reap(std::span<BlockCompletion> out) = 0;
};

// Synchronous execution of one step (the thread pool's worker, and a reference for the tests).
std::int64_t run_block_step(int fd, const BlockStep& step);

}  // namespace vireo
