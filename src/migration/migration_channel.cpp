#include "migration/migration_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "base/time_account.h"

namespace vireo::migration {

namespace {

// Waits until `fd` has `events` or stop_fd is readable. Ok(true): ready; Ok(false): timed out.
Result<bool> wait_for(int fd, short events, int stop_fd, int timeout_ms) {
    std::array<pollfd, 2> fds{{{fd, events, 0}, {stop_fd, POLLIN, 0}}};
    for (;;) {
        const int n = ::poll(fds.data(), stop_fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno("migration: poll");
        }
        if (n == 0) {
            return false;
        }
        if (stop_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
            return Error("migration stopped");
        }
        return true;
    }
}

struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t len = 0;
};

Result<SocketAddress> to_sockaddr(const MigrationUrl& url) {
    SocketAddress a;
    if (url.kind == MigrationUrl::Kind::Unix) {
        auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
        un->sun_family = AF_UNIX;
        if (url.path.empty() || url.path.size() >= sizeof un->sun_path) {
            return Error(fmt::format("unix socket path '{}' is empty or longer than {} bytes",
                                     url.path, sizeof un->sun_path - 1));
        }
        std::memcpy(un->sun_path, url.path.data(), url.path.size());
        a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + url.path.size() + 1);
        return a;
    }
    auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    if (::inet_pton(AF_INET, url.host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(url.port);
        a.len = sizeof(sockaddr_in);
        return a;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (::inet_pton(AF_INET6, url.host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(url.port);
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return Error(fmt::format("'{}' is not a numeric IPv4 or IPv6 address", url.host));
}

Result<UniqueFd> new_socket(const SocketAddress& a) {
    UniqueFd fd(::socket(a.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) {
        return Error::from_errno("migration: socket");
    }
    if (a.storage.ss_family != AF_UNIX) {
        const int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

}  // namespace

std::string MigrationUrl::to_string() const {
    if (kind == Kind::Unix) {
        return "unix:" + path;
    }
    return host.find(':') != std::string::npos ? fmt::format("tcp:[{}]:{}", host, port)
                                               : fmt::format("tcp:{}:{}", host, port);
}

Result<MigrationUrl> parse_migration_url(const std::string& text) {
    MigrationUrl url;
    if (text.starts_with("unix:")) {
        url.kind = MigrationUrl::Kind::Unix;
        url.path = text.substr(5);
        if (url.path.empty()) {
            return Error(fmt::format("migration URL '{}' has no socket path", text));
        }
        if (auto a = to_sockaddr(url); !a) {
            return a.error().wrap(fmt::format("migration URL '{}'", text));
        }
        return url;
    }
    if (!text.starts_with("tcp:")) {
        return Error(fmt::format("migration URL '{}' must be tcp:ADDR:PORT or unix:PATH", text));
    }
    const std::string rest = text.substr(4);
    std::string host;
    std::string port;
    if (rest.starts_with("[")) {
        const auto close = rest.find("]:");
        if (close == std::string::npos) {
            return Error(
                fmt::format("migration URL '{}': an IPv6 address is written [ADDR]:PORT", text));
        }
        host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string::npos) {
            return Error(fmt::format("migration URL '{}' has no port (tcp:ADDR:PORT)", text));
        }
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
        return Error(fmt::format("migration URL '{}': port '{}' is not 1 to 65535", text, port));
    }
    url.host = host;
    url.port = static_cast<std::uint16_t>(value);
    if (auto a = to_sockaddr(url); !a) {
        return a.error().wrap(fmt::format("migration URL '{}'", text));
    }
    return url;
}

Result<UniqueFd> listen_migration(const MigrationUrl& url) {
    auto addr = to_sockaddr(url);
    if (!addr) {
        return addr.error();
    }
    auto fd = new_socket(*addr);
    if (!fd) {
        return fd.error();
    }
    if (url.kind == MigrationUrl::Kind::Tcp) {
        const int one = 1;
        ::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) < 0) {
        return Error::from_errno(fmt::format("migration: cannot listen on {}", url.to_string()));
    }
    if (::listen(fd->get(), 1) < 0) {
        return Error::from_errno(fmt::format("migration: listen on {}", url.to_string()));
    }
    return fd;
}

Result<UniqueFd> accept_migration(int listener, int stop_fd) {
    for (;;) {
        auto ready = wait_for(listener, POLLIN, stop_fd, -1);
        if (!ready) {
            return ready.error();
        }
        UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (fd.get() >= 0) {
            const int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            return Error::from_errno("migration: accept");
        }
    }
}

Result<UniqueFd> connect_migration(const MigrationUrl& url, int stop_fd,
                                   std::chrono::milliseconds timeout) {
    auto addr = to_sockaddr(url);
    if (!addr) {
        return addr.error();
    }
    auto fd = new_socket(*addr);
    if (!fd) {
        return fd.error();
    }
    if (::connect(fd->get(), reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            return Error::from_errno(
                fmt::format("migration: cannot connect to {}", url.to_string()));
        }
        auto ready = wait_for(fd->get(), POLLOUT, stop_fd, static_cast<int>(timeout.count()));
        if (!ready) {
            return ready.error();
        }
        if (!*ready) {
            return Error(fmt::format("migration: no connection to {} within {} ms", url.to_string(),
                                     timeout.count()));
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            return Error::from_errno(
                fmt::format("migration: cannot connect to {}", url.to_string()), err);
        }
    }
    return fd;
}

Result<void> FrameChannel::write_all(std::span<const std::uint8_t> bytes, int fd) {
    const TimeAccount account(m_io_time);
    // `fd` (when >= 0) rides on the first sendmsg that moves any byte; the rest goes plainly.
    while (!bytes.empty()) {
        iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (fd >= 0) {
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        const ssize_t n = ::sendmsg(m_fd.get(), &msg, MSG_NOSIGNAL);
        if (n > 0) {
            bytes = bytes.subspan(static_cast<std::size_t>(n));
            m_sent += static_cast<std::uint64_t>(n);
            fd = -1;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            // A receiver that takes nothing for a minute is gone, whatever TCP thinks.
            auto ready = wait_for(m_fd.get(), POLLOUT, m_stop, 60'000);
            if (!ready) {
                return ready.error();
            }
            if (!*ready) {
                return Error("migration: the peer took nothing for 60 s");
            }
            continue;
        }
        return Error::from_errno(fd >= 0 ? "migration: sending guest RAM's file descriptor (a "
                                           "local migration needs a Unix socket)"
                                         : "migration: the connection broke while sending");
    }
    return ok();
}

Result<void> FrameChannel::send(MigrationCommand command, std::span<const std::uint8_t> payload) {
    return write_all(encode_frame(command, payload), -1);
}

Result<void> FrameChannel::send_encoded(std::span<const std::uint8_t> frame) {
    return write_all(frame, -1);
}

Result<void> FrameChannel::send_with_fd(MigrationCommand command,
                                        std::span<const std::uint8_t> payload, int fd) {
    return write_all(encode_frame(command, payload), fd);
}

Result<void> FrameChannel::read_exact(std::span<std::uint8_t> out, std::chrono::milliseconds idle,
                                      bool frame_started) {
    const TimeAccount account(m_io_time);
    std::size_t got = 0;
    while (got < out.size()) {
        // recvmsg, not recv: a descriptor the peer attached is kept (take_received_fd), never
        // left to leak into this process unseen. MSG_CMSG_CLOEXEC: no child inherits it.
        iovec iov{out.data() + got, out.size() - got};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(m_fd.get(), &msg, MSG_CMSG_CLOEXEC);
        for (cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr;
             c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int received = -1;
                std::memcpy(&received, CMSG_DATA(c), sizeof received);
                m_received_fd = UniqueFd(received);
            }
        }
        if (n > 0) {
            got += static_cast<std::size_t>(n);
            m_received += static_cast<std::uint64_t>(n);
            continue;
        }
        if (n == 0) {
            return Error(frame_started || got > 0
                             ? "migration: the peer closed the connection in the middle of a frame"
                             : "migration: the peer closed the connection");
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            return Error::from_errno("migration: the connection broke while receiving");
        }
        auto ready = wait_for(m_fd.get(), POLLIN, m_stop, static_cast<int>(idle.count()));
        if (!ready) {
            return ready.error();
        }
        if (!*ready) {
            return Error(fmt::format("migration: nothing arrived for {} s", idle.count() / 1000));
        }
    }
    return ok();
}

Result<Frame> FrameChannel::receive(std::chrono::milliseconds idle) {
    Frame frame;
    if (auto r = receive_into(frame, idle); !r) {
        return r.error();
    }
    return frame;
}

Result<void> FrameChannel::receive_into(Frame& frame, std::chrono::milliseconds idle) {
    // Header, payload and trailer each read where they stay: the payload straight into the
    // frame, checked in place (a Memory frame is a MiB; no copy of it is made here). resize()
    // to the size the buffer already has writes nothing; only growth is zero-filled.
    std::array<std::uint8_t, kFrameHeaderSize> header{};
    if (auto r = read_exact(header, idle, false); !r) {
        return r.error();
    }
    auto length = check_frame_header(header);
    if (!length) {
        return length.error();
    }
    frame.payload.resize(*length);
    if (auto r = read_exact(frame.payload, idle, true); !r) {
        return r.error();
    }
    std::array<std::uint8_t, kFrameTrailerSize> trailer{};
    if (auto r = read_exact(trailer, idle, true); !r) {
        return r.error();
    }
    const TimeAccount account(m_check_time);
    auto command = check_frame_checksum(header, frame.payload, trailer);
    if (!command) {
        return command.error();
    }
    frame.command = *command;
    return ok();
}

void FrameChannel::shutdown() {
    ::shutdown(m_fd.get(), SHUT_RDWR);
}

}  // namespace vireo::migration
