// The HTTP server of vireo's Firecracker-compatible API, on a Unix domain socket.
//
// HTTP library: Debian 12's libcpp-httplib-dev (cpp-httplib 0.11.4, DESIGN.md §7: a packaged
// library rather than a hand-written parser). It listens on a Unix socket with
// set_address_family(AF_UNIX) + bind_to_port(path, port ignored) + listen_after_bind(), routes
// and writes responses. Its own request reader is not safe against a hostile client (a recursive
// regex on Range, unbounded chunked/length-less/compressed bodies, lines and header counts, no
// deadline per request), so every connection is read by ApiHttpServer (api_http_server.h) under
// limits and deadlines, and httplib parses only a head that guard_request_head() checked.
//
// Routing and body parsing are api_router.h's; this file only moves bytes. Parsed requests go to
// the injected ApiHandler, one call at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/api_handler.h"
#include "api/api_metrics.h"
#include "base/result.h"

namespace vireo {

// start(), stop() and running() belong to one owning thread; metrics() may be read from any.
class ApiServer {
public:
    struct Options {
        // A connection that sends nothing for this long is closed; a request head must arrive
        // within this of its first byte, and its body within this of its head.
        std::chrono::milliseconds read_timeout{5000};
        std::chrono::milliseconds write_timeout{5000};
        // Connections served at once; up to max_waiting more wait for a free worker, and the
        // rest are answered 503 at once (a flood holds a bounded number of descriptors).
        std::size_t workers = 8;
        std::size_t max_waiting = 16;
    };

    ApiServer();
    explicit ApiServer(Options options);
    // Stops the server (see stop()).
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Creates the socket at `socket_path` (mode 0600) and serves it on a thread of its own until
    // stop(). An existing socket file nobody listens on (connect() refused) is replaced; one
    // somebody listens on, or a path that is not a socket, is an error naming the path.
    // `handler` must outlive the server.
    Result<void> start(const std::string& socket_path, ApiHandler& handler);

    // Stops accepting, waits for the requests in progress (a handler blocked on a VMM that no
    // longer answers blocks this too: close its CommandQueue first) and removes the socket file
    // if it is still ours. Idempotent.
    void stop();

    bool running() const;
    const std::string& socket_path() const { return m_socket_path; }
    const ApiMetrics& metrics() const { return m_metrics; }

private:
    struct Impl;

    Options m_options;
    std::string m_socket_path;
    ApiMetrics m_metrics;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace vireo
