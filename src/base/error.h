// Error values (DESIGN.md §6 rule 2): short messages, no exceptions across threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace vireo {

// Whose fault an error is, for the callers that must tell them apart (the API answers 400 for
// Invalid and 500 for Host, api/api_response.h):
//   Invalid  what the caller, a file or the guest gave is wrong: a bad value, a path that does not
//            exist or may not be opened, a file that is not what it claims. Retrying the same
//            request fails the same way.
//   Host     the host failed a request that was fine: an ioctl, memory, I/O, a resource limit.
enum class ErrorKind : std::uint8_t { Invalid, Host };

class Error {
public:
    explicit Error(std::string message, int sys_errno = 0, ErrorKind kind = ErrorKind::Invalid)
        : m_message(std::move(message)), m_errno(sys_errno), m_kind(kind) {}

    // A failure of the host, not of the request.
    static Error host(std::string message) { return Error(std::move(message), 0, ErrorKind::Host); }
    // "what: strerror(errno)" for the calling thread's current errno. The kind follows the errno:
    // a path that does not exist, is not a directory, is one, may not be opened, loops or is too
    // long (ENOENT ENOTDIR EISDIR EACCES EPERM ELOOP ENAMETOOLONG EEXIST EROFS ETXTBSY) is the
    // request's fault; every other errno is the host's.
    static Error from_errno(std::string_view what);
    static Error from_errno(std::string_view what, int sys_errno);

    const std::string& message() const { return m_message; }
    // The errno behind a failed system call, 0 when the error is not one.
    int sys_errno() const { return m_errno; }
    ErrorKind kind() const { return m_kind; }
    bool is_host_failure() const { return m_kind == ErrorKind::Host; }

    // Prefixes context: Error("bad magic").wrap("kernel") -> "kernel: bad magic". Keeps the
    // errno and the kind.
    [[nodiscard]] Error wrap(std::string_view context) const;

private:
    std::string m_message;
    int m_errno;
    ErrorKind m_kind;
};

}  // namespace vireo
