// An eventfd(2) counter: the doorbell between vCPU threads, the accelerator (ioeventfd/irqfd)
// and device threads.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

class EventFd {
public:
    // Non-blocking, close-on-exec.
    static Result<EventFd> create();

    int fd() const { return m_fd.get(); }
    // Adds one to the counter. Never blocks (the counter saturating is not reachable in practice).
    void signal() const;
    // Reads and clears the counter; 0 when it was not signalled.
    std::uint64_t consume() const;

private:
    explicit EventFd(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

}  // namespace vireo
