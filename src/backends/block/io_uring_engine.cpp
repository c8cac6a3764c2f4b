#include "backends/block/io_uring_engine.h"

#include <cerrno>

#include <fmt/format.h>

namespace vireo {

IoUringEngine::IoUringEngine(int fd, std::uint32_t depth, FallocatePolicy* policy)
    : m_fd(fd), m_policy(policy), m_slots(depth) {
    m_free.reserve(depth);
    for (std::uint32_t i = depth; i > 0; --i) {
        m_free.push_back(i - 1);
    }
}

Result<std::unique_ptr<IoUringEngine>> IoUringEngine::create(int fd, const EventFd& done,
                                                             std::uint32_t depth,
                                                             FallocatePolicy* policy) {
    std::unique_ptr<IoUringEngine> engine(new IoUringEngine(fd, depth, policy));
    int r = io_uring_queue_init(depth, &engine->m_ring, 0);
    if (r < 0) {
        return Error::from_errno("io_uring_queue_init", -r);
    }
    engine->m_ring_ready = true;

    io_uring_probe* probe = io_uring_get_probe_ring(&engine->m_ring);
    if (probe == nullptr) {
        return Error("io_uring: cannot probe the supported operations");
    }
    for (int op :
         {IORING_OP_NOP, IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE}) {
        if (io_uring_opcode_supported(probe, op) == 0) {
            io_uring_free_probe(probe);
            return Error(fmt::format("io_uring: the kernel lacks operation {}", op));
        }
    }
    io_uring_free_probe(probe);

    r = io_uring_register_eventfd(&engine->m_ring, done.fd());
    if (r < 0) {
        return Error::from_errno("io_uring_register_eventfd", -r);
    }
    return engine;
}

IoUringEngine::~IoUringEngine() {
    if (!m_ring_ready) {
        return;
    }
    while (m_in_kernel > 0) {
        io_uring_cqe* cqe = nullptr;
        const int r = io_uring_wait_cqe(&m_ring, &cqe);
        if (r == -EINTR) {
            continue;
        }
        if (r < 0) {
            break;  // the ring is broken; io_uring_queue_exit cancels what is left
        }
        io_uring_cqe_seen(&m_ring, cqe);
        --m_in_kernel;
    }
    io_uring_queue_exit(&m_ring);
}

bool IoUringEngine::prepare(std::uint32_t index, const BlockStep& step) {
    io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
    if (sqe == nullptr) {
        return false;
    }
    // Offsets were checked against the image size, which fits off_t.
    switch (step.kind) {
        case BlockStep::Kind::Readv:
            io_uring_prep_readv(sqe, m_fd, step.iov, step.iov_count, step.offset);
            break;
        case BlockStep::Kind::Writev:
            io_uring_prep_writev(sqe, m_fd, step.iov, step.iov_count, step.offset);
            break;
        case BlockStep::Kind::Fdatasync:
            io_uring_prep_fsync(sqe, m_fd, IORING_FSYNC_DATASYNC);
            break;
        case BlockStep::Kind::Fallocate:
            io_uring_prep_fallocate(sqe, m_fd, step.mode, static_cast<off_t>(step.offset),
                                    static_cast<off_t>(step.length));
            break;
        case BlockStep::Kind::Done:
            io_uring_prep_nop(sqe);
            break;
    }
    io_uring_sqe_set_data64(sqe, index);
    ++m_unsubmitted;
    return true;
}

bool IoUringEngine::enqueue(const BlockRequest& request) {
    if (m_free.empty()) {
        return false;
    }
    const std::uint32_t index = m_free.back();
    m_slots[index].start(request, m_policy);
    if (!prepare(index, m_slots[index].step())) {
        return false;
    }
    m_free.pop_back();
    return true;
}

Result<void> IoUringEngine::submit() {
    while (m_unsubmitted > 0) {
        const int r = io_uring_submit(&m_ring);
        if (r == -EINTR) {
            continue;
        }
        if (r < 0) {
            return Error::from_errno("io_uring_submit", -r);
        }
        if (r == 0) {
            break;  // nothing was taken; keep the count for the next attempt
        }
        const auto n = static_cast<std::uint32_t>(r);
        m_in_kernel += n;
        m_unsubmitted -= n < m_unsubmitted ? n : m_unsubmitted;
    }
    return ok();
}

std::size_t IoUringEngine::reap(std::span<BlockCompletion> out) {
    std::size_t n = 0;
    bool resubmit = false;
    while (n < out.size()) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(&m_ring, &cqe) != 0 || cqe == nullptr) {
            break;
        }
        const std::uint64_t index = io_uring_cqe_get_data64(cqe);
        const std::int64_t res = cqe->res;
        io_uring_cqe_seen(&m_ring, cqe);
        --m_in_kernel;
        if (index >= m_slots.size()) {
            continue;  // not ours; cannot happen, every SQE carries a slot index
        }
        BlockRequestState& state = m_slots[index];
        state.complete_step(res);
        const BlockStep next = state.step();
        if (next.kind != BlockStep::Kind::Done) {
            if (prepare(static_cast<std::uint32_t>(index), next)) {
                resubmit = true;  // a short transfer's rest, a retry or a fallback
                continue;
            }
            out[n] = {state.tag(), -EBUSY};
        } else {
            out[n] = {state.tag(), next.result};
        }
        m_free.push_back(static_cast<std::uint32_t>(index));
        ++n;
    }
    if (resubmit) {
        // A failure leaves the SQEs queued for the device's next submit().
        static_cast<void>(submit());
    }
    return n;
}

}  // namespace vireo
