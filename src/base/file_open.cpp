#include "base/file_open.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vireo {

const char* file_type_name(mode_t mode) {
    if (S_ISREG(mode)) {
        return "a regular file";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO (named pipe)";
    }
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    return "not a regular file";
}

namespace {

Error not_regular(mode_t mode) {
    return Error(std::string("is ") + file_type_name(mode) + ", not a regular file", EINVAL);
}

std::string fmt_refusal(const std::string& path, const std::string& what) {
    return path + " already exists and is " + what +
           ", not a leftover of vireo's: refusing to write through it (remove it if it is "
           "yours)";
}

Result<void> clear_nonblock(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        return Error::from_errno("fcntl");
    }
    return ok();
}

}  // namespace

Result<UniqueFd> open_regular_file(const std::string& path, int flags, struct stat* st) {
    if (path.empty()) {
        return Error("empty path", ENOENT);
    }
    struct stat before {};
    const int stat_result =
        (flags & O_NOFOLLOW) != 0 ? ::lstat(path.c_str(), &before) : ::stat(path.c_str(), &before);
    if (stat_result != 0) {
        return Error::from_errno("cannot open");
    }
    if (!S_ISREG(before.st_mode)) {
        return not_regular(before.st_mode);
    }
    UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ELOOP && (flags & O_NOFOLLOW) != 0) {
            return Error("is a symbolic link (refused)", ELOOP);
        }
        return Error::from_errno("cannot open");
    }
    struct stat after {};
    if (::fstat(fd.get(), &after) != 0) {
        return Error::from_errno("fstat");
    }
    if (!S_ISREG(after.st_mode)) {
        return not_regular(after.st_mode);
    }
    if (auto r = clear_nonblock(fd.get()); !r) {
        return r.error();
    }
    if (st != nullptr) {
        *st = after;
    }
    return fd;
}

Result<UniqueFd> open_output_stream(const std::string& path) {
    if (path.empty()) {
        return Error("empty path", ENOENT);
    }
    struct stat before {};
    if (::stat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode) &&
        !S_ISFIFO(before.st_mode)) {
        return Error(
            std::string("is ") + file_type_name(before.st_mode) + ", not a regular file or a FIFO",
            EINVAL);
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0640));
    if (!fd.valid()) {
        if (errno == ENXIO) {
            return Error("is a FIFO (named pipe) that nobody reads (start its reader first)",
                         ENXIO);
        }
        return Error::from_errno("cannot open");
    }
    struct stat after {};
    if (::fstat(fd.get(), &after) != 0) {
        return Error::from_errno("fstat");
    }
    if (!S_ISREG(after.st_mode) && !S_ISFIFO(after.st_mode)) {
        return Error(
            std::string("is ") + file_type_name(after.st_mode) + ", not a regular file or a FIFO",
            EINVAL);
    }
    return fd;
}

Result<UniqueFd> create_temporary(const std::string& tmp_path) {
    constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd fd(::open(tmp_path.c_str(), kFlags, 0600));
    if (!fd.valid() && errno == EEXIST) {
        struct stat st {};
        if (::lstat(tmp_path.c_str(), &st) != 0) {
            return Error::from_errno("cannot create " + tmp_path);
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1) {
            const std::string what =
                S_ISREG(st.st_mode)
                    ? (st.st_uid != ::geteuid() ? "another user's file" : "a file with hard links")
                    : file_type_name(st.st_mode);
            return Error(fmt_refusal(tmp_path, what), EEXIST);
        }
        // A leftover of an interrupted snapshot: ours, so it may go. If someone plants a name
        // again in between, O_EXCL fails below and nothing is written.
        if (::unlink(tmp_path.c_str()) != 0 && errno != ENOENT) {
            return Error::from_errno("cannot remove the leftover " + tmp_path);
        }
        fd = UniqueFd(::open(tmp_path.c_str(), kFlags, 0600));
    }
    if (!fd.valid()) {
        if (errno == EEXIST) {
            return Error(tmp_path + " appeared while vireo was creating it (refused)", EEXIST);
        }
        return Error::from_errno("cannot create " + tmp_path);
    }
    return fd;
}

std::size_t write_nonblocking(int fd, const void* bytes, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(bytes);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd, p + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;  // EAGAIN (a full pipe), or a broken descriptor
        }
        done += static_cast<std::size_t>(n);
    }
    return done;
}

}  // namespace vireo
