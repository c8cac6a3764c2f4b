// The HTTP server of vireo's Firecracker-compatible API, on a Unix domain socket.
//
// HTTP library: Debian 12's libcpp-httplib-dev (cpp-httplib 0.11.4, DESIGN.md §7: a packaged
// library rather than a hand-written parser). It listens on a Unix socket with
// set_address_family(AF_UNIX) + bind_to_port(path, port ignored) + listen_after_bind(), has
// read/write/keep-alive timeouts, a body size cap (set_payload_max_length) and serves each
// connection on a fixed worker pool, so a silent client holds one worker until its timeout and
// never blocks the others. So the fallback (libmicrohttpd on a socket of our own) is not needed.
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
        // A connection that sends nothing (or stalls mid-request) for this long is closed.
        std::chrono::milliseconds read_timeout{5000};
        std::chrono::milliseconds write_timeout{5000};
        // Connections served at once; more wait for a free worker.
        std::size_t workers = 8;
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
