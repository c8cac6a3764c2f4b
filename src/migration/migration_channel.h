// Where a migration stream flows: "tcp:ADDR:PORT" (IPv4 address, or [IPv6] in brackets) or
// "unix:PATH", and a FrameChannel that sends and receives whole frames (migration_frame.h) over
// the connected socket.
//
// Every wait also watches a stop file descriptor (an eventfd): signalling it makes a blocked
// accept, connect, send or receive return an error at once, so a cancel or a SIGTERM never waits
// for a silent peer. Receives have an idle limit as well: a peer that stops sending mid-stream
// fails the migration instead of holding it open forever.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "migration/migration_frame.h"

namespace vireo::migration {

struct MigrationUrl {
    enum class Kind { Tcp, Unix };
    Kind kind = Kind::Tcp;
    std::string host;  // Tcp: a numeric IPv4 or IPv6 address
    std::uint16_t port = 0;
    std::string path;  // Unix

    std::string to_string() const;
};

// Parses "tcp:ADDR:PORT" or "unix:PATH"; the error says which part is wrong.
Result<MigrationUrl> parse_migration_url(const std::string& text);

// A listening socket for `url` (a Unix socket path must not exist yet: it is never replaced).
Result<UniqueFd> listen_migration(const MigrationUrl& url);
// The first connection on `listener`; fails when `stop_fd` becomes readable first.
Result<UniqueFd> accept_migration(int listener, int stop_fd);
// A connection to `url`, within `timeout`; fails when `stop_fd` becomes readable first.
Result<UniqueFd> connect_migration(const MigrationUrl& url, int stop_fd,
                                   std::chrono::milliseconds timeout);

class FrameChannel {
public:
    FrameChannel(UniqueFd socket, int stop_fd) : m_fd(std::move(socket)), m_stop(stop_fd) {}

    Result<void> send(MigrationCommand command, std::span<const std::uint8_t> payload);
    // A frame already encoded whole (begin_frame ... finish_frame).
    Result<void> send_encoded(std::span<const std::uint8_t> frame);
    // The same with `fd` attached to the frame's first byte (SCM_RIGHTS): Unix sockets only.
    Result<void> send_with_fd(MigrationCommand command, std::span<const std::uint8_t> payload,
                              int fd);
    // The next whole, checked frame; an error when the peer closes, the stream breaks a check,
    // nothing arrives for `idle` or the stop fd fires.
    Result<Frame> receive(std::chrono::milliseconds idle);
    // The same into `frame`, whose payload buffer is reused: a stream of MiB-sized Memory frames
    // then costs no allocation and no zero-filling per frame. On an error `frame` holds nothing
    // meaningful.
    Result<void> receive_into(Frame& frame, std::chrono::milliseconds idle);

    // The file descriptor that arrived with the last frame's bytes, if any (taken once). A
    // second one before it is taken replaces it; the kernel drops any beyond one per read.
    UniqueFd take_received_fd() { return std::move(m_received_fd); }

    std::uint64_t bytes_sent() const { return m_sent; }
    // Time spent in the socket calls and their waits (a sender blocked on a full socket is
    // waiting for the receiver), and checking received frames' CRCs: where a transfer's time goes.
    std::chrono::nanoseconds io_time() const { return m_io_time; }
    std::chrono::nanoseconds check_time() const { return m_check_time; }
    std::uint64_t bytes_received() const { return m_received; }
    int fd() const { return m_fd.get(); }
    // Shuts the socket down both ways (the peer sees the end of the stream).
    void shutdown();

private:
    // Sends every byte; `fd` (>= 0) is attached to the first ones (SCM_RIGHTS).
    Result<void> write_all(std::span<const std::uint8_t> bytes, int fd);
    Result<void> read_exact(std::span<std::uint8_t> out, std::chrono::milliseconds idle,
                            bool frame_started);

    UniqueFd m_fd;
    int m_stop;
    UniqueFd m_received_fd;
    std::uint64_t m_sent = 0;
    std::chrono::nanoseconds m_io_time{0};
    std::chrono::nanoseconds m_check_time{0};
    std::uint64_t m_received = 0;
};

}  // namespace vireo::migration
