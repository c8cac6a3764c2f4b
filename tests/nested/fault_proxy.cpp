// vireo-faultproxy LISTEN_PORT TARGET_PORT flip|cut OFFSET: a TCP relay on loopback that breaks
// one live migration on purpose (issue 14's failure injection in tests/nested/scenarios/
// migration.sh). It accepts one connection on 127.0.0.1:LISTEN_PORT, connects to
// 127.0.0.1:TARGET_PORT, and relays both ways until either side closes. In the direction from
// the client to the target, at byte OFFSET (counted from 0):
//   flip  that byte is XORed with 0x01 and the relay goes on: one corrupted byte in the stream;
//   cut   both connections are shut down and closed: the link is cut mid-stream.
// It prints one line when it acts ("faultproxy: flipped byte N" / "faultproxy: cut at byte N")
// and exits 0 when the relay ends, 1 on a usage or socket error, 2 if the stream ended before
// OFFSET (nothing was injected: the test that relies on it must not pass).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int usage() {
    std::fprintf(stderr, "usage: vireo-faultproxy LISTEN_PORT TARGET_PORT flip|cut OFFSET\n");
    return 1;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

bool parse(const char* text, unsigned long long max, unsigned long long& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && out <= max;
}

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned long long listen_port = 0;
    unsigned long long target_port = 0;
    unsigned long long offset = 0;
    if (argc != 5 || !parse(argv[1], 65535, listen_port) || !parse(argv[2], 65535, target_port) ||
        !parse(argv[4], ~0ULL, offset)) {
        return usage();
    }
    const std::string mode = argv[3];
    if (mode != "flip" && mode != "cut") {
        return usage();
    }
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in la = loopback(static_cast<std::uint16_t>(listen_port));
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 ||
        ::listen(listener, 1) != 0) {
        std::perror("faultproxy: listen");
        return 1;
    }
    const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
        std::perror("faultproxy: accept");
        return 1;
    }
    ::close(listener);
    const int target = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in ta = loopback(static_cast<std::uint16_t>(target_port));
    if (target < 0 || ::connect(target, reinterpret_cast<sockaddr*>(&ta), sizeof ta) != 0) {
        std::perror("faultproxy: connect");
        return 1;
    }
    unsigned long long forwarded = 0;  // client -> target
    bool injected = false;
    static char buf[1 << 16];
    for (;;) {
        pollfd p[2] = {{client, POLLIN, 0}, {target, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::perror("faultproxy: poll");
            return 1;
        }
        if (p[1].revents != 0) {
            const ssize_t n = ::recv(target, buf, sizeof buf, 0);
            if (n <= 0 || !write_all(client, buf, static_cast<std::size_t>(n))) {
                break;
            }
        }
        if (p[0].revents != 0) {
            ssize_t n = ::recv(client, buf, sizeof buf, 0);
            if (n <= 0) {
                break;
            }
            const unsigned long long end = forwarded + static_cast<unsigned long long>(n);
            if (!injected && offset < end) {
                const std::size_t at = static_cast<std::size_t>(offset - forwarded);
                injected = true;
                if (mode == "cut") {
                    write_all(target, buf, at);
                    std::printf("faultproxy: cut at byte %llu\n", offset);
                    std::fflush(stdout);
                    ::shutdown(client, SHUT_RDWR);
                    ::shutdown(target, SHUT_RDWR);
                    break;
                }
                buf[at] = static_cast<char>(buf[at] ^ 0x01);
                std::printf("faultproxy: flipped byte %llu\n", offset);
                std::fflush(stdout);
            }
            if (!write_all(target, buf, static_cast<std::size_t>(n))) {
                break;
            }
            forwarded = end;
        }
    }
    // What the target said last (a destination's Abandon with its reason) may still wait here,
    // unread because a write to the target failed first: it goes to the client before the close,
    // as it would without this relay in between.
    for (;;) {
        const ssize_t n = ::recv(target, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0 || !write_all(client, buf, static_cast<std::size_t>(n))) {
            break;
        }
    }
    ::close(client);
    ::close(target);
    if (!injected) {
        std::printf("faultproxy: the stream ended after %llu bytes, before byte %llu\n", forwarded,
                    offset);
        return 2;
    }
    return 0;
}
