// A raw disk image (regular file or block device) with an asynchronous request queue for a
// virtio-blk device thread: io_uring when the kernel allows it, a thread pool otherwise.
//
// Threading and ownership contract:
// - One thread (the device thread) calls read/write/flush/discard/write_zeroes/submit/reap; the
//   methods are not safe to call concurrently. open(), size() and the other accessors may be called
//   from any thread.
// - Requests are queued by the enqueue methods and handed to the kernel or the workers by submit().
//   Each request completes exactly once, through reap(), on the device thread; completions come in
//   any order (match them by tag).
// - completion_fd() is an eventfd that becomes readable when completions are ready: add it to the
//   device thread's EventLoop with EPOLLIN and call reap() from the callback. reap() clears the
//   eventfd itself (before draining, so a completion that arrives during reap() re-arms it).
// - The iovec array passed to read()/write() AND the buffers it points to (guest memory from
//   GuestMemory::slice) belong to the caller and must stay valid and untouched by the VMM until the
//   request's completion has been reaped: the engines read the array after submit() (on a worker
//   thread, or again when a short transfer is continued). Nothing is copied per request.
// - At most queue_depth() requests are outstanding (queued, submitted or completed but not yet
//   reaped). An enqueue beyond that is refused with an Error whose sys_errno() is EBUSY and
//   nothing is queued; the device should check free_slots() before taking a request off its
//   virtqueue, and take more after reap() freed slots. Slots are preallocated: the request path
//   does not allocate in the steady state (a refused request's Error does; a slot's first short
//   transfer grows that slot's iovec scratch once).
// - Destroying a BlockFile returns only when neither the kernel nor a worker thread touches any
//   request's buffers any more: io_uring requests already submitted run to completion, a worker
//   finishes the request in its hands, everything else is dropped. No completion is delivered.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

class BlockEngine;
struct FallocatePolicy;
enum class BlockOp : std::uint8_t;

enum class BlockEngineKind : std::uint8_t {
    Auto,        // io_uring, else the thread pool (io_uring disabled, seccomp, old kernel)
    IoUring,     // io_uring or an error
    ThreadPool,  // worker threads doing preadv/pwritev/fdatasync/fallocate
};

std::string_view to_string(BlockEngineKind kind);

struct BlockFileOptions {
    // O_RDONLY: the file is never written; write, discard and write_zeroes are refused.
    bool read_only = false;
    // O_DIRECT (bypass the host page cache). Offsets, lengths and buffer addresses must then be
    // aligned to the file system's logical block size, or requests complete with -EINVAL.
    bool direct = false;
    BlockEngineKind engine = BlockEngineKind::Auto;
    // Maximum outstanding requests, 1..1024.
    std::uint32_t queue_depth = 128;
    // Worker threads of the thread-pool engine, 1..64.
    std::uint32_t pool_threads = 4;
    // Use fallocate(2) for discard (PUNCH_HOLE) and write_zeroes (ZERO_RANGE, else PUNCH_HOLE).
    // false: discard completes without effect and write_zeroes writes zero-filled buffers, so the
    // image stays fully allocated. With true the same fallbacks apply where the file system
    // answers EOPNOTSUPP.
    bool fallocate = true;
    // Take an advisory flock(2) (shared when read-only, exclusive otherwise) so that two VMMs
    // cannot write one image. Fails when another open file description holds a conflicting lock.
    bool lock = true;
    // With `lock`: open without taking it yet; retake_lock() takes it (a live migration's
    // destination, building the VM while the source still holds the image).
    bool defer_lock = false;
};

// tag: the caller's request id. result: bytes transferred for read/write (always the full
// request length on success: short transfers are continued internally), 0 for flush, discard and
// write_zeroes, or -errno.
struct BlockCompletion {
    std::uint64_t tag = 0;
    std::int64_t result = 0;
};

class BlockFile {
public:
    // More iovecs than this in one request are refused (the kernel's UIO_MAXIOV).
    static constexpr std::size_t kMaxIovecs = 1024;

    // Errors name the path and the problem: missing, permission, a directory, not a regular file
    // or block device, O_DIRECT unsupported, locked by another process, io_uring unavailable when
    // it was asked for, bad options.
    static Result<std::unique_ptr<BlockFile>> open(const std::string& path,
                                                   const BlockFileOptions& options = {});

    BlockFile(const BlockFile&) = delete;
    BlockFile& operator=(const BlockFile&) = delete;
    ~BlockFile();

    // Size in bytes, read once at open (images are not resized while open).
    std::uint64_t size() const { return m_size; }
    bool read_only() const { return m_read_only; }
    bool direct() const { return m_direct; }
    // The engine in use: IoUring or ThreadPool, never Auto.
    BlockEngineKind engine() const { return m_engine_kind; }
    // Why Auto fell back to the thread pool; empty otherwise.
    const std::string& fallback_reason() const { return m_fallback_reason; }
    std::uint32_t queue_depth() const { return m_queue_depth; }
    // Slots for new requests right now (device thread only).
    std::uint32_t free_slots() const;

    int completion_fd() const { return m_event.fd(); }

    // The advisory lock (BlockFileOptions::lock) let go, and taken back: a live migration hands
    // the image to the destination once the VM is stopped and its I/O drained, and takes it
    // back if the migration fails (or takes it the first time, BlockFileOptions::defer_lock). Both
    // do nothing for a file opened without `lock`. Taking it back fails (EBUSY, naming the path)
    // when another process holds it meanwhile.
    Result<void> release_lock();
    Result<void> retake_lock();

    // Queue one request (see the contract above). Errors, with nothing queued: the range does not
    // lie inside [0, size()) (EINVAL), too many iovecs (EINVAL), a modifying request on a
    // read-only file (EROFS), no free slot (EBUSY). Zero-length requests complete with 0.
    Result<void> read(std::uint64_t offset, std::span<const iovec> iov, std::uint64_t tag);
    Result<void> write(std::uint64_t offset, std::span<const iovec> iov, std::uint64_t tag);
    // fdatasync: every write that completed (was reaped) before flush() was called is on stable
    // storage when the flush completes, and survives a crash of the VMM or the host. Writes still
    // in flight are not covered (the virtio-blk contract: the driver orders flushes after the
    // writes it wants to persist).
    Result<void> flush(std::uint64_t tag);
    // Deallocates the range (reads then return zeros). A hint: where the file system cannot punch
    // holes it completes with 0 and changes nothing.
    Result<void> discard(std::uint64_t offset, std::uint64_t length, std::uint64_t tag);
    // The range reads back as zeros afterwards.
    Result<void> write_zeroes(std::uint64_t offset, std::uint64_t length, std::uint64_t tag);

    // Hands the queued requests over. On error (io_uring_enter failing, e.g. EAGAIN under memory
    // pressure) the requests stay queued and go out with the next submit() or reap().
    Result<void> submit();

    // Drains ready completions, calling on_complete(std::uint64_t tag, std::int64_t result) for
    // each; returns how many. The callback may queue new requests (they need a submit()). reap()
    // may also push out queued requests early (the io_uring engine submits continuations of
    // short transfers and fallbacks from here).
    template <typename F>
    std::size_t reap(F&& on_complete) {
        m_event.consume();
        std::array<BlockCompletion, 32> batch;
        std::size_t total = 0;
        for (;;) {
            const std::size_t n = reap_batch(batch);
            for (std::size_t i = 0; i < n; ++i) {
                on_complete(batch[i].tag, batch[i].result);
            }
            total += n;
            if (n < batch.size()) {
                return total;
            }
        }
    }

private:
    BlockFile(UniqueFd fd, EventFd event, std::uint64_t size, const BlockFileOptions& options);

    std::size_t reap_batch(std::span<BlockCompletion> out);
    // Checks [offset, offset + length) against the image; EINVAL naming the range otherwise.
    Result<void> check_range(std::string_view what, std::uint64_t offset,
                             std::uint64_t length) const;
    Result<void> check_writable(std::string_view what) const;
    Result<void> enqueue(BlockOp op, std::uint64_t offset, std::uint64_t length, const iovec* iov,
                         std::size_t iov_count, std::uint64_t tag);

    // Destruction order matters: the engine (last) stops using the fd and the eventfd first.
    UniqueFd m_fd;
    EventFd m_event;
    std::uint64_t m_size;
    bool m_read_only;
    bool m_direct;
    bool m_locking;
    std::string m_path;  // for messages
    std::uint32_t m_queue_depth;
    BlockEngineKind m_engine_kind = BlockEngineKind::ThreadPool;
    std::string m_fallback_reason;
    std::unique_ptr<FallocatePolicy> m_policy;  // shared by the engine's requests
    std::unique_ptr<BlockEngine> m_engine;
};

}  // namespace vireo
