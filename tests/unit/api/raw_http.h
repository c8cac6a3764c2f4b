// Test helpers for the API server: a raw socket client (so malformed, hostile and silent clients
// can be tested too) and a handler that answers like a VMM and remembers what it was asked.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api_handler.h"
#include "base/unique_fd.h"

namespace vireo::test {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline UniqueFd connect_to(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        return UniqueFd();
    }
    return fd;
}

inline void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return;  // the server may close early (e.g. an oversized body)
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Whether `raw` holds a whole response (headers and Content-Length bytes of body).
inline bool complete_response(const std::string& raw) {
    auto split = raw.find("\r\n\r\n");
    if (split == std::string::npos) {
        return false;
    }
    auto length = raw.find("Content-Length: ");
    std::size_t body = length == std::string::npos || length > split
                           ? 0
                           : std::stoul(raw.substr(length + 16, split - length - 16));
    return raw.size() >= split + 4 + body;
}

// Everything the peer sends until it closes, or until `timeout` passes; with `one_response`,
// only until a whole response has arrived (the server may keep the connection open).
inline std::string read_until_close(int fd, std::chrono::milliseconds timeout,
                                    bool one_response = false) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (::poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) {
            break;
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (one_response && complete_response(out)) {
            break;
        }
    }
    return out;
}

struct HttpResponse {
    int status = 0;
    std::string headers;
    std::string body;
    std::string fault() const {
        auto j = Json::parse(body, nullptr, false);
        return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>()
                                                            : "<no fault_message>";
    }
};

inline HttpResponse parse_response(const std::string& raw) {
    HttpResponse r;
    if (raw.rfind("HTTP/1.1 ", 0) == 0) {
        r.status = std::stoi(raw.substr(9, 3));
    }
    auto split = raw.find("\r\n\r\n");
    if (split != std::string::npos) {
        r.headers = raw.substr(0, split);
        r.body = raw.substr(split + 4);
    }
    return r;
}

inline HttpResponse raw_request(const std::string& path, const std::string& request) {
    UniqueFd fd = connect_to(path);
    if (!fd.valid()) {
        return {};
    }
    send_all(fd.get(), request);
    return parse_response(read_until_close(fd.get(), std::chrono::seconds(10), true));
}

inline HttpResponse request(const std::string& path, const std::string& method,
                            const std::string& url, const std::string& body = "") {
    std::string req = method + " " + url + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    if (!body.empty() || method == "PUT" || method == "PATCH") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    return raw_request(path, req + "\r\n" + body);
}

// Answers like a VMM would and remembers what it was asked.
class TestHandler final : public ApiHandler {
public:
    ApiResponse handle(ApiRequest request) override {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(request);
        if (std::holds_alternative<GetInstanceInfo>(request)) {
            return ApiResponse::ok(InstanceInfo{.id = "test-vm", .vmm_version = "0.1.0"});
        }
        if (std::holds_alternative<GetVersion>(request)) {
            return ApiResponse::ok(FirecrackerVersion{"0.1.0"});
        }
        if (std::holds_alternative<GetMachineConfig>(request)) {
            return ApiResponse::ok(MachineConfiguration{});
        }
        if (std::holds_alternative<GetVmConfig>(request)) {
            return ApiResponse::ok(VmConfig{});
        }
        if (auto* drive = std::get_if<Drive>(&request); drive && drive->drive_id == "refused") {
            return ApiResponse::bad_request("drive refused by the VMM");
        }
        if (auto* drive = std::get_if<Drive>(&request); drive && drive->drive_id == "bodiless") {
            return ApiResponse{400, {}};
        }
        return ApiResponse::no_content();
    }

    std::vector<ApiRequest> requests() {
        std::lock_guard lock(m_mutex);
        return m_requests;
    }

private:
    std::mutex m_mutex;
    std::vector<ApiRequest> m_requests;
};

}  // namespace vireo::test
