#include "api/api_client.h"

#include <sys/socket.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace vireo {

Result<ApiClientResponse> api_call(const std::string& socket_path, const std::string& method,
                                   const std::string& path, const std::string& body) {
    httplib::Client client(socket_path);
    client.set_address_family(AF_UNIX);
    // A snapshot of a large guest takes a while: wait for the answer.
    client.set_read_timeout(600, 0);
    httplib::Result res{nullptr, httplib::Error::Unknown};
    if (method == "GET") {
        res = client.Get(path);
    } else if (method == "PUT") {
        res = client.Put(path, body, "application/json");
    } else if (method == "PATCH") {
        res = client.Patch(path, body, "application/json");
    } else {
        return Error("api_call: unsupported method " + method);
    }
    if (!res) {
        return Error("API socket " + socket_path + ": " + httplib::to_string(res.error()));
    }
    return ApiClientResponse{res->status, res->body};
}

std::string fault_of(const ApiClientResponse& r) {
    auto json = nlohmann::json::parse(r.body, nullptr, false);
    if (json.is_object() && json.contains("fault_message") && json["fault_message"].is_string()) {
        return json["fault_message"].get<std::string>();
    }
    return r.body;
}

}  // namespace vireo
