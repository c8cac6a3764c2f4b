// vireo-stamp: runs a VMM and times its boot from outside, the way a user sees it.
//
//   vireo-stamp --marker TEXT [--exclude-mapping-size BYTES] [--log FILE] -- CMD [ARGS...]
//
// Starts CMD (stdout and stderr piped to us), and prints one line at the end:
//   STAMP marker_ms=<ms from launch to the first output line containing TEXT, or -1>
//         exit_ms=<ms from launch to CMD's exit> status=<exit status>
//         rss_kib=<CMD's resident memory when the marker appeared>
//         overhead_kib=<the same without anonymous mappings of exactly BYTES bytes: guest RAM>
// CMD's output goes to FILE (default: discarded). Used by tests/bench/boot.sh.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Rss {
    long total_kib = -1;
    long overhead_kib = -1;
};

// Sums Rss over /proc/PID/smaps, and again without anonymous mappings of `exclude_size` bytes.
Rss read_rss(pid_t pid, unsigned long long exclude_size) {
    std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
    Rss r{0, 0};
    std::string line;
    bool excluded = false;
    while (std::getline(smaps, line)) {
        unsigned long long start = 0, end = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx ", &start, &end) == 2 &&
            line.find(':') != std::string::npos && line.find(" Rss:") == std::string::npos) {
            // A mapping header: "start-end perms offset dev inode [path]".
            std::istringstream fields(line);
            std::string range, perms, offset, dev, inode, path;
            fields >> range >> perms >> offset >> dev >> inode >> path;
            excluded = exclude_size != 0 && end - start == exclude_size && path.empty();
            continue;
        }
        long kib = 0;
        if (std::sscanf(line.c_str(), "Rss: %ld kB", &kib) == 1) {
            r.total_kib += kib;
            if (!excluded) {
                r.overhead_kib += kib;
            }
        }
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string marker, log_path = "/dev/null";
    unsigned long long exclude = 0;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--marker" && i + 1 < argc) {
            marker = argv[++i];
        } else if (a == "--exclude-mapping-size" && i + 1 < argc) {
            exclude = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--log" && i + 1 < argc) {
            log_path = argv[++i];
        } else if (a == "--") {
            ++i;
            break;
        } else {
            std::fprintf(stderr, "vireo-stamp: unknown argument '%s'\n", a.c_str());
            return 2;
        }
    }
    if (marker.empty() || i >= argc) {
        std::fprintf(stderr,
                     "usage: vireo-stamp --marker TEXT [--exclude-mapping-size BYTES] "
                     "[--log FILE] -- CMD [ARGS...]\n");
        return 2;
    }
    std::ofstream log(log_path);
    int fds[2];
    if (pipe(fds) != 0) {
        std::perror("vireo-stamp: pipe");
        return 1;
    }
    const auto start = Clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        const int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        execvp(argv[i], argv + i);
        std::perror("vireo-stamp: exec");
        _exit(127);
    }
    close(fds[1]);
    long marker_ms = -1;
    Rss rss;
    std::string line;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        log.write(buf, n);
        for (ssize_t k = 0; k < n; ++k) {
            if (buf[k] == '\n' || buf[k] == '\r') {
                if (marker_ms < 0 && line.find(marker) != std::string::npos) {
                    marker_ms = static_cast<long>(
                        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)
                            .count());
                    rss = read_rss(pid, exclude);
                }
                line.clear();
            } else if (line.size() < 4096) {
                line.push_back(buf[k]);
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const long exit_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::printf("STAMP marker_ms=%ld exit_ms=%ld status=%d rss_kib=%ld overhead_kib=%ld\n",
                marker_ms, exit_ms, code, rss.total_kib, rss.overhead_kib);
    return 0;
}
