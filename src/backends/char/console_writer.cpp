#include "backends/char/console_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "seccomp/seccomp.h"

namespace vireo {

namespace {

// The description the writer writes through. A pipe, FIFO or terminal is reopened through
// /proc/self/fd with O_NONBLOCK: a new open file description of the same pipe or tty, so
// write(2) never blocks and the caller's stdout keeps its own flags. (poll() reporting POLLOUT
// is no promise that a blocking write of PIPE_BUF bytes will not wait: seen on a full pipe.)
// A socket gets MSG_DONTWAIT per send. Anything else (a regular file, /dev/null) is written
// as it is: it does not stall, and reopening it would lose O_APPEND and the shared offset.
struct Output {
    int fd = -1;
    bool socket = false;
    UniqueFd reopened;
};

Output open_output(int fd) {
    Output out{fd, false, {}};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return out;
    }
    if (S_ISSOCK(st.st_mode)) {
        out.socket = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        const std::string path = "/proc/self/fd/" + std::to_string(fd);
        out.reopened = UniqueFd(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
        if (out.reopened.valid()) {
            out.fd = out.reopened.get();
        }
    }
    return out;
}

}  // namespace

struct ConsoleWriter::State {
    State(int out_fd, std::size_t capacity)
        : out(open_output(out_fd)), ring(std::max<std::size_t>(capacity, 1)) {}

    const Output out;
    UniqueFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};  // data queued, or stop

    std::mutex mutex;  // guards the ring and the flags below
    std::vector<std::uint8_t> ring;
    std::size_t head = 0;      // next byte to write out
    std::size_t size = 0;      // bytes queued, the in-flight ones included
    std::size_t inflight = 0;  // bytes from `head` handed to write(2) right now
    bool idle = true;          // the writer sleeps until woken
    bool stop = false;
    bool broken = false;  // the fd failed or the writer was given up: everything is dropped
    bool exited = false;
    std::condition_variable exited_cv;

    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> written{0};

    void signal() {
        const std::uint64_t one = 1;
        // Fails only when the counter is already huge, i.e. the writer is signalled anyway.
        const bool signalled = ::write(wake.get(), &one, sizeof(one)) >= 0;
        static_cast<void>(signalled);
    }

    void drain_wake() {
        std::uint64_t value = 0;
        const bool drained = ::read(wake.get(), &value, sizeof(value)) >= 0;
        static_cast<void>(drained);
    }

    ssize_t put(const std::uint8_t* data, std::size_t n) const {
        return out.socket ? ::send(out.fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                          : ::write(out.fd, data, n);
    }

    void run() {
        // A reader that went away makes write() fail with EPIPE instead of killing the process;
        // SIGPIPE from write(2) is sent to the writing thread, so blocking it here is enough.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

        std::uint8_t chunk[PIPE_BUF];
        for (;;) {
            std::size_t n = 0;
            {
                std::lock_guard lock(mutex);
                if (broken && size > 0) {
                    dropped += size;
                    head = 0;
                    size = 0;
                }
                if (size == 0) {
                    if (stop) {
                        break;
                    }
                    idle = true;
                } else {
                    // Copied out so the vCPUs' write() never waits on our write(2).
                    n = std::min({size, sizeof(chunk), ring.size() - head});
                    std::copy_n(ring.begin() + static_cast<std::ptrdiff_t>(head), n, chunk);
                    inflight = n;
                }
            }
            if (n == 0) {
                pollfd p{wake.get(), POLLIN, 0};
                static_cast<void>(::poll(&p, 1, -1));
                drain_wake();
                continue;
            }
            pollfd fds[2] = {{out.fd, POLLOUT, 0}, {wake.get(), POLLIN, 0}};
            const int ready = ::poll(fds, 2, -1);
            if (ready > 0 && fds[1].revents != 0) {
                drain_wake();
            }
            ssize_t done = 0;
            bool given_up = false;
            {
                std::lock_guard lock(mutex);
                given_up = broken;  // stop() gave up on the fd while we waited for it
            }
            if (given_up) {
                done = 0;
            } else if (ready > 0 && (fds[0].revents & POLLOUT) != 0) {
                done = put(chunk, n);
                if (done < 0 && (errno == EAGAIN || errno == EINTR)) {
                    done = 0;
                }
            } else if (ready > 0 && fds[0].revents != 0) {
                done = -1;  // POLLERR, POLLHUP or POLLNVAL: a dead fd
            }
            std::lock_guard lock(mutex);
            inflight = 0;
            if (done < 0) {
                broken = true;  // EPIPE, EIO, a hang-up: nobody will read more
                continue;
            }
            const auto taken = static_cast<std::size_t>(done);
            head = (head + taken) % ring.size();
            size -= taken;
            written += taken;
        }
        std::lock_guard lock(mutex);
        exited = true;
        exited_cv.notify_all();
    }
};

ConsoleWriter::ConsoleWriter(int fd, std::size_t capacity)
    : m_state(std::make_shared<State>(fd, capacity)) {
    seccomp::spawn(seccomp::ThreadKind::ConsoleOutput, [state = m_state] {
        state->run();
    }).detach();
}

ConsoleWriter::~ConsoleWriter() {
    stop();
}

void ConsoleWriter::stop() {
    {
        std::lock_guard lock(m_state->mutex);
        if (m_state->stop) {
            return;
        }
        m_state->stop = true;
    }
    m_state->signal();
    std::unique_lock lock(m_state->mutex);
    const bool done = m_state->exited_cv.wait_for(lock, std::chrono::milliseconds(kFlushTimeoutMs),
                                                  [this] { return m_state->exited; });
    // From now on output is dropped (and counted).
    m_state->broken = true;
    if (!done) {
        // The fd takes nothing: what is buffered is lost (the bytes in a write(2) that has not
        // returned yet are counted by the writer when it does). The thread keeps its own
        // reference to the state.
        m_state->dropped += m_state->size - m_state->inflight;
        m_state->size = m_state->inflight;
        lock.unlock();
        m_state->signal();  // a writer polling the stalled fd sees `broken` and exits
    }
}

void ConsoleWriter::write(std::span<const std::uint8_t> bytes) {
    State& s = *m_state;
    bool wake = false;
    {
        std::lock_guard lock(s.mutex);
        if (s.broken) {
            s.dropped += bytes.size();
            return;
        }
        const std::size_t take = std::min(bytes.size(), s.ring.size() - s.size);
        std::size_t tail = (s.head + s.size) % s.ring.size();
        for (std::size_t done = 0; done < take;) {
            const std::size_t n = std::min(take - done, s.ring.size() - tail);
            std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(done), n,
                        s.ring.begin() + static_cast<std::ptrdiff_t>(tail));
            done += n;
            tail = (tail + n) % s.ring.size();
        }
        s.size += take;
        s.dropped += bytes.size() - take;
        if (take > 0 && s.idle) {
            s.idle = false;
            wake = true;
        }
    }
    if (wake) {
        s.signal();
    }
}

std::uint64_t ConsoleWriter::dropped_bytes() const {
    return m_state->dropped;
}

std::uint64_t ConsoleWriter::written_bytes() const {
    return m_state->written;
}

}  // namespace vireo
