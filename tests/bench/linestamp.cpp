// vireo-linestamp: prefixes every line read from stdin with the moment it arrived, in
// milliseconds since the epoch (CLOCK_REALTIME: one clock for every process on the host, so the
// consoles of a migration's source and destination merge, and the lines can be put beside the
// times in vireo's log), and writes it to stdout at once.
//
//   VMM ... | vireo-linestamp > LOG      LOG lines: "<ms, 3 decimals> <the line without \r>"
//                                         ("<ms>~ <text>" for a last line the stream cut short)
//
// Used by tests/bench/migrate-bench.sh for the guest-observed downtime: the largest gap between
// two TICK lines of a guest that prints one every few milliseconds.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace {

double now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

bool write_all(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, s.data() + done, s.size() - done);
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

int main() {
    std::string line;
    char buf[4096];
    double first = -1;  // when the line being gathered began to arrive
    for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        const double t = now_ms();
        for (ssize_t i = 0; i < n; ++i) {
            if (first < 0) {
                first = t;
            }
            if (buf[i] == '\r') {
                continue;
            }
            if (buf[i] != '\n') {
                line += buf[i];
                continue;
            }
            char stamp[32];
            std::snprintf(stamp, sizeof stamp, "%.3f ", first);
            if (!write_all(stamp + line + "\n")) {
                return 1;
            }
            line.clear();
            first = -1;
        }
    }
    if (!line.empty()) {
        // The stream ended inside a line (a VMM that handed its guest over mid-line): its stamp
        // gets a '~', so a reader can join it with where the line goes on (the next process).
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "%.3f~ ", first);
        write_all(stamp + line + "\n");
    }
    return 0;
}
