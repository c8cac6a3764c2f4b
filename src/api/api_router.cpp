#include "api/api_router.h"

#include <array>
#include <string>

#include "api/api_parser.h"
#include "api/json_reader.h"

namespace vireo {

namespace {

struct EndpointName {
    ApiEndpoint endpoint;
    std::string_view name;
};

constexpr std::array<EndpointName, kApiEndpointCount> kEndpointNames{{
    {ApiEndpoint::GetInstanceInfo, "get_instance_info"},
    {ApiEndpoint::GetVersion, "get_version"},
    {ApiEndpoint::GetMachineConfig, "get_machine_config"},
    {ApiEndpoint::GetVmConfig, "get_vm_config"},
    {ApiEndpoint::PutActions, "put_actions"},
    {ApiEndpoint::PutBootSource, "put_boot_source"},
    {ApiEndpoint::PutMachineConfig, "put_machine_config"},
    {ApiEndpoint::PatchMachineConfig, "patch_machine_config"},
    {ApiEndpoint::PutDrive, "put_drive"},
    {ApiEndpoint::PatchDrive, "patch_drive"},
    {ApiEndpoint::PutNetworkInterface, "put_network_interface"},
    {ApiEndpoint::PatchNetworkInterface, "patch_network_interface"},
    {ApiEndpoint::PatchVm, "patch_vm"},
    {ApiEndpoint::PutLogger, "put_logger"},
    {ApiEndpoint::PutMetrics, "put_metrics"},
    {ApiEndpoint::PutEntropy, "put_entropy"},
    {ApiEndpoint::PutSnapshotCreate, "put_snapshot_create"},
    {ApiEndpoint::PutSnapshotLoad, "put_snapshot_load"},
    {ApiEndpoint::GetMigration, "get_migration"},
    {ApiEndpoint::PutMigrationSend, "put_migration_send"},
    {ApiEndpoint::PutMigrationReceive, "put_migration_receive"},
    {ApiEndpoint::PutMigrationCancel, "put_migration_cancel"},
    {ApiEndpoint::PutBalloon, "put_balloon"},
    {ApiEndpoint::PatchBalloon, "patch_balloon"},
    {ApiEndpoint::GetBalloon, "get_balloon"},
    {ApiEndpoint::GetBalloonStats, "get_balloon_stats"},
    {ApiEndpoint::PatchBalloonStats, "patch_balloon_stats"},
    {ApiEndpoint::NotSupported, "not_supported"},
    {ApiEndpoint::Invalid, "invalid"},
}};

constexpr bool names_in_enum_order() {
    for (std::size_t i = 0; i < kEndpointNames.size(); ++i) {
        if (static_cast<std::size_t>(kEndpointNames[i].endpoint) != i) {
            return false;
        }
    }
    return true;
}
static_assert(names_in_enum_order());

// Firecracker endpoints vireo does not implement yet, with the methods the yaml gives them.
// A trailing "/{id}" matches one non-empty path segment.
struct UnsupportedEndpoint {
    std::string_view path;
    std::string_view methods;  // space-separated
    std::string_view what;
};

constexpr std::array kUnsupported{
    UnsupportedEndpoint{"/balloon/hinting/start", "PATCH", "balloon free page hinting"},
    UnsupportedEndpoint{"/balloon/hinting/status", "GET", "balloon free page hinting"},
    UnsupportedEndpoint{"/balloon/hinting/stop", "PATCH", "balloon free page hinting"},
    UnsupportedEndpoint{"/cpu-config", "PUT", "custom CPU templates"},
    UnsupportedEndpoint{"/pmem/{id}", "PUT PATCH", "virtio-pmem devices"},
    UnsupportedEndpoint{"/mmds", "GET PUT PATCH", "the microVM metadata service (MMDS)"},
    UnsupportedEndpoint{"/mmds/config", "PUT", "the microVM metadata service (MMDS)"},
    UnsupportedEndpoint{"/serial", "PUT", "serial output configuration"},
    UnsupportedEndpoint{"/hotplug/memory", "GET PUT PATCH", "memory hotplug (virtio-mem)"},
    UnsupportedEndpoint{"/vsock", "PUT", "vsock devices"},
};

bool has_method(std::string_view methods, std::string_view method) {
    while (!methods.empty()) {
        auto space = methods.find(' ');
        if (methods.substr(0, space) == method) {
            return true;
        }
        methods = space == std::string_view::npos ? std::string_view{} : methods.substr(space + 1);
    }
    return false;
}

// `path` matches `pattern`, whose optional "/{id}" suffix stands for one non-empty segment.
bool path_matches(std::string_view pattern, std::string_view path) {
    constexpr std::string_view kId = "/{id}";
    if (!pattern.ends_with(kId)) {
        return pattern == path;
    }
    auto prefix = pattern.substr(0, pattern.size() - kId.size() + 1);  // "/pmem/"
    if (!path.starts_with(prefix)) {
        return false;
    }
    auto id = path.substr(prefix.size());
    return !id.empty() && id.find('/') == std::string_view::npos;
}

RoutedRequest fail(ApiEndpoint endpoint, std::string message) {
    return {endpoint, ApiResponse::bad_request(std::move(message))};
}

RoutedRequest invalid(std::string_view method, std::string_view path) {
    // Firecracker's message, with the (hostile) method and path quoted and cut short.
    return fail(ApiEndpoint::Invalid,
                "Invalid request method and/or path: " + api_detail::quote_text(method) + " " +
                    api_detail::quote_text(path));
}

template <typename T>
RoutedRequest parsed(ApiEndpoint endpoint, Result<T> value) {
    if (!value) {
        return fail(endpoint, value.error().message());
    }
    return {endpoint, ApiRequest(std::move(value).value())};
}

// "/drives/{drive_id}" and "/network-interfaces/{iface_id}": the id after `prefix`, or nullopt
// when `path` is not under `prefix`.
std::optional<std::string_view> id_under(std::string_view path, std::string_view prefix) {
    if (path == prefix.substr(0, prefix.size() - 1)) {
        return std::string_view{};  // "/drives": the id is missing
    }
    if (!path.starts_with(prefix)) {
        return std::nullopt;
    }
    auto id = path.substr(prefix.size());
    if (id.find('/') != std::string_view::npos) {
        return std::nullopt;
    }
    return id;
}

RoutedRequest route_get(std::string_view path) {
    if (path == "/") {
        return {ApiEndpoint::GetInstanceInfo, ApiRequest(GetInstanceInfo{})};
    }
    if (path == "/version") {
        return {ApiEndpoint::GetVersion, ApiRequest(GetVersion{})};
    }
    if (path == "/machine-config") {
        return {ApiEndpoint::GetMachineConfig, ApiRequest(GetMachineConfig{})};
    }
    if (path == "/vm/config") {
        return {ApiEndpoint::GetVmConfig, ApiRequest(GetVmConfig{})};
    }
    if (path == "/migration") {
        return {ApiEndpoint::GetMigration, ApiRequest(GetMigration{})};
    }
    if (path == "/balloon") {
        return {ApiEndpoint::GetBalloon, ApiRequest(GetBalloon{})};
    }
    if (path == "/balloon/statistics") {
        return {ApiEndpoint::GetBalloonStats, ApiRequest(GetBalloonStats{})};
    }
    return invalid("GET", path);
}

RoutedRequest route_put(std::string_view path, std::string_view body) {
    if (path == "/actions") {
        return parsed(ApiEndpoint::PutActions, parse_instance_action_info(body));
    }
    if (path == "/boot-source") {
        return parsed(ApiEndpoint::PutBootSource, parse_boot_source(body));
    }
    if (path == "/machine-config") {
        return parsed(ApiEndpoint::PutMachineConfig, parse_machine_configuration(body));
    }
    if (path == "/logger") {
        return parsed(ApiEndpoint::PutLogger, parse_logger(body));
    }
    if (path == "/metrics") {
        return parsed(ApiEndpoint::PutMetrics, parse_metrics(body));
    }
    if (path == "/entropy") {
        return parsed(ApiEndpoint::PutEntropy, parse_entropy_device(body));
    }
    if (path == "/balloon") {
        return parsed(ApiEndpoint::PutBalloon, parse_balloon(body));
    }
    if (path == "/snapshot/create") {
        return parsed(ApiEndpoint::PutSnapshotCreate, parse_snapshot_create_params(body));
    }
    if (path == "/snapshot/load") {
        return parsed(ApiEndpoint::PutSnapshotLoad, parse_snapshot_load_params(body));
    }
    if (path == "/migration/send") {
        return parsed(ApiEndpoint::PutMigrationSend, parse_migration_send_params(body));
    }
    if (path == "/migration/receive") {
        return parsed(ApiEndpoint::PutMigrationReceive, parse_migration_receive_params(body));
    }
    if (path == "/migration/cancel") {
        return parsed(ApiEndpoint::PutMigrationCancel, parse_migration_cancel(body));
    }
    if (auto id = id_under(path, "/drives/")) {
        if (id->empty()) {
            return fail(ApiEndpoint::PutDrive, "PUT /drives/{drive_id}: missing drive id");
        }
        return parsed(ApiEndpoint::PutDrive, parse_drive(body, *id));
    }
    if (auto id = id_under(path, "/network-interfaces/")) {
        if (id->empty()) {
            return fail(ApiEndpoint::PutNetworkInterface,
                        "PUT /network-interfaces/{iface_id}: missing interface id");
        }
        return parsed(ApiEndpoint::PutNetworkInterface, parse_network_interface(body, *id));
    }
    return invalid("PUT", path);
}

RoutedRequest route_patch(std::string_view path, std::string_view body) {
    if (path == "/machine-config") {
        return parsed(ApiEndpoint::PatchMachineConfig, parse_machine_configuration_patch(body));
    }
    if (path == "/vm") {
        return parsed(ApiEndpoint::PatchVm, parse_vm_state(body));
    }
    if (path == "/balloon") {
        return parsed(ApiEndpoint::PatchBalloon, parse_balloon_update(body));
    }
    if (path == "/balloon/statistics") {
        return parsed(ApiEndpoint::PatchBalloonStats, parse_balloon_stats_update(body));
    }
    if (auto id = id_under(path, "/drives/")) {
        if (id->empty()) {
            return fail(ApiEndpoint::PatchDrive, "PATCH /drives/{drive_id}: missing drive id");
        }
        return parsed(ApiEndpoint::PatchDrive, parse_partial_drive(body, *id));
    }
    if (auto id = id_under(path, "/network-interfaces/")) {
        if (id->empty()) {
            return fail(ApiEndpoint::PatchNetworkInterface,
                        "PATCH /network-interfaces/{iface_id}: missing interface id");
        }
        return parsed(ApiEndpoint::PatchNetworkInterface,
                      parse_partial_network_interface(body, *id));
    }
    return invalid("PATCH", path);
}

}  // namespace

std::string_view api_endpoint_name(ApiEndpoint endpoint) {
    return kEndpointNames[static_cast<std::size_t>(endpoint)].name;
}

RoutedRequest route_api_request(std::string_view method, std::string_view path,
                                std::string_view body) {
    for (const auto& u : kUnsupported) {
        if (path_matches(u.path, path) && has_method(u.methods, method)) {
            return fail(ApiEndpoint::NotSupported, std::string(method) + " " + std::string(u.path) +
                                                       " (" + std::string(u.what) +
                                                       ") is not supported by vireo yet");
        }
    }
    if (method == "GET") {
        auto routed = route_get(path);
        if (routed.endpoint != ApiEndpoint::Invalid && !body.empty()) {
            return fail(routed.endpoint, "GET request cannot have a body");
        }
        return routed;
    }
    if (method == "PUT") {
        return route_put(path, body);
    }
    if (method == "PATCH") {
        return route_patch(path, body);
    }
    return invalid(method, path);
}

}  // namespace vireo
