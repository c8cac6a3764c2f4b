// Opening paths that come from configuration, the API or the command line. Such a path may name
// anything: a FIFO (whose plain open() blocks until the other end opens: a hung VMM thread), a
// device, a directory, or a symbolic link a local user planted where vireo writes. Every helper
// here opens with O_CLOEXEC and O_NONBLOCK (so opening never waits for a FIFO's other end),
// checks the type of what it opened and says in the error what the path turned out to be.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

// "a regular file", "a FIFO (named pipe)", "a directory", "a block device", ... for errors.
const char* file_type_name(mode_t mode);

// An existing regular file, opened with `flags` (O_RDONLY or O_RDWR, plus e.g. O_NOFOLLOW). The
// type is checked with stat() before the open (a device is never opened) and again with fstat()
// on the descriptor (the path may have changed in between); O_NONBLOCK is cleared afterwards.
// The error names neither the path nor its role: callers wrap it. `st`, when given, receives the
// descriptor's fstat().
Result<UniqueFd> open_regular_file(const std::string& path, int flags, struct stat* st = nullptr);

// A log or metrics destination, appended to: a regular file (created 0640 when absent) or a FIFO
// that has a reader (Firecracker's users commonly pass named pipes). The descriptor stays
// O_NONBLOCK: a full pipe makes write() fail with EAGAIN, and the caller drops and counts rather
// than block. A FIFO without a reader is an error (ENXIO) instead of a hang; anything else
// (directory, device, socket) is refused.
Result<UniqueFd> open_output_stream(const std::string& path);

// Creates `tmp_path`, a temporary that the caller later renames over its final name: O_CREAT |
// O_EXCL | O_NOFOLLOW, mode 0600, write-only. A leftover of an earlier run (a regular file owned
// by this uid with one link) is removed first; anything else there (a symbolic link, another
// user's file, a hard link) is refused, so vireo never writes through a name someone planted.
Result<UniqueFd> create_temporary(const std::string& tmp_path);

// Writes `bytes` to a non-blocking descriptor without ever waiting: retries EINTR and short
// writes while the descriptor takes data, returns how many bytes were written (fewer when a pipe
// is full or the descriptor is broken).
std::size_t write_nonblocking(int fd, const void* bytes, std::size_t size);

}  // namespace vireo
