#include "backends/char/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "backends/char/console_writer.h"
#include "base/file_open.h"
#include "base/unique_fd.h"
#include "seccomp/seccomp.h"

namespace vireo {

namespace {

class StdioConsole final : public Console {
public:
    StdioConsole() {
        if (::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &m_saved) == 0) {
            termios raw = m_saved;
            ::cfmakeraw(&raw);
            if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
                m_raw = true;
            }
        }
    }
    ~StdioConsole() override {
        stop_input();
        m_output.stop();  // flushes for a moment at most, never waits on a stalled stdout
        if (m_raw) {
            ::tcsetattr(STDIN_FILENO, TCSANOW, &m_saved);
        }
        if (const std::uint64_t dropped = dropped_output_bytes(); dropped > 0) {
            fmt::print(stderr,
                       "vireo: console: {} bytes of guest output dropped: stdout was not read "
                       "fast enough\n",
                       dropped);
        }
    }

    // Never blocks a vCPU: a stdout nobody reads (a stalled terminal, an undrained pipe) fills
    // the writer's buffer and the rest is dropped and counted.
    void write(std::span<const std::uint8_t> bytes) override { m_output.write(bytes); }

    std::uint64_t dropped_output_bytes() const override { return m_output.dropped_bytes(); }

    void start_input(InputSink sink, std::function<void()> on_quit) override {
        m_stop_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC));
        if (!m_stop_fd.valid()) {
            return;  // no input then; output still works
        }
        m_thread = seccomp::spawn(seccomp::ThreadKind::ConsoleInput,
                                  [this, sink = std::move(sink), on_quit = std::move(on_quit)] {
                                      input_loop(sink, on_quit);
                                  });
    }

    void stop_input() override {
        if (m_thread.joinable()) {
            const std::uint64_t one = 1;
            // An eventfd write fails only when its counter would overflow, i.e. it is already
            // signalled: the input thread wakes either way.
            const bool signalled = ::write(m_stop_fd.get(), &one, sizeof(one)) >= 0;
            static_cast<void>(signalled);
            m_thread.join();
        }
    }

private:
    void input_loop(const InputSink& sink, const std::function<void()>& on_quit) {
        bool escape = false;  // saw Ctrl-A
        std::uint8_t buf[256];
        for (;;) {
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {m_stop_fd.get(), POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return;
            }
            if (fds[1].revents != 0) {
                return;
            }
            const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                return;  // EOF or a broken stdin: the guest simply gets no more input
            }
            if (n < 0) {
                continue;
            }
            std::size_t out = 0;
            for (ssize_t i = 0; i < n; ++i) {
                const std::uint8_t c = buf[i];
                if (escape) {
                    escape = false;
                    if (c == 'x' || c == 'X') {
                        if (on_quit) {
                            on_quit();
                        }
                        return;
                    }
                    if (c != kCtrlA) {
                        continue;  // unknown escape: swallowed
                    }
                } else if (c == kCtrlA && m_raw) {
                    escape = true;
                    continue;
                }
                buf[out++] = c;
            }
            deliver(sink, std::span<const std::uint8_t>(buf, out));
        }
    }

    // Hands bytes to the device, waiting while its buffer is full.
    void deliver(const InputSink& sink, std::span<const std::uint8_t> bytes) {
        while (!bytes.empty()) {
            const std::size_t taken = sink(bytes);
            bytes = bytes.subspan(taken);
            if (!bytes.empty()) {
                pollfd p{m_stop_fd.get(), POLLIN, 0};
                if (::poll(&p, 1, 5) > 0) {
                    return;
                }
            }
        }
    }

    static constexpr std::uint8_t kCtrlA = 0x01;
    ConsoleWriter m_output{STDOUT_FILENO};
    termios m_saved{};
    bool m_raw = false;
    UniqueFd m_stop_fd;
    std::thread m_thread;
};

// Output into a file, at most m_limit bytes of it. The descriptor is O_NONBLOCK (a character
// device that stalls loses output instead of parking a vCPU).
class FileConsole final : public Console {
public:
    FileConsole(UniqueFd fd, std::string path, std::uint64_t limit)
        : m_fd(std::move(fd)), m_path(std::move(path)), m_limit(limit) {}
    ~FileConsole() override {
        if (m_dropped > 0) {
            spdlog::warn("console file {}: {} bytes of guest output dropped ({} kept)", m_path,
                         m_dropped, m_written);
        }
    }

    void write(std::span<const std::uint8_t> bytes) override {
        const std::lock_guard lock(m_mutex);
        const std::uint64_t room = m_limit - m_written;
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()));
        const std::size_t done = take == 0 ? 0 : write_nonblocking(m_fd.get(), bytes.data(), take);
        m_written += done;
        if (done < bytes.size()) {
            if (m_dropped == 0) {
                spdlog::warn(
                    "console file {}: {}; further guest output is dropped and counted", m_path,
                    m_written >= m_limit ? fmt::format("reached its cap of {} bytes", m_limit)
                                         : std::string("does not take output"));
            }
            m_dropped += bytes.size() - done;
        }
    }

private:
    std::mutex m_mutex;  // vCPUs and device threads write concurrently
    UniqueFd m_fd;
    std::string m_path;
    std::uint64_t m_limit;
    std::uint64_t m_written = 0;
    std::uint64_t m_dropped = 0;
};

Result<UniqueFd> open_console_file(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        if (S_ISLNK(st.st_mode)) {
            return Error(fmt::format("console file {}: is a symbolic link; refusing to write "
                                     "through it (name its target instead)",
                                     path),
                         ELOOP);
        }
        return Error(fmt::format("console file {}: is {}, not a regular file", path,
                                 file_type_name(st.st_mode)),
                     EINVAL);
    }
    // O_NOFOLLOW: a link planted after the lstat() is refused too (ELOOP). O_NONBLOCK: opening a
    // FIFO put there in between cannot block; fstat() then refuses it.
    UniqueFd fd(::open(path.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
    if (!fd.valid()) {
        if (errno == ELOOP) {
            return Error(fmt::format("console file {}: is a symbolic link; refusing to write "
                                     "through it (name its target instead)",
                                     path),
                         ELOOP);
        }
        return Error::from_errno(fmt::format("console file {}", path));
    }
    if (::fstat(fd.get(), &st) != 0) {
        return Error::from_errno(fmt::format("console file {}", path));
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        return Error(fmt::format("console file {}: is {}, not a regular file", path,
                                 file_type_name(st.st_mode)),
                     EINVAL);
    }
    return fd;
}

}  // namespace

Result<std::unique_ptr<Console>> open_console(std::string_view spec, std::uint64_t file_limit) {
    if (spec == "stdio") {
        return std::unique_ptr<Console>(std::make_unique<StdioConsole>());
    }
    constexpr std::string_view kFile = "file:";
    if (spec.substr(0, kFile.size()) == kFile && spec.size() > kFile.size()) {
        const std::string path(spec.substr(kFile.size()));
        auto fd = open_console_file(path);
        if (!fd) {
            return fd.error();
        }
        return std::unique_ptr<Console>(
            std::make_unique<FileConsole>(std::move(fd).value(), path, file_limit));
    }
    return Error(fmt::format("invalid console '{}': use stdio or file:PATH", spec));
}

}  // namespace vireo
