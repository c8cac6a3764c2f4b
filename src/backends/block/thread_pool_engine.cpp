#include "backends/block/thread_pool_engine.h"

#include <pthread.h>

#include <cassert>
#include <system_error>

#include <fmt/format.h>

#include "seccomp/seccomp.h"

namespace vireo {

void ThreadPoolEngine::IndexRing::push(std::uint32_t v) {
    assert(m_count < m_items.size());
    m_items[(m_head + m_count) % m_items.size()] = v;
    ++m_count;
}

std::uint32_t ThreadPoolEngine::IndexRing::pop() {
    assert(m_count > 0);
    const std::uint32_t v = m_items[m_head];
    m_head = static_cast<std::uint32_t>((m_head + 1) % m_items.size());
    --m_count;
    return v;
}

ThreadPoolEngine::ThreadPoolEngine(int fd, const EventFd& done, std::uint32_t depth,
                                   FallocatePolicy* policy)
    : m_fd(fd), m_done(done), m_policy(policy), m_slots(depth), m_work(depth), m_completed(depth) {
    m_free.reserve(depth);
    m_pending.reserve(depth);
    for (std::uint32_t i = depth; i > 0; --i) {
        m_free.push_back(i - 1);
    }
}

Result<std::unique_ptr<ThreadPoolEngine>> ThreadPoolEngine::create(int fd, const EventFd& done,
                                                                   std::uint32_t depth,
                                                                   std::uint32_t threads,
                                                                   FallocatePolicy* policy) {
    if (depth == 0 || threads == 0) {
        return Error("block thread pool: depth and thread count must be positive");
    }
    std::unique_ptr<ThreadPoolEngine> engine(new ThreadPoolEngine(fd, done, depth, policy));
    engine->m_threads.reserve(threads);
    try {
        for (std::uint32_t i = 0; i < threads; ++i) {
            engine->m_threads.push_back(
                seccomp::spawn(seccomp::ThreadKind::BlockIo, [e = engine.get()] { e->work(); }));
            pthread_setname_np(engine->m_threads.back().native_handle(), "vireo-blk-io");
        }
    } catch (const std::system_error& e) {
        // std::thread reports pthread_create failing (EAGAIN: thread limit) by throwing; the
        // destructor stops the workers already started.
        return Error(fmt::format("block thread pool: cannot start worker {} of {}: {}",
                                 engine->m_threads.size() + 1, threads, e.what()),
                     e.code().value());
    }
    return engine;
}

ThreadPoolEngine::~ThreadPoolEngine() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    for (auto& t : m_threads) {
        t.join();
    }
}

bool ThreadPoolEngine::enqueue(const BlockRequest& request) {
    if (m_free.empty()) {
        return false;
    }
    const std::uint32_t index = m_free.back();
    m_free.pop_back();
    m_slots[index].state.start(request, m_policy);
    m_pending.push_back(index);
    return true;
}

Result<void> ThreadPoolEngine::submit() {
    if (m_pending.empty()) {
        return ok();
    }
    {
        std::lock_guard lock(m_mutex);
        for (std::uint32_t index : m_pending) {
            m_work.push(index);
        }
    }
    if (m_pending.size() == 1) {
        m_wake.notify_one();
    } else {
        m_wake.notify_all();
    }
    m_pending.clear();
    return ok();
}

std::size_t ThreadPoolEngine::reap(std::span<BlockCompletion> out) {
    std::size_t n = 0;
    {
        std::lock_guard lock(m_mutex);
        while (n < out.size() && !m_completed.empty()) {
            const std::uint32_t index = m_completed.pop();
            // The worker wrote the slot before pushing it under the lock: visible here.
            out[n].tag = m_slots[index].state.tag();
            out[n].result = m_slots[index].result;
            m_free.push_back(index);
            ++n;
        }
    }
    return n;
}

void ThreadPoolEngine::work() {
    for (;;) {
        std::uint32_t index = 0;
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [this] { return m_stopping || !m_work.empty(); });
            if (m_stopping) {
                return;
            }
            index = m_work.pop();
        }
        Slot& slot = m_slots[index];
        BlockStep step = slot.state.step();
        while (step.kind != BlockStep::Kind::Done) {
            slot.state.complete_step(run_block_step(m_fd, step));
            step = slot.state.step();
        }
        slot.result = step.result;
        {
            std::lock_guard lock(m_mutex);
            m_completed.push(index);
        }
        m_done.signal();
    }
}

}  // namespace vireo
