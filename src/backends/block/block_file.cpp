#include "backends/block/block_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backends/block/block_engine.h"
#include "backends/block/io_uring_engine.h"
#include "backends/block/thread_pool_engine.h"

namespace vireo {

namespace {

constexpr std::uint32_t kMaxQueueDepth = 1024;
constexpr std::uint32_t kMaxPoolThreads = 64;

Result<UniqueFd> open_image(const std::string& path, const BlockFileOptions& options) {
    // O_NONBLOCK so that opening a FIFO by mistake cannot hang; cleared below (it means nothing
    // for regular files and block devices).
    int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
    if (options.direct) {
        flags |= O_DIRECT;
    }
    UniqueFd fd(::open(path.c_str(), flags));
    if (!fd.valid()) {
        const int e = errno;
        switch (e) {
            case EISDIR:
                return Error(fmt::format("disk image {}: is a directory", path), e);
            case EROFS:
                return Error(fmt::format("disk image {}: on a read-only file system (open it "
                                         "read-only)",
                                         path),
                             e);
            case EINVAL:
                if (options.direct) {
                    return Error(fmt::format("disk image {}: O_DIRECT is not supported by its "
                                             "file system",
                                             path),
                                 e);
                }
                break;
            default:
                break;
        }
        return Error::from_errno(fmt::format("disk image {}", path), e);
    }
    const int fl = ::fcntl(fd.get(), F_GETFL);
    if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) < 0) {
        return Error::from_errno(fmt::format("disk image {}: fcntl", path));
    }
    return fd;
}

Result<std::uint64_t> image_size(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        return Error::from_errno(fmt::format("disk image {}: fstat", path));
    }
    if (S_ISDIR(st.st_mode)) {
        return Error(fmt::format("disk image {}: is a directory", path), EISDIR);
    }
    if (S_ISREG(st.st_mode)) {
        return static_cast<std::uint64_t>(st.st_size);
    }
    if (S_ISBLK(st.st_mode)) {
        std::uint64_t bytes = 0;
        if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
            return Error::from_errno(fmt::format("disk image {}: BLKGETSIZE64", path));
        }
        return bytes;
    }
    return Error(fmt::format("disk image {}: not a regular file or block device", path), EINVAL);
}

}  // namespace

std::string_view to_string(BlockEngineKind kind) {
    switch (kind) {
        case BlockEngineKind::Auto:
            return "auto";
        case BlockEngineKind::IoUring:
            return "io_uring";
        case BlockEngineKind::ThreadPool:
            return "thread-pool";
    }
    return "?";
}

Result<std::unique_ptr<BlockFile>> BlockFile::open(const std::string& path,
                                                   const BlockFileOptions& options) {
    if (path.empty()) {
        return Error("disk image: empty path");
    }
    if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
        return Error(fmt::format("disk image {}: queue depth {} outside 1..{}", path,
                                 options.queue_depth, kMaxQueueDepth));
    }
    if (options.pool_threads == 0 || options.pool_threads > kMaxPoolThreads) {
        return Error(fmt::format("disk image {}: {} I/O threads outside 1..{}", path,
                                 options.pool_threads, kMaxPoolThreads));
    }
    auto fd = open_image(path, options);
    if (!fd) {
        return fd.error();
    }
    auto size = image_size(fd->get(), path);
    if (!size) {
        return size.error();
    }
    if (options.lock && !options.defer_lock &&
        ::flock(fd->get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            return Error(fmt::format("disk image {}: in use (locked by another process or open "
                                     "file)",
                                     path),
                         EBUSY);
        }
        return Error::from_errno(fmt::format("disk image {}: flock", path));
    }
    auto event = EventFd::create();
    if (!event) {
        return event.error().wrap(fmt::format("disk image {}", path));
    }

    std::unique_ptr<BlockFile> file(
        new BlockFile(std::move(fd.value()), std::move(event.value()), *size, options));
    file->m_path = path;
    if (!options.fallocate) {
        file->m_policy->zero_range = false;
        file->m_policy->punch_hole = false;
    }

    if (options.engine != BlockEngineKind::ThreadPool) {
        auto uring = IoUringEngine::create(file->m_fd.get(), file->m_event, options.queue_depth,
                                           file->m_policy.get());
        if (uring) {
            file->m_engine = std::move(uring.value());
            file->m_engine_kind = BlockEngineKind::IoUring;
            return file;
        }
        if (options.engine == BlockEngineKind::IoUring) {
            return uring.error().wrap(fmt::format("disk image {}", path));
        }
        file->m_fallback_reason = uring.error().message();
        spdlog::info("disk image {}: io_uring unavailable ({}), using the thread pool", path,
                     file->m_fallback_reason);
    }
    auto pool = ThreadPoolEngine::create(file->m_fd.get(), file->m_event, options.queue_depth,
                                         options.pool_threads, file->m_policy.get());
    if (!pool) {
        return pool.error().wrap(fmt::format("disk image {}", path));
    }
    file->m_engine = std::move(pool.value());
    file->m_engine_kind = BlockEngineKind::ThreadPool;
    return file;
}

Result<void> BlockFile::release_lock() {
    if (m_locking && ::flock(m_fd.get(), LOCK_UN) < 0) {
        return Error::from_errno(fmt::format("disk image {}: unlocking", m_path));
    }
    return ok();
}

Result<void> BlockFile::retake_lock() {
    if (m_locking && ::flock(m_fd.get(), (m_read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            return Error(fmt::format("disk image {}: locked by another process meanwhile", m_path),
                         EBUSY);
        }
        return Error::from_errno(fmt::format("disk image {}: flock", m_path));
    }
    return ok();
}

BlockFile::BlockFile(UniqueFd fd, EventFd event, std::uint64_t size,
                     const BlockFileOptions& options)
    : m_fd(std::move(fd)),
      m_event(std::move(event)),
      m_size(size),
      m_read_only(options.read_only),
      m_direct(options.direct),
      m_locking(options.lock),
      m_queue_depth(options.queue_depth),
      m_policy(std::make_unique<FallocatePolicy>()) {}

BlockFile::~BlockFile() = default;

std::uint32_t BlockFile::free_slots() const {
    return m_engine->free_slots();
}

Result<void> BlockFile::check_range(std::string_view what, std::uint64_t offset,
                                    std::uint64_t length) const {
    // Written so that nothing overflows: offset <= size, then length <= size - offset.
    if (offset > m_size || length > m_size - offset) {
        return Error(fmt::format("{} of {} bytes at offset {} beyond the end of the image ({} "
                                 "bytes)",
                                 what, length, offset, m_size),
                     EINVAL);
    }
    return ok();
}

Result<void> BlockFile::check_writable(std::string_view what) const {
    if (m_read_only) {
        return Error(fmt::format("{} refused: the image is read-only", what), EROFS);
    }
    return ok();
}

Result<void> BlockFile::enqueue(BlockOp op, std::uint64_t offset, std::uint64_t length,
                                const iovec* iov, std::size_t iov_count, std::uint64_t tag) {
    BlockRequest request;
    request.op = op;
    request.offset = offset;
    request.length = length;
    request.iov = iov;
    request.iov_count = static_cast<std::uint32_t>(iov_count);  // <= kMaxIovecs, checked
    request.tag = tag;
    if (!m_engine->enqueue(request)) {
        return Error(fmt::format("block queue full ({} requests outstanding)", m_queue_depth),
                     EBUSY);
    }
    return ok();
}

namespace {

// Sums the iovec lengths; false when there are too many or the sum exceeds `limit`.
Result<std::uint64_t> iovec_bytes(std::string_view what, std::span<const iovec> iov,
                                  std::uint64_t limit) {
    if (iov.size() > BlockFile::kMaxIovecs) {
        return Error(
            fmt::format("{} with {} buffers (at most {})", what, iov.size(), BlockFile::kMaxIovecs),
            EINVAL);
    }
    std::uint64_t total = 0;
    for (const iovec& v : iov) {
        if (v.iov_len > limit - total) {
            return Error(fmt::format("{} larger than the image", what), EINVAL);
        }
        total += v.iov_len;
    }
    return total;
}

}  // namespace

Result<void> BlockFile::read(std::uint64_t offset, std::span<const iovec> iov, std::uint64_t tag) {
    auto length = iovec_bytes("read", iov, m_size);
    if (!length) {
        return length.error();
    }
    if (auto r = check_range("read", offset, *length); !r) {
        return r;
    }
    return enqueue(BlockOp::Read, offset, *length, iov.data(), iov.size(), tag);
}

Result<void> BlockFile::write(std::uint64_t offset, std::span<const iovec> iov, std::uint64_t tag) {
    if (auto r = check_writable("write"); !r) {
        return r;
    }
    auto length = iovec_bytes("write", iov, m_size);
    if (!length) {
        return length.error();
    }
    if (auto r = check_range("write", offset, *length); !r) {
        return r;
    }
    return enqueue(BlockOp::Write, offset, *length, iov.data(), iov.size(), tag);
}

Result<void> BlockFile::flush(std::uint64_t tag) {
    return enqueue(BlockOp::Flush, 0, 0, nullptr, 0, tag);
}

Result<void> BlockFile::discard(std::uint64_t offset, std::uint64_t length, std::uint64_t tag) {
    if (auto r = check_writable("discard"); !r) {
        return r;
    }
    if (auto r = check_range("discard", offset, length); !r) {
        return r;
    }
    return enqueue(BlockOp::Discard, offset, length, nullptr, 0, tag);
}

Result<void> BlockFile::write_zeroes(std::uint64_t offset, std::uint64_t length,
                                     std::uint64_t tag) {
    if (auto r = check_writable("write_zeroes"); !r) {
        return r;
    }
    if (auto r = check_range("write_zeroes", offset, length); !r) {
        return r;
    }
    return enqueue(BlockOp::WriteZeroes, offset, length, nullptr, 0, tag);
}

Result<void> BlockFile::submit() {
    return m_engine->submit();
}

std::size_t BlockFile::reap_batch(std::span<BlockCompletion> out) {
    return m_engine->reap(out);
}

}  // namespace vireo
