// A small epoll loop for a device thread: callbacks per fd, and a stop doorbell. Each device runs
// its own loop on its own thread (Firecracker's event_handler.rs), so slow work never runs on a
// vCPU thread. Callbacks run on the loop's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

class EventLoop {
public:
    using Callback = std::function<void(std::uint32_t epoll_events)>;

    static Result<std::unique_ptr<EventLoop>> create();

    // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, ...); the callback gets the ready mask.
    // Must be called before run() or from a callback on the loop's thread.
    Result<void> add(int fd, std::uint32_t events, Callback callback);
    Result<void> modify(int fd, std::uint32_t events);
    void remove(int fd);

    // Dispatches until stop() is called. Returns after the callbacks of the current round.
    void run();
    // Callable from any thread.
    void stop();

private:
    EventLoop(UniqueFd epoll, EventFd stop) : m_epoll(std::move(epoll)), m_stop(std::move(stop)) {}

    UniqueFd m_epoll;
    EventFd m_stop;
    bool m_stopping = false;
    // Callbacks by fd; shared_ptr so a callback that removes its own fd stays alive until it
    // returns.
    std::map<int, std::shared_ptr<Callback>> m_callbacks;
};

}  // namespace vireo
