// Routing of one HTTP request to a typed ApiRequest, with no sockets involved (so it is unit
// tested and fuzzed directly). The endpoints are Firecracker's (firecracker.yaml "paths"):
// those vireo implements parse their body into an ApiRequest; those it does not implement yet
// answer 400 "... is not supported by vireo yet"; anything else answers 400 "Invalid request
// method and/or path", like Firecracker.
#pragma once

#include <string_view>
#include <variant>

#include "api/api_metrics.h"
#include "api/api_request.h"
#include "api/api_response.h"

namespace vireo {

struct RoutedRequest {
    ApiEndpoint endpoint = ApiEndpoint::Invalid;
    // The request for the ApiHandler, or the (error) answer when there is nothing to hand over.
    std::variant<ApiRequest, ApiResponse> result;
};

// `path` is the decoded URL path without the query string; `body` the request body.
RoutedRequest route_api_request(std::string_view method, std::string_view path,
                                std::string_view body);

}  // namespace vireo
