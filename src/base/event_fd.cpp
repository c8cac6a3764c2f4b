#include "base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace vireo {

Result<EventFd> EventFd::create() {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        return Error::from_errno("eventfd");
    }
    return EventFd(UniqueFd(fd));
}

void EventFd::signal() const {
    std::uint64_t one = 1;
    ssize_t n;
    do {
        n = ::write(m_fd.get(), &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

std::uint64_t EventFd::consume() const {
    std::uint64_t value = 0;
    ssize_t n;
    do {
        n = ::read(m_fd.get(), &value, sizeof(value));
    } while (n < 0 && errno == EINTR);
    return n == sizeof(value) ? value : 0;
}

}  // namespace vireo
