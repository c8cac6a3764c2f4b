// A minimal client for a vireo (or Firecracker) API socket: one HTTP request over a Unix socket.
// Used by the `vireo snapshot` fronts, which drive a running VMM exactly as any API user would.
#pragma once

#include <string>

#include "base/result.h"

namespace vireo {

struct ApiClientResponse {
    int status = 0;
    std::string body;
};

// `method` is GET, PUT or PATCH. An Error means no HTTP answer (no socket, connection refused);
// an HTTP error status is a response.
Result<ApiClientResponse> api_call(const std::string& socket_path, const std::string& method,
                                   const std::string& path, const std::string& body = {});

// The fault_message of an error answer, or the raw body.
std::string fault_of(const ApiClientResponse& response);

}  // namespace vireo
