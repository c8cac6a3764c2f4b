// A stand-in for vireo as vireo-jailer's exec file (tests/cli/jailer.sh), for hosts where vireo
// itself cannot start (no usable /dev/kvm). Dynamically linked like vireo (libstdc++, libc), so
// the jail needs its libraries too. Prints its arguments, binds a Unix socket at --api-sock
// (default /run/firecracker.socket, as vireo), then waits for SIGTERM (handled: as PID 1 of a PID
// namespace a default-action SIGTERM would be ignored).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    std::string sock = "/run/firecracker.socket";
    std::string line = "testee args:";
    for (int i = 1; i < argc; ++i) {
        line += std::string(" ") + argv[i];
        if (std::strcmp(argv[i], "--api-sock") == 0 && i + 1 < argc) {
            sock = argv[i + 1];
        }
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    struct sigaction sa {};
    sa.sa_handler = [](int) { _exit(0); };
    sigaction(SIGTERM, &sa, nullptr);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd < 0 || sock.size() >= sizeof addr.sun_path) {
        return 1;
    }
    std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1) != 0) {
        std::perror(sock.c_str());
        return 1;
    }
    for (;;) {
        pause();
    }
}
