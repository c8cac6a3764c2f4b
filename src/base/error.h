// Error values (DESIGN.md §6 rule 2): short messages, no exceptions across threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace vireo {

class Error {
public:
    explicit Error(std::string message, int sys_errno = 0)
        : m_message(std::move(message)), m_errno(sys_errno) {}

    // "what: strerror(errno)" for the calling thread's current errno.
    static Error from_errno(std::string_view what);
    static Error from_errno(std::string_view what, int sys_errno);

    const std::string& message() const { return m_message; }
    // The errno behind a failed system call, 0 when the error is not one.
    int sys_errno() const { return m_errno; }

    // Prefixes context: Error("bad magic").wrap("kernel") -> "kernel: bad magic".
    [[nodiscard]] Error wrap(std::string_view context) const;

private:
    std::string m_message;
    int m_errno;
};

}  // namespace vireo
