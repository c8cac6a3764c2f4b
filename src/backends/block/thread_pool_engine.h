// The fallback block engine: a few worker threads running each request's system calls
// synchronously (preadv/pwritev/fdatasync/fallocate). Used where io_uring is unavailable
// (kernel.io_uring_disabled, a seccomp filter, an old kernel) or when asked for.
//
// Slots, lists and lock: every slot is in exactly one place at a time: the free list or the
// pending list (device thread only, no lock), the work ring (m_mutex), a worker's hands (that
// worker only) or the completed ring (m_mutex). Rings and lists are sized to the queue depth at
// creation, so moving a slot never allocates.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/block/block_engine.h"
#include "base/event_fd.h"

namespace vireo {

class ThreadPoolEngine final : public BlockEngine {
public:
    // `fd`, `done` and `policy` must outlive the engine. `done` is signalled after each
    // completion is queued.
    static Result<std::unique_ptr<ThreadPoolEngine>> create(int fd, const EventFd& done,
                                                            std::uint32_t depth,
                                                            std::uint32_t threads,
                                                            FallocatePolicy* policy);
    ThreadPoolEngine(const ThreadPoolEngine&) = delete;
    ThreadPoolEngine& operator=(const ThreadPoolEngine&) = delete;
    // Stops the workers after the request each is running; queued work is dropped.
    ~ThreadPoolEngine() override;

    std::uint32_t free_slots() const override { return static_cast<std::uint32_t>(m_free.size()); }
    bool enqueue(const BlockRequest& request) override;
    Result<void> submit() override;
    std::size_t reap(std::span<BlockCompletion> out) override;

private:
    // A FIFO of slot indices with a fixed capacity.
    class IndexRing {
    public:
        explicit IndexRing(std::uint32_t capacity) : m_items(capacity) {}
        bool empty() const { return m_count == 0; }
        std::uint32_t size() const { return m_count; }
        void push(std::uint32_t v);
        std::uint32_t pop();

    private:
        std::vector<std::uint32_t> m_items;
        std::uint32_t m_head = 0;
        std::uint32_t m_count = 0;
    };

    struct Slot {
        BlockRequestState state;
        std::int64_t result = 0;
    };

    ThreadPoolEngine(int fd, const EventFd& done, std::uint32_t depth, FallocatePolicy* policy);
    void work();

    const int m_fd;
    const EventFd& m_done;
    FallocatePolicy* const m_policy;
    std::vector<Slot> m_slots;
    std::vector<std::uint32_t> m_free;     // device thread
    std::vector<std::uint32_t> m_pending;  // device thread: enqueued, not yet submitted

    std::mutex m_mutex;  // guards the three members below
    std::condition_variable m_wake;
    IndexRing m_work;
    IndexRing m_completed;
    bool m_stopping = false;

    std::vector<std::thread> m_threads;
};

}  // namespace vireo
