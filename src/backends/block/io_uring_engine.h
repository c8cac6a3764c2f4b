// The primary block engine: one io_uring per image, its completion eventfd registered with
// io_uring_register_eventfd so the device thread's EventLoop wakes on completions.
//
// Each slot has at most one SQE in the ring at a time (its current step), so the SQ (sized to the
// queue depth) never runs out and the CQ (twice that) never overflows. A step that finishes a
// request immediately (zero length, discard without fallocate) goes through a NOP so that every
// completion takes the same path. Only the device thread touches the ring.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/block/block_engine.h"
#include "base/event_fd.h"

namespace vireo {

class IoUringEngine final : public BlockEngine {
public:
    // Fails when the kernel refuses io_uring (ENOSYS, EPERM from kernel.io_uring_disabled or
    // seccomp) or lacks an operation vireo needs. `fd`, `done` and `policy` must outlive the
    // engine.
    static Result<std::unique_ptr<IoUringEngine>> create(int fd, const EventFd& done,
                                                         std::uint32_t depth,
                                                         FallocatePolicy* policy);
    IoUringEngine(const IoUringEngine&) = delete;
    IoUringEngine& operator=(const IoUringEngine&) = delete;
    // Waits for the SQEs the kernel has (it may still be writing into guest memory), then
    // tears the ring down.
    ~IoUringEngine() override;

    std::uint32_t free_slots() const override { return static_cast<std::uint32_t>(m_free.size()); }
    bool enqueue(const BlockRequest& request) override;
    Result<void> submit() override;
    std::size_t reap(std::span<BlockCompletion> out) override;

private:
    IoUringEngine(int fd, std::uint32_t depth, FallocatePolicy* policy);
    // Puts the slot's step into an SQE; false if the SQ is full (not expected, see above).
    bool prepare(std::uint32_t index, const BlockStep& step);

    const int m_fd;
    FallocatePolicy* const m_policy;
    io_uring m_ring{};
    bool m_ring_ready = false;
    std::vector<BlockRequestState> m_slots;
    std::vector<std::uint32_t> m_free;
    std::uint32_t m_unsubmitted = 0;  // SQEs prepared, not yet handed to the kernel
    std::uint32_t m_in_kernel = 0;    // SQEs submitted whose CQE has not been seen
};

}  // namespace vireo
