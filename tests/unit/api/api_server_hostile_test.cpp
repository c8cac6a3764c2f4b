// Hostile API clients against the server over a real Unix socket: inputs that crashed the process
// (a long Range header overflowing a worker's stack), grew its memory without bound (chunked,
// length-less and compressed bodies, endless lines, unbounded header counts) or held every worker
// (one byte at a time, connection floods) on cpp-httplib's own request reader.
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "raw_http.h"

namespace vireo {
namespace {

using test::connect_to;
using test::HttpResponse;
using test::Json;
using test::parse_response;
using test::raw_request;
using test::read_until_close;
using test::request;
using test::send_all;
using test::TestHandler;
using Clock = std::chrono::steady_clock;

// Makes threads created from now on use `size` bytes of stack (what src/app/main.cpp sets for
// vireo's threads), restoring glibc's default on destruction.
class DefaultThreadStack {
public:
    explicit DefaultThreadStack(std::size_t size) {
        pthread_attr_t attr;
        if (::pthread_getattr_default_np(&m_saved) != 0 || ::pthread_attr_init(&attr) != 0) {
            return;
        }
        m_set = ::pthread_attr_setstacksize(&attr, size) == 0 &&
                ::pthread_setattr_default_np(&attr) == 0;
        ::pthread_attr_destroy(&attr);
    }
    ~DefaultThreadStack() {
        if (m_set) {
            ::pthread_setattr_default_np(&m_saved);
        }
        ::pthread_attr_destroy(&m_saved);
    }
    DefaultThreadStack(const DefaultThreadStack&) = delete;
    DefaultThreadStack& operator=(const DefaultThreadStack&) = delete;
    bool set() const { return m_set; }

private:
    pthread_attr_t m_saved{};
    bool m_set = false;
};

// Sends `prefix`, then `filler` bytes, until the peer stops taking them (closes, or its buffers
// stay full for 10 s) or `limit` bytes are sent in all. Returns the bytes sent: a server that
// reads a request without bound takes all of them.
std::size_t push_until_refused(int fd, const std::string& prefix, char filler, std::size_t limit) {
    std::string chunk(64 * 1024, filler);
    std::size_t sent = 0;
    std::string_view pending = prefix;
    while (sent < limit) {
        if (pending.empty()) {
            pending = std::string_view(chunk).substr(0, std::min(chunk.size(), limit - sent));
        }
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 10000) != 1 || (p.revents & POLLOUT) == 0) {
            break;
        }
        const ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        sent += static_cast<std::size_t>(n);
        pending.remove_prefix(static_cast<std::size_t>(n));
    }
    return sent;
}

constexpr std::size_t kPushLimit = 64 * 1024 * 1024;
// What a server that stops reading at its limits lets through: its head limit, a receive buffer
// and the socket's send buffer, with room to spare.
constexpr std::size_t kBoundedRead = 8 * 1024 * 1024;

class ApiServerHostileTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("vireo-api-hostile-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(m_dir);
        std::filesystem::create_directories(m_dir);
        m_socket = (m_dir / "api.sock").string();
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
    std::string m_socket;
    TestHandler m_handler;
};

TEST_F(ApiServerHostileTest, LongRangeHeaderDoesNotOverflowAWorkerStack) {
    // cpp-httplib matched Range against a std::regex, whose matcher recurses per character: an
    // 8 KB Range overflowed a 1 MiB worker stack and killed the process (SIGSEGV).
    DefaultThreadStack small(1024 * 1024);
    ASSERT_TRUE(small.set());
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    std::string range = "bytes=0-0";
    while (range.size() < 8000) {
        range += ",0-0";
    }
    auto ranged = raw_request(m_socket, "GET / HTTP/1.1\r\nHost: localhost\r\nRange: " + range +
                                            "\r\nConnection: close\r\n\r\n");
    // Range is ignored, as Firecracker does: the whole answer.
    EXPECT_EQ(ranged.status, 200);
    EXPECT_EQ(Json::parse(ranged.body, nullptr, false).value("id", ""), "test-vm");
    auto small_range =
        raw_request(m_socket, "GET / HTTP/1.1\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(small_range.status, 200);
    EXPECT_EQ(Json::parse(small_range.body, nullptr, false).value("id", ""), "test-vm");
    EXPECT_EQ(request(m_socket, "GET", "/").status, 200);
}

TEST_F(ApiServerHostileTest, ChunkedBodyIsRefusedBeforeItIsRead) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    UniqueFd fd = connect_to(m_socket);
    ASSERT_TRUE(fd.valid());
    // One endless chunk: cpp-httplib read chunked bodies into memory without the body cap.
    const std::string head =
        "PUT /boot-source HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        "7fffffff\r\n{\"kernel_image_path\": \"/k\"";
    const std::size_t sent = push_until_refused(fd.get(), head, ' ', kPushLimit);
    EXPECT_LT(sent, kBoundedRead);
    auto answer = parse_response(read_until_close(fd.get(), std::chrono::seconds(10), true));
    EXPECT_EQ(answer.status, 400);
    EXPECT_NE(answer.fault().find("Transfer-Encoding"), std::string::npos) << answer.body;
    EXPECT_TRUE(m_handler.requests().empty());
    EXPECT_EQ(request(m_socket, "GET", "/").status, 200);
}

TEST_F(ApiServerHostileTest, BodyWithoutContentLengthIsNotReadUntilClose) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    UniqueFd fd = connect_to(m_socket);
    ASSERT_TRUE(fd.valid());
    // A request without Content-Length (or Transfer-Encoding) has no body (RFC 9112 §6.3);
    // cpp-httplib read PUT/PATCH bodies until the client closed, without the cap.
    const std::string head =
        "PUT /boot-source HTTP/1.1\r\nHost: localhost\r\n\r\n{\"kernel_image_path\": \"/k\"";
    const std::size_t sent = push_until_refused(fd.get(), head, ' ', kPushLimit);
    EXPECT_LT(sent, kBoundedRead);
    auto answer = parse_response(read_until_close(fd.get(), std::chrono::seconds(10), true));
    EXPECT_EQ(answer.status, 400);
    EXPECT_TRUE(m_handler.requests().empty());
}

TEST_F(ApiServerHostileTest, CompressedBodyIsRefused) {
    // cpp-httplib inflated gzip/deflate/brotli request bodies into memory with no limit (a 50 KB
    // deflate stream is 50 MB; a brotli bomb of the same size is gigabytes), then checked the
    // cap on the compressed size only.
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    const std::string plain = R"({"kernel_image_path": "/k"})" + std::string(20 * 1024 * 1024, ' ');
    uLongf packed_size = compressBound(static_cast<uLong>(plain.size()));
    std::string packed(packed_size, '\0');
    ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                        reinterpret_cast<const Bytef*>(plain.data()),
                        static_cast<uLong>(plain.size()), Z_BEST_COMPRESSION),
              Z_OK);
    packed.resize(packed_size);
    ASSERT_LT(packed.size(), 51200u);
    auto answer = raw_request(m_socket,
                              "PUT /boot-source HTTP/1.1\r\nHost: localhost\r\n"
                              "Content-Encoding: deflate\r\nContent-Length: " +
                                  std::to_string(packed.size()) + "\r\n\r\n" + packed);
    EXPECT_EQ(answer.status, 400);
    // Not "request body of 20971547 bytes is larger than ...": the body was never inflated.
    EXPECT_NE(answer.fault().find("Content-Encoding"), std::string::npos) << answer.fault();
    EXPECT_TRUE(m_handler.requests().empty());
}

TEST_F(ApiServerHostileTest, EndlessRequestLineIsCut) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    UniqueFd fd = connect_to(m_socket);
    ASSERT_TRUE(fd.valid());
    // cpp-httplib's line reader grew its buffer until the line ended.
    const std::size_t sent = push_until_refused(fd.get(), "GET /", 'a', kPushLimit);
    EXPECT_LT(sent, kBoundedRead);
    auto answer = parse_response(read_until_close(fd.get(), std::chrono::seconds(10), true));
    EXPECT_EQ(answer.status, 400);
    EXPECT_NE(answer.fault(), "<no fault_message>");
}

TEST_F(ApiServerHostileTest, HeaderFieldsAreCounted) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    // cpp-httplib bounded each header line but not their number.
    std::string many = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    for (int i = 0; i < 1000; ++i) {
        many += "X-Pad-" + std::to_string(i) + ": v\r\n";
    }
    auto answer = raw_request(m_socket, many + "\r\n");
    EXPECT_EQ(answer.status, 400);
    EXPECT_NE(answer.fault().find("header"), std::string::npos) << answer.fault();
    EXPECT_TRUE(m_handler.requests().empty());
    // A request with a handful of headers is fine.
    EXPECT_EQ(raw_request(m_socket,
                          "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
                          "User-Agent: test\r\nConnection: close\r\n\r\n")
                  .status,
              200);
}

TEST_F(ApiServerHostileTest, HeadersThatWouldBeReadTwoWaysAreRefused) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    const std::string body = R"({"kernel_image_path": "/k"})";
    const std::string cl = "Content-Length: " + std::to_string(body.size()) + "\r\n";
    const std::vector<std::string> smuggled = {
        // A bare LF inside a line, a field name with a space, an obs-fold continuation line,
        // two different lengths, a length that is not a number.
        "PUT /boot-source HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked\r\n" + cl + "\r\n",
        "PUT /boot-source HTTP/1.1\r\nTransfer-Encoding : chunked\r\n" + cl + "\r\n",
        "PUT /boot-source HTTP/1.1\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n" + cl + "\r\n",
        "PUT /boot-source HTTP/1.1\r\n" + cl + "Content-Length: 1\r\n\r\n",
        "PUT /boot-source HTTP/1.1\r\nContent-Length: +27\r\n\r\n",
    };
    for (const auto& head : smuggled) {
        auto answer = raw_request(m_socket, head + body);
        EXPECT_EQ(answer.status, 400) << head;
        EXPECT_NE(answer.fault(), "<no fault_message>") << head;
    }
    EXPECT_TRUE(m_handler.requests().empty());
}

// The request after `slow` clients that each hold a connection by sending one byte at a time.
HttpResponse request_behind_slow_clients(const std::string& socket, int slow,
                                         std::vector<bool>& cut_off) {
    std::atomic<bool> done{false};
    cut_off.assign(static_cast<std::size_t>(slow), false);
    std::vector<std::thread> dribblers;
    for (int i = 0; i < slow; ++i) {
        dribblers.emplace_back([&, i] {
            UniqueFd fd = connect_to(socket);
            send_all(fd.get(), "GET / HTTP/1.1\r\nX-Slow: ");
            // One byte every 100 ms, for at most 30 s, until the server hangs up.
            for (int n = 0; n < 300 && !done; ++n) {
                if (::send(fd.get(), "a", 1, MSG_NOSIGNAL) != 1) {
                    cut_off[static_cast<std::size_t>(i)] = true;
                    return;
                }
                pollfd p{fd.get(), POLLIN, 0};
                if (::poll(&p, 1, 100) == 1) {  // an answer or a hang-up
                    cut_off[static_cast<std::size_t>(i)] = true;
                    return;
                }
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let them take the workers
    UniqueFd fd = connect_to(socket);
    send_all(fd.get(), "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    auto answer = parse_response(read_until_close(fd.get(), std::chrono::seconds(20), true));
    done = true;
    for (auto& t : dribblers) {
        t.join();
    }
    return answer;
}

TEST_F(ApiServerHostileTest, OneByteAtATimeDoesNotHoldAWorkerForever) {
    // Every byte arrived within the read timeout, so cpp-httplib kept such a connection (and its
    // worker) for as long as the client liked: two of them blocked a two-worker server.
    ApiServer server(
        ApiServer::Options{.read_timeout = std::chrono::milliseconds(1000), .workers = 2});
    ASSERT_TRUE(server.start(m_socket, m_handler));
    std::vector<bool> cut_off;
    auto start = Clock::now();
    auto answer = request_behind_slow_clients(m_socket, 2, cut_off);
    EXPECT_EQ(answer.status, 200);
    // Served well before the slow clients would have given up (30 s).
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(15));
    EXPECT_TRUE(cut_off[0]);
    EXPECT_TRUE(cut_off[1]);
}

TEST_F(ApiServerHostileTest, ConnectionFloodHoldsBoundedDescriptors) {
    // cpp-httplib accepted every connection and queued it for a worker: a client holding
    // thousands open took that many of the VMM's descriptors (EMFILE for its own files).
    ApiServer server(
        ApiServer::Options{.read_timeout = std::chrono::milliseconds(5000), .workers = 2});
    ASSERT_TRUE(server.start(m_socket, m_handler));
    std::vector<UniqueFd> flood;
    for (int i = 0; i < 400; ++i) {
        flood.push_back(connect_to(m_socket));
        ASSERT_TRUE(flood.back().valid());
    }
    // The connections beyond what the server serves or queues are answered at once (503) and
    // closed; count those closed within 3 s (well under the 5 s the silent ones are kept).
    int closed = 0;
    auto deadline = Clock::now() + std::chrono::seconds(3);
    std::vector<bool> seen(flood.size(), false);
    while (Clock::now() < deadline && closed < 300) {
        for (std::size_t i = 0; i < flood.size(); ++i) {
            pollfd p{flood[i].get(), POLLIN, 0};
            if (!seen[i] && ::poll(&p, 1, 0) == 1) {
                seen[i] = true;
                ++closed;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GE(closed, 300);
    auto busy = parse_response(read_until_close(flood.back().get(), std::chrono::seconds(1), true));
    EXPECT_EQ(busy.status, 503);
    EXPECT_NE(busy.fault().find("connections"), std::string::npos) << busy.body;
    flood.clear();
    // Once the flood is gone the server answers again (the silent ones it kept time out).
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(request(m_socket, "GET", "/").status, 200);
}

}  // namespace
}  // namespace vireo
