#include "api/api_http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "api/api_json.h"
#include "api/http_request_head.h"
#include "seccomp/seccomp.h"

namespace vireo {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a blocked read looks whether the server is stopping.
constexpr milliseconds kStopCheck{100};

int poll_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::clamp(left, milliseconds(0), kStopCheck).count());
}

// One connection's socket and the bytes read from it but not consumed yet (the rest of a head,
// a body, a pipelined next request).
struct Connection {
    int fd;
    std::function<bool()> stopping;
    std::string buffered;

    // Appends at most `max` bytes once the socket is readable. Returns the count, 0 at end of
    // stream or when the server stops, -1 when `deadline` passes or the socket fails.
    ssize_t fill(Clock::time_point deadline, std::size_t max) {
        char buf[4096];
        for (;;) {
            if (stopping()) {
                return 0;
            }
            if (Clock::now() >= deadline) {
                return -1;
            }
            pollfd p{fd, POLLIN, 0};
            const int ready = ::poll(&p, 1, poll_ms(deadline));
            if (ready < 0 && errno != EINTR) {
                return -1;
            }
            if (ready <= 0) {
                continue;
            }
            const ssize_t n = ::recv(fd, buf, std::min(max, sizeof(buf)), MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (n > 0) {
                buffered.append(buf, static_cast<std::size_t>(n));
            }
            return n;
        }
    }
};

struct HeadRead {
    enum class Status { Ok, Closed, Refused } status;
    std::string text;  // the head, or why it was refused
};

// Reads one request head: waits up to `idle` for its first byte (a quiet connection is closed
// without an answer), then up to `timeout` for the rest, never buffering more than the guard's
// limit.
HeadRead read_head(Connection& c, milliseconds idle, milliseconds timeout) {
    constexpr std::string_view kEnd = "\r\n\r\n";
    std::optional<Clock::time_point> deadline;
    if (!c.buffered.empty()) {
        deadline = Clock::now() + timeout;
    }
    const auto idle_deadline = Clock::now() + idle;
    std::size_t scanned = 0;
    for (;;) {
        const std::size_t end = c.buffered.find(kEnd, scanned);
        if (end != std::string::npos) {
            std::string head = c.buffered.substr(0, end + kEnd.size());
            c.buffered.erase(0, end + kEnd.size());
            return {HeadRead::Status::Ok, std::move(head)};
        }
        if (c.buffered.size() >= kMaxRequestHeadBytes) {
            return {HeadRead::Status::Refused, "request header section is larger than " +
                                                   std::to_string(kMaxRequestHeadBytes) + " bytes"};
        }
        scanned = c.buffered.size() < kEnd.size() ? 0 : c.buffered.size() - (kEnd.size() - 1);
        const ssize_t n = c.fill(deadline.value_or(idle_deadline),
                                 kMaxRequestHeadBytes + kEnd.size() - c.buffered.size());
        if (n == 0 || (n < 0 && !deadline)) {
            return {HeadRead::Status::Closed, {}};
        }
        if (n < 0) {
            return {HeadRead::Status::Refused, "request header not complete within " +
                                                   std::to_string(timeout.count()) + " ms"};
        }
        if (!deadline) {
            deadline = Clock::now() + timeout;
        }
    }
}

// Writes all of `data` unless the peer takes none of it for `timeout`.
bool send_all(int fd, std::string_view data, milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            deadline = Clock::now() + timeout;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return false;
        }
        pollfd p{fd, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) < 0) {
            return false;
        }
    }
    return true;
}

// The guard's own answers, in the API's shape: a JSON fault_message, then the connection closes.
void send_refusal(int fd, int status, const std::string& message, milliseconds timeout) {
    const std::string body = to_json(Fault{message});
    const char* reason = status == 503 ? "Service Unavailable" : "Bad Request";
    const std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                                 "\r\nServer: vireo API\r\nContent-Type: application/json\r\n"
                                 "Content-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                 body;
    static_cast<void>(send_all(fd, response, timeout));
}

// What httplib's process_request() reads: the guarded head, then exactly the body the head
// announced (from the connection's buffer, then the socket, until `deadline`), then end of stream.
class GuardedStream final : public httplib::Stream {
public:
    GuardedStream(Connection& c, std::string head, std::uint64_t body, Clock::time_point deadline,
                  milliseconds write_timeout)
        : m_conn(c),
          m_head(std::move(head)),
          m_body_left(body),
          m_deadline(deadline),
          m_write_timeout(write_timeout) {}

    std::uint64_t body_left() const { return m_body_left; }

    bool is_readable() const override { return m_head_read < m_head.size() || m_body_left > 0; }
    bool is_writable() const override {
        pollfd p{m_conn.fd, POLLOUT, 0};
        return ::poll(&p, 1, static_cast<int>(m_write_timeout.count())) == 1;
    }

    ssize_t read(char* ptr, size_t size) override {
        if (m_head_read < m_head.size()) {
            const std::size_t n = std::min(size, m_head.size() - m_head_read);
            std::copy_n(m_head.data() + m_head_read, n, ptr);
            m_head_read += n;
            return static_cast<ssize_t>(n);
        }
        if (m_body_left == 0) {
            return 0;
        }
        if (m_conn.buffered.empty() &&
            m_conn.fill(m_deadline, static_cast<std::size_t>(std::min<std::uint64_t>(
                                        m_body_left, std::numeric_limits<std::size_t>::max()))) <=
                0) {
            return -1;  // timed out or closed mid-body
        }
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>({size, m_body_left, m_conn.buffered.size()}));
        std::copy_n(m_conn.buffered.data(), n, ptr);
        m_conn.buffered.erase(0, n);
        m_body_left -= n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, size_t size) override {
        return send_all(m_conn.fd, std::string_view(ptr, size), m_write_timeout)
                   ? static_cast<ssize_t>(size)
                   : -1;
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip.clear();
        port = 0;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        ip.clear();
        port = 0;
    }
    socket_t socket() const override { return m_conn.fd; }

private:
    Connection& m_conn;
    std::string m_head;
    std::size_t m_head_read = 0;
    std::uint64_t m_body_left;
    Clock::time_point m_deadline;
    milliseconds m_write_timeout;
};

}  // namespace

// httplib's task queue: `workers` threads serve connections; up to `max_waiting` wait for one.
// A connection beyond that is "served" at once on the accepting thread, where
// process_and_close_socket() finds no pool (t_pool) and answers 503 without reading.
class ApiHttpServer::Pool final : public httplib::TaskQueue {
public:
    Pool(std::size_t workers, std::size_t max_waiting) : m_max_waiting(max_waiting) {
        for (std::size_t i = 0; i < workers; ++i) {
            m_threads.push_back(seccomp::spawn(seccomp::ThreadKind::Api, [this] { work(); }));
        }
    }
    ~Pool() override { shutdown(); }

    void enqueue(std::function<void()> fn) override {
        {
            std::lock_guard lock(m_mutex);
            if (m_jobs.size() < m_max_waiting) {
                m_jobs.push_back(std::move(fn));
                m_waiting = m_jobs.size();
                m_cv.notify_one();
                return;
            }
        }
        fn();
    }

    // Runs what is queued (each job closes its connection quickly once the server stops), then
    // joins the workers.
    void shutdown() override {
        {
            std::lock_guard lock(m_mutex);
            m_shutdown = true;
        }
        m_cv.notify_all();
        for (auto& t : m_threads) {
            if (t.joinable()) {
                t.join();
            }
        }
    }

    // Connections accepted and not yet taken by a worker.
    std::size_t waiting() const { return m_waiting; }

    static thread_local Pool* t_pool;  // the pool whose worker this thread is

private:
    void work() {
        t_pool = this;
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(m_mutex);
                m_cv.wait(lock, [this] { return m_shutdown || !m_jobs.empty(); });
                if (m_jobs.empty()) {
                    return;
                }
                job = std::move(m_jobs.front());
                m_jobs.pop_front();
                m_waiting = m_jobs.size();
            }
            job();
        }
    }

    const std::size_t m_max_waiting;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<std::function<void()>> m_jobs;
    std::atomic<std::size_t> m_waiting{0};
    bool m_shutdown = false;
    std::vector<std::thread> m_threads;
};

thread_local ApiHttpServer::Pool* ApiHttpServer::Pool::t_pool = nullptr;

ApiHttpServer::ApiHttpServer(Limits limits, RefusalHook on_refusal)
    : m_limits(limits), m_on_refusal(std::move(on_refusal)) {
    m_limits.workers = std::max<std::size_t>(1, m_limits.workers);
    m_limits.max_requests_per_connection =
        std::max<std::size_t>(1, m_limits.max_requests_per_connection);
    new_task_queue = [this] { return new Pool(m_limits.workers, m_limits.max_waiting); };
    // httplib's own body cap stays as a second line; the guard refuses larger bodies first.
    set_payload_max_length(m_limits.max_body);
}

bool ApiHttpServer::process_and_close_socket(socket_t sock) {
    auto refuse = [&](int status, const std::string& message, milliseconds timeout) {
        if (m_on_refusal) {
            m_on_refusal();
        }
        send_refusal(sock, status, message, timeout);
    };
    Pool* pool = Pool::t_pool;
    if (pool == nullptr) {
        // On the accepting thread: must not block, so one non-blocking write into the new
        // socket's empty buffer.
        refuse(503,
               "too many API connections: " + std::to_string(m_limits.workers) + " served and " +
                   std::to_string(m_limits.max_waiting) + " waiting; retry later",
               milliseconds(0));
    } else {
        Connection conn{sock, [this] { return svr_sock_ == INVALID_SOCKET; }, {}};
        for (std::size_t served = 0; served < m_limits.max_requests_per_connection; ++served) {
            // Between requests, a keep-alive connection yields its worker to waiting ones.
            if (conn.stopping() || (served > 0 && conn.buffered.empty() && pool->waiting() > 0)) {
                break;
            }
            HeadRead head = read_head(conn, m_limits.read_timeout, m_limits.read_timeout);
            if (head.status == HeadRead::Status::Closed) {
                break;
            }
            auto guarded = head.status == HeadRead::Status::Refused
                               ? Result<GuardedRequestHead>(Error(head.text))
                               : guard_request_head(head.text, m_limits.max_body);
            if (!guarded) {
                refuse(400, guarded.error().message(), m_limits.write_timeout);
                break;
            }
            GuardedStream stream(conn, std::move(guarded->head), guarded->content_length,
                                 Clock::now() + m_limits.read_timeout, m_limits.write_timeout);
            bool closed = false;
            const bool last = served + 1 == m_limits.max_requests_per_connection;
            if (!process_request(stream, last, closed, {}) || closed || stream.body_left() > 0) {
                break;  // a body httplib left unread would be taken for the next request
            }
        }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
}

}  // namespace vireo
