#include "jailer/small_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace vireo::jailer {

Result<std::string> read_small_file(const std::string& path, size_t max_size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) {
        return Error::from_errno(path);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno(path);
        }
        if (n == 0) {
            return out;
        }
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max_size) {
            return Error(fmt::format("{}: larger than {} bytes", path, max_size));
        }
    }
}

}  // namespace vireo::jailer
