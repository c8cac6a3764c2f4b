// cpp-httplib's server with vireo's own connection handling in front of its request parser.
//
// httplib::Server keeps its accept loop, routing, handlers and response writing. Each accepted
// connection, though, is served here (process_and_close_socket is a virtual of httplib::Server):
// the request head is read under a size limit and a deadline, checked and rewritten by
// guard_request_head() (http_request_head.h), and only then handed to httplib's
// process_request() through a Stream that yields the checked head and exactly Content-Length body
// bytes. So httplib's request reader never sees a byte the guard has not bounded, and:
// - a whole head must arrive within read_timeout of its first byte and a body within read_timeout
//   of its head (a client sending one byte a second holds a worker for that long, not forever);
// - an idle keep-alive connection gives its worker up when other connections wait;
// - at most `workers` connections are served and `max_waiting` wait; more are answered 503 at
//   once and closed, so a connection flood holds a bounded number of the VMM's descriptors.
// Responses the guard gives itself (400, 503) carry a JSON fault_message like the API's own.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include <httplib.h>

namespace vireo {

class ApiHttpServer final : public httplib::Server {
public:
    struct Limits {
        std::chrono::milliseconds read_timeout{5000};
        std::chrono::milliseconds write_timeout{5000};
        std::size_t workers = 8;
        std::size_t max_waiting = 16;
        std::size_t max_body = 0;
        std::size_t max_requests_per_connection = 100;
    };
    // Called for every request the guard refuses (for the API's metrics); any thread.
    using RefusalHook = std::function<void()>;

    ApiHttpServer(Limits limits, RefusalHook on_refusal);

private:
    bool process_and_close_socket(socket_t sock) override;

    class Pool;
    Limits m_limits;
    RefusalHook m_on_refusal;
};

}  // namespace vireo
