// CommandQueue<Request, Response>: many producers hand requests to one consumer thread and block
// until it answers. The API server's threads call() (DESIGN.md §1: api/ talks to machine/ through a
// queue, never the reverse); the VMM thread watches fd() in its event loop and answers each
// poll()ed Command with respond().
//
// Invariants (all under m_mutex): the eventfd counter is non-zero exactly when m_pending is
// non-empty, so an edge- or level-triggered watcher never misses a command and never spins on an
// empty queue. A Command dropped without respond() and a close() both wake the caller with
// std::nullopt, so a producer never waits on a consumer that has gone away.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "base/event_fd.h"
#include "base/result.h"

namespace vireo {

template <typename Request, typename Response>
class CommandQueue {
    // One caller's rendezvous: the caller waits on `answered`, the consumer fills `response`.
    struct Slot {
        std::mutex mutex;
        std::condition_variable answered;
        bool done = false;
        std::optional<Response> response;

        void finish(std::optional<Response> value) {
            {
                std::lock_guard lock(mutex);
                if (done) {
                    return;
                }
                done = true;
                response = std::move(value);
            }
            answered.notify_all();
        }
    };

public:
    // A request taken by the consumer. Move-only; answer it once with respond(). Destroying it
    // unanswered releases the caller with std::nullopt.
    class Command {
    public:
        Command(Command&&) noexcept = default;
        Command& operator=(Command&& other) noexcept {
            if (this != &other) {
                abandon();
                request = std::move(other.request);
                m_slot = std::move(other.m_slot);
            }
            return *this;
        }
        Command(const Command&) = delete;
        Command& operator=(const Command&) = delete;
        ~Command() { abandon(); }

        Request request;

        void respond(Response response) {
            if (m_slot) {
                std::exchange(m_slot, nullptr)->finish(std::move(response));
            }
        }

    private:
        friend class CommandQueue;
        Command(Request r, std::shared_ptr<Slot> slot)
            : request(std::move(r)), m_slot(std::move(slot)) {}
        void abandon() {
            if (m_slot) {
                std::exchange(m_slot, nullptr)->finish(std::nullopt);
            }
        }

        std::shared_ptr<Slot> m_slot;
    };

    static Result<std::unique_ptr<CommandQueue>> create() {
        auto doorbell = EventFd::create();
        if (!doorbell) {
            return doorbell.error().wrap("command queue");
        }
        return std::unique_ptr<CommandQueue>(new CommandQueue(std::move(doorbell).value()));
    }

    CommandQueue(const CommandQueue&) = delete;
    CommandQueue& operator=(const CommandQueue&) = delete;
    ~CommandQueue() { close(); }

    // Producer side, any thread: queues `request` and blocks until the consumer answers.
    // std::nullopt when the queue is closed (before or while waiting) or the command was dropped.
    std::optional<Response> call(Request request) {
        auto slot = std::make_shared<Slot>();
        {
            std::lock_guard lock(m_mutex);
            if (m_closed) {
                return std::nullopt;
            }
            m_pending.push_back(Command(std::move(request), slot));
            m_doorbell.signal();
        }
        std::unique_lock lock(slot->mutex);
        slot->answered.wait(lock, [&] { return slot->done; });
        return std::move(slot->response);
    }

    // Consumer side. Readable (EPOLLIN) while commands are pending; non-blocking.
    int fd() const { return m_doorbell.fd(); }

    // The oldest pending command, or std::nullopt when there is none.
    std::optional<Command> poll() {
        std::lock_guard lock(m_mutex);
        if (m_pending.empty()) {
            return std::nullopt;
        }
        Command command = std::move(m_pending.front());
        m_pending.pop_front();
        if (m_pending.empty()) {
            m_doorbell.consume();
        }
        return command;
    }

    // Refuses new calls and releases every queued caller with std::nullopt. Commands already
    // poll()ed can still be answered. Idempotent; any thread.
    void close() {
        std::deque<Command> dropped;
        {
            std::lock_guard lock(m_mutex);
            m_closed = true;
            dropped.swap(m_pending);
            m_doorbell.consume();
        }
        // `dropped` is destroyed here, outside m_mutex, waking its callers.
    }

    bool closed() const {
        std::lock_guard lock(m_mutex);
        return m_closed;
    }

private:
    explicit CommandQueue(EventFd doorbell) : m_doorbell(std::move(doorbell)) {}

    mutable std::mutex m_mutex;
    std::deque<Command> m_pending;
    bool m_closed = false;
    EventFd m_doorbell;
};

}  // namespace vireo
