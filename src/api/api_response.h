// The VMM's answer to one API request, with a typed body the server serializes (api_json.h), so
// the VMM side never touches JSON.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "api/api_types.h"
#include "base/error.h"

namespace vireo {

// {"fault_message": ...}, Firecracker's Error body.
struct Fault {
    std::string fault_message;

    friend bool operator==(const Fault&, const Fault&) = default;
};

// GET /balloon/statistics answers a BalloonStats (balloon_config.h), which has no comparison of
// its own; ApiResponse's needs one.
inline bool operator==(const BalloonStats& a, const BalloonStats& b) {
    return a.target_pages == b.target_pages && a.actual_pages == b.actual_pages &&
           a.target_mib == b.target_mib && a.actual_mib == b.actual_mib && a.guest == b.guest;
}

// The answer: 204 and no body for a PUT/PATCH that succeeded, 200 and a typed body for a GET,
// 400 (or 500 for a VMM fault) with a Fault. The server serializes the body (api_json.h), so the
// VMM side never touches JSON.
struct ApiResponse {
    using Body =
        std::variant<std::monostate, Fault, InstanceInfo, FirecrackerVersion, MachineConfiguration,
                     VmConfig, MigrationInfo, BalloonConfig, BalloonStats>;

    int status = 204;
    Body body;

    static ApiResponse no_content() { return {}; }
    static ApiResponse ok(Body body) { return {200, std::move(body)}; }
    static ApiResponse bad_request(std::string fault_message) {
        return {400, Fault{std::move(fault_message)}};
    }
    static ApiResponse internal_error(std::string fault_message) {
        return {500, Fault{std::move(fault_message)}};
    }
    // An Error from below: 400 when the request (or a file it names) is at fault, 500 when the
    // host failed a request that was fine (base/error.h's ErrorKind).
    static ApiResponse failure(const Error& error) {
        return error.is_host_failure() ? internal_error(error.message())
                                       : bad_request(error.message());
    }

    bool failed() const { return status >= 400; }

    friend bool operator==(const ApiResponse&, const ApiResponse&) = default;
};

}  // namespace vireo
