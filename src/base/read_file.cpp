#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <stdexcept>

#include "base/file_open.h"
#include "base/size.h"
#include "base/unique_fd.h"

namespace vireo {

Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path, std::uint64_t max_size) {
    struct stat st {};
    auto fd = open_regular_file(path, O_RDONLY, &st);
    if (!fd) {
        return fd.error();
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_size) {
        return Error(format_size(size) + " is more than the limit of " + format_size(max_size));
    }
    std::vector<std::uint8_t> data;
    try {
        data.resize(size);
    } catch (const std::bad_alloc&) {
        return Error("cannot allocate " + format_size(size) + " to read it", ENOMEM);
    } catch (const std::length_error&) {
        return Error("cannot allocate " + format_size(size) + " to read it", ENOMEM);
    }
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::read(fd->get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno("read");
        }
        if (n == 0) {
            break;  // shrank while being read: what is there is the file
        }
        done += static_cast<std::size_t>(n);
    }
    data.resize(done);
    return data;
}

}  // namespace vireo
