#include "base/event_loop.h"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

namespace vireo {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        return Error::from_errno("epoll_create1");
    }
    UniqueFd epoll(ep);
    auto stop = EventFd::create();
    if (!stop) {
        return stop.error();
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = stop->fd();
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, stop->fd(), &ev) < 0) {
        return Error::from_errno("epoll_ctl(stop)");
    }
    return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll), std::move(stop.value())));
}

Result<void> EventLoop::add(int fd, std::uint32_t events, Callback callback) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
        return Error::from_errno("epoll_ctl(add)");
    }
    m_callbacks[fd] = std::make_shared<Callback>(std::move(callback));
    return ok();
}

Result<void> EventLoop::modify(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, fd, &ev) < 0) {
        return Error::from_errno("epoll_ctl(mod)");
    }
    return ok();
}

void EventLoop::remove(int fd) {
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_callbacks.erase(fd);
}

void EventLoop::run() {
    std::array<epoll_event, 16> events{};
    while (!m_stopping) {
        int n = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<std::size_t>(i)].data.fd;
            if (fd == m_stop.fd()) {
                m_stop.consume();
                m_stopping = true;
                continue;
            }
            auto it = m_callbacks.find(fd);
            if (it == m_callbacks.end()) {
                continue;  // removed by an earlier callback of this round
            }
            auto callback = it->second;
            (*callback)(events[static_cast<std::size_t>(i)].events);
        }
    }
    m_stopping = false;
}

void EventLoop::stop() {
    m_stop.signal();
}

}  // namespace vireo
