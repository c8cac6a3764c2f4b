#include "api/api_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>

#include "api/api_http_server.h"
#include "api/api_json.h"
#include "api/api_router.h"
#include "base/unique_fd.h"
#include "seccomp/seccomp.h"

namespace vireo {

namespace {

constexpr mode_t kSocketMode = 0600;

// sun_path holds the path and its terminating NUL.
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// What lives at `path` before we bind: nothing, a stale socket (removed here), or an error.
Result<void> clear_socket_path(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return ok();
        }
        return Error::from_errno("API socket " + path);
    }
    if (!S_ISSOCK(st.st_mode)) {
        return Error("API socket " + path + " exists and is not a socket");
    }
    // Somebody listening accepts the connection; a socket file left behind by a dead process
    // refuses it.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) {
        return Error::from_errno("API socket " + path + ": socket");
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, kMaxSocketPath);
    // The cast is the sockets API's: sockaddr_un is a sockaddr.
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
        return Error("API socket " + path + " is in use: another process is listening on it");
    }
    if (errno != ECONNREFUSED) {
        return Error::from_errno("API socket " + path + ": probing the existing socket");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Error::from_errno("API socket " + path + ": removing the stale socket");
    }
    return ok();
}

void write_response(const ApiResponse& response, httplib::Response& res) {
    res.status = response.status;
    std::string body = response_body_json(response);
    if (body.empty() && response.failed()) {
        // Every error carries a fault_message, even when the handler gave none.
        body = to_json(Fault{"request failed (status " + std::to_string(response.status) + ")"});
    }
    if (!body.empty()) {
        res.set_content(body, "application/json");
    }
}

}  // namespace

struct ApiServer::Impl {
    Impl(ApiHttpServer::Limits limits, ApiMetrics& metrics)
        : http(limits, [&metrics] { metrics.record(ApiEndpoint::Invalid, true); }) {}

    ApiHttpServer http;
    std::thread thread;
    ApiHandler* handler = nullptr;
    std::mutex handler_mutex;  // one handle() at a time
    dev_t socket_dev = 0;      // the socket file we created, so stop() removes only ours
    ino_t socket_ino = 0;

    ApiResponse call_handler(ApiRequest request) {
        std::lock_guard lock(handler_mutex);
        try {
            return handler->handle(std::move(request));
        } catch (const std::exception& e) {
            return ApiResponse::internal_error(std::string("internal error: ") + e.what());
        } catch (...) {
            return ApiResponse::internal_error("internal error");
        }
    }
};

ApiServer::ApiServer() : ApiServer(Options{}) {}

ApiServer::ApiServer(Options options) : m_options(options) {}

ApiServer::~ApiServer() {
    stop();
}

bool ApiServer::running() const {
    return m_impl && m_impl->http.is_running();
}

Result<void> ApiServer::start(const std::string& socket_path, ApiHandler& handler) {
    if (m_impl) {
        return Error("API server already serves " + m_socket_path);
    }
    if (socket_path.empty() || socket_path.size() > kMaxSocketPath ||
        socket_path.find('\0') != std::string::npos) {
        return Error("API socket path " + socket_path + " must be 1 to " +
                     std::to_string(kMaxSocketPath) + " bytes without NUL");
    }
    if (auto cleared = clear_socket_path(socket_path); !cleared) {
        return cleared.error();
    }

    auto impl =
        std::make_unique<Impl>(ApiHttpServer::Limits{.read_timeout = m_options.read_timeout,
                                                     .write_timeout = m_options.write_timeout,
                                                     .workers = m_options.workers,
                                                     .max_waiting = m_options.max_waiting,
                                                     .max_body = kApiMaxBodySize},
                               m_metrics);
    impl->handler = &handler;
    Impl* self = impl.get();
    ApiMetrics* metrics = &m_metrics;
    auto& http = impl->http;

    http.set_address_family(AF_UNIX);
    // Runs on the new socket before bind(): Linux creates the socket file with the socket inode's
    // mode less the umask, so the file is 0600 from the start (no window for other users).
    http.set_socket_options([](socket_t sock) {
        (void)::fchmod(sock, kSocketMode);
        (void)::fcntl(sock, F_SETFD, FD_CLOEXEC);
    });
    http.set_default_headers({{"Server", "vireo API"}});

    // Every path and method goes to the router. Paths longer than any endpoint are answered
    // before the route patterns (std::regex, which recurses per character) see them.
    http.set_pre_routing_handler([metrics](const httplib::Request& req, httplib::Response& res) {
        constexpr std::size_t kMaxPath = 256;
        if (req.path.size() <= kMaxPath) {
            return httplib::Server::HandlerResponse::Unhandled;
        }
        ApiResponse response =
            ApiResponse::bad_request("Invalid request method and/or path: path longer than " +
                                     std::to_string(kMaxPath) + " bytes");
        metrics->record(ApiEndpoint::Invalid, true);
        write_response(response, res);
        return httplib::Server::HandlerResponse::Handled;
    });
    auto serve = [self, metrics](const httplib::Request& req, httplib::Response& res) {
        RoutedRequest routed = route_api_request(req.method, req.path, req.body);
        ApiResponse response;
        if (auto* request = std::get_if<ApiRequest>(&routed.result)) {
            response = self->call_handler(std::move(*request));
        } else {
            response = std::get<ApiResponse>(std::move(routed.result));
        }
        metrics->record(routed.endpoint, response.failed());
        write_response(response, res);
    };
    http.Get(".*", serve);
    http.Put(".*", serve);
    http.Patch(".*", serve);
    http.Post(".*", serve);
    http.Delete(".*", serve);
    http.Options(".*", serve);
    // Errors cpp-httplib answers by itself (malformed HTTP, body over the cap, URI too long,
    // methods without a route) get Firecracker's 400 and a fault_message too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([metrics](const httplib::Request&,
                                                                          httplib::Response& res) {
        if (!res.body.empty()) {
            return httplib::Server::HandlerResponse::Unhandled;  // one of ours
        }
        std::string message;
        switch (res.status) {
            case 413:
                message = "request body is larger than the limit of " +
                          std::to_string(kApiMaxBodySize) + " bytes";
                break;
            case 414:
                message = "request URI is too long";
                break;
            case 404:
            case 405:
                message = "Invalid request method and/or path";
                break;
            default:
                message = res.status == 400
                              ? std::string("malformed HTTP request")
                              : "HTTP request refused (status " + std::to_string(res.status) + ")";
                break;
        }
        metrics->record(ApiEndpoint::Invalid, true);
        write_response(ApiResponse::bad_request(message), res);
        return httplib::Server::HandlerResponse::Handled;
    }));

    if (!http.bind_to_port(socket_path, 80)) {
        return Error::from_errno("API socket " + socket_path + ": bind");
    }
    struct stat st {};
    if (::lstat(socket_path.c_str(), &st) != 0) {
        return Error::from_errno("API socket " + socket_path);
    }
    impl->socket_dev = st.st_dev;
    impl->socket_ino = st.st_ino;
    if ((st.st_mode & 07777) != kSocketMode && ::chmod(socket_path.c_str(), kSocketMode) != 0) {
        auto error = Error::from_errno("API socket " + socket_path + ": chmod");
        ::unlink(socket_path.c_str());
        return error;
    }

    impl->thread =
        seccomp::spawn(seccomp::ThreadKind::Api, [self] { self->http.listen_after_bind(); });
    // stop() is a no-op until the listen loop runs, so wait for it before handing out the server.
    for (int i = 0; i < 5000 && !http.is_running(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    m_socket_path = socket_path;
    m_impl = std::move(impl);
    if (!m_impl->http.is_running()) {
        stop();
        return Error("API socket " + socket_path + ": the server thread did not start");
    }
    return ok();
}

void ApiServer::stop() {
    if (!m_impl) {
        return;
    }
    // listen_after_bind() returns once stop() has closed the listening socket, after joining its
    // workers.
    m_impl->http.stop();
    if (m_impl->thread.joinable()) {
        m_impl->thread.join();
    }
    struct stat st {};
    if (::lstat(m_socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == m_impl->socket_dev && st.st_ino == m_impl->socket_ino) {
        ::unlink(m_socket_path.c_str());
    }
    m_impl.reset();
}

}  // namespace vireo
