#include "api/api_router.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

const std::string kDrive =
    R"({"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":false})";

struct Route {
    std::string method;
    std::string path;
    std::string body;
    ApiEndpoint endpoint;
    std::size_t alternative;  // index in ApiRequest
};

template <typename T>
std::size_t index_of() {
    ApiRequest probe{T{}};
    return probe.index();
}

std::vector<Route> supported_routes() {
    return {
        {"GET", "/", "", ApiEndpoint::GetInstanceInfo, index_of<GetInstanceInfo>()},
        {"GET", "/version", "", ApiEndpoint::GetVersion, index_of<GetVersion>()},
        {"GET", "/machine-config", "", ApiEndpoint::GetMachineConfig, index_of<GetMachineConfig>()},
        {"GET", "/vm/config", "", ApiEndpoint::GetVmConfig, index_of<GetVmConfig>()},
        {"PUT", "/actions", R"({"action_type":"InstanceStart"})", ApiEndpoint::PutActions,
         index_of<InstanceActionInfo>()},
        {"PUT", "/boot-source", R"({"kernel_image_path":"/k"})", ApiEndpoint::PutBootSource,
         index_of<BootSource>()},
        {"PUT", "/machine-config", R"({"vcpu_count":2,"mem_size_mib":256})",
         ApiEndpoint::PutMachineConfig, index_of<MachineConfiguration>()},
        {"PATCH", "/machine-config", R"({"vcpu_count":4})", ApiEndpoint::PatchMachineConfig,
         index_of<MachineConfigurationPatch>()},
        {"PUT", "/drives/rootfs", kDrive, ApiEndpoint::PutDrive, index_of<Drive>()},
        {"PATCH", "/drives/rootfs", R"({"drive_id":"rootfs","path_on_host":"/r2"})",
         ApiEndpoint::PatchDrive, index_of<PartialDrive>()},
        {"PUT", "/network-interfaces/eth0", R"({"iface_id":"eth0","host_dev_name":"tap0"})",
         ApiEndpoint::PutNetworkInterface, index_of<NetworkInterface>()},
        {"PATCH", "/network-interfaces/eth0", R"({"iface_id":"eth0"})",
         ApiEndpoint::PatchNetworkInterface, index_of<PartialNetworkInterface>()},
        {"PATCH", "/vm", R"({"state":"Paused"})", ApiEndpoint::PatchVm, index_of<VmState>()},
        {"PUT", "/logger", R"({"level":"Debug"})", ApiEndpoint::PutLogger, index_of<Logger>()},
        {"PUT", "/metrics", R"({"metrics_path":"/m"})", ApiEndpoint::PutMetrics,
         index_of<Metrics>()},
        {"PUT", "/entropy", "{}", ApiEndpoint::PutEntropy, index_of<EntropyDevice>()},
        {"PUT", "/balloon", R"({"amount_mib":64,"deflate_on_oom":true})", ApiEndpoint::PutBalloon,
         index_of<BalloonConfig>()},
        {"PATCH", "/balloon", R"({"amount_mib":32})", ApiEndpoint::PatchBalloon,
         index_of<BalloonUpdate>()},
        {"GET", "/balloon", "", ApiEndpoint::GetBalloon, index_of<GetBalloon>()},
        {"GET", "/balloon/statistics", "", ApiEndpoint::GetBalloonStats,
         index_of<GetBalloonStats>()},
        {"PATCH", "/balloon/statistics", R"({"stats_polling_interval_s":1})",
         ApiEndpoint::PatchBalloonStats, index_of<BalloonStatsUpdate>()},
    };
}

class SupportedRoute : public ::testing::TestWithParam<Route> {};

TEST_P(SupportedRoute, ParsesIntoItsRequest) {
    const auto& r = GetParam();
    auto routed = route_api_request(r.method, r.path, r.body);
    EXPECT_EQ(routed.endpoint, r.endpoint);
    auto* request = std::get_if<ApiRequest>(&routed.result);
    ASSERT_NE(request, nullptr) << std::get<ApiResponse>(routed.result).status;
    EXPECT_EQ(request->index(), r.alternative);
}

TEST_P(SupportedRoute, BadBodyIs400WithFaultMessage) {
    const auto& r = GetParam();
    std::string body = r.method == "GET" ? "{}" : "{\"bogus\":1}";
    auto routed = route_api_request(r.method, r.path, body);
    EXPECT_EQ(routed.endpoint, r.endpoint);
    auto* response = std::get_if<ApiResponse>(&routed.result);
    ASSERT_NE(response, nullptr);
    EXPECT_EQ(response->status, 400);
    auto* fault = std::get_if<Fault>(&response->body);
    ASSERT_NE(fault, nullptr);
    EXPECT_FALSE(fault->fault_message.empty());
}

INSTANTIATE_TEST_SUITE_P(Api, SupportedRoute, ::testing::ValuesIn(supported_routes()),
                         [](const auto& param_info) {
                             return std::string(api_endpoint_name(param_info.param.endpoint));
                         });

std::string fault_of(const RoutedRequest& routed) {
    auto* response = std::get_if<ApiResponse>(&routed.result);
    if (response == nullptr || response->status != 400) {
        return "<not a 400>";
    }
    auto* fault = std::get_if<Fault>(&response->body);
    return fault != nullptr ? fault->fault_message : "<no fault>";
}

TEST(ApiRouter, EveryOtherFirecrackerEndpointIsNotSupportedYet) {
    // firecracker.yaml's paths and methods that vireo does not implement.
    const std::vector<std::pair<std::string, std::string>> endpoints{
        {"PATCH", "/balloon/hinting/start"},
        {"GET", "/balloon/hinting/status"},
        {"PATCH", "/balloon/hinting/stop"},
        {"PUT", "/cpu-config"},
        {"PUT", "/pmem/pm0"},
        {"PATCH", "/pmem/pm0"},
        {"GET", "/mmds"},
        {"PUT", "/mmds"},
        {"PATCH", "/mmds"},
        {"PUT", "/mmds/config"},
        {"PUT", "/serial"},
        {"GET", "/hotplug/memory"},
        {"PUT", "/hotplug/memory"},
        {"PATCH", "/hotplug/memory"},
        {"PUT", "/vsock"},
    };
    for (const auto& [method, path] : endpoints) {
        auto routed = route_api_request(method, path, "{}");
        EXPECT_EQ(routed.endpoint, ApiEndpoint::NotSupported) << method << " " << path;
        std::string fault = fault_of(routed);
        EXPECT_NE(fault.find("is not supported by vireo yet"), std::string::npos)
            << method << " " << path << " -> " << fault;
        EXPECT_NE(fault.find(method + " "), std::string::npos) << fault;
    }
    EXPECT_EQ(fault_of(route_api_request("PUT", "/vsock", "")),
              "PUT /vsock (vsock devices) is not supported by vireo yet");
}

TEST(ApiRouter, UnknownPathsAndMethodsAreInvalid) {
    const std::vector<std::pair<std::string, std::string>> requests{
        {"GET", "/nope"},
        {"GET", ""},
        {"GET", "/version/"},
        {"GET", "//"},
        {"PUT", "/"},
        {"DELETE", "/drives/rootfs"},
        {"POST", "/actions"},
        {"GET", "/boot-source"},
        {"PATCH", "/boot-source"},
        {"PUT", "/vm"},
        {"GET", "/drives/rootfs"},
        {"PUT", "/drives/a/b"},
        {"PUT", "/vm/config"},
        {"OPTIONS", "/"},
        {"DELETE", "/balloon"},
        {"PUT", "/pmem/"},
        {"PUT", "/pmem/a/b"},
        {"GET", "/balloon/hinting"},
        {"PUT", "/balloon/statistics"},
        {"PATCH", "/balloon/"},
        {"GET", "/balloon/statistics/"},
        {"HEAD", "/"},
        {"get", "/"},
    };
    for (const auto& [method, path] : requests) {
        auto routed = route_api_request(method, path, "{}");
        EXPECT_EQ(routed.endpoint, ApiEndpoint::Invalid) << method << " " << path;
        EXPECT_EQ(fault_of(routed).rfind("Invalid request method and/or path: ", 0), 0u)
            << method << " " << path << " -> " << fault_of(routed);
    }
    // Hostile methods and paths are cut and escaped in the message.
    auto routed = route_api_request("X\r\n", "/" + std::string(10000, 'a'), "");
    EXPECT_LT(fault_of(routed).size(), 200u);
    EXPECT_EQ(fault_of(routed).find('\n'), std::string::npos);
}

TEST(ApiRouter, PathIds) {
    EXPECT_NE(fault_of(route_api_request("PUT", "/drives/", kDrive)).find("missing drive id"),
              std::string::npos);
    EXPECT_NE(fault_of(route_api_request("PUT", "/drives", kDrive)).find("missing drive id"),
              std::string::npos);
    EXPECT_NE(fault_of(route_api_request("PATCH", "/network-interfaces/", "{}"))
                  .find("missing interface id"),
              std::string::npos);
    auto mismatch = route_api_request("PUT", "/drives/data", kDrive);
    EXPECT_EQ(mismatch.endpoint, ApiEndpoint::PutDrive);
    EXPECT_NE(fault_of(mismatch).find("does not match `data` in the path"), std::string::npos)
        << fault_of(mismatch);
    auto bad_id = route_api_request("PUT", "/drives/..", kDrive);
    EXPECT_NE(fault_of(bad_id).find("is not valid"), std::string::npos) << fault_of(bad_id);

    auto ok = route_api_request("PUT", "/drives/rootfs", kDrive);
    ASSERT_TRUE(std::holds_alternative<ApiRequest>(ok.result));
    const auto& drive = std::get<Drive>(std::get<ApiRequest>(ok.result));
    EXPECT_EQ(drive.drive_id, "rootfs");
    EXPECT_EQ(drive.path_on_host, "/r");
}

TEST(ApiRouter, BalloonBodiesAreParsed) {
    auto put = route_api_request(
        "PUT", "/balloon",
        R"({"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":2})");
    ASSERT_TRUE(std::holds_alternative<ApiRequest>(put.result)) << fault_of(put);
    EXPECT_EQ(
        std::get<BalloonConfig>(std::get<ApiRequest>(put.result)),
        (BalloonConfig{.amount_mib = 64, .deflate_on_oom = true, .stats_polling_interval_s = 2}));
    auto patch = route_api_request("PATCH", "/balloon", R"({"amount_mib":16777216})");
    EXPECT_EQ(patch.endpoint, ApiEndpoint::PatchBalloon);
    EXPECT_NE(fault_of(patch).find("BalloonUpdate: `amount_mib`"), std::string::npos)
        << fault_of(patch);
    auto hinting = route_api_request(
        "PUT", "/balloon", R"({"amount_mib":1,"deflate_on_oom":true,"free_page_hinting":true})");
    EXPECT_EQ(hinting.endpoint, ApiEndpoint::PutBalloon);
    EXPECT_NE(fault_of(hinting).find("`free_page_hinting` is not supported"), std::string::npos)
        << fault_of(hinting);
    auto stats = route_api_request("PATCH", "/balloon/statistics", R"({"amount_mib":1})");
    EXPECT_EQ(stats.endpoint, ApiEndpoint::PatchBalloonStats);
    EXPECT_NE(fault_of(stats).find("unknown field `amount_mib`"), std::string::npos)
        << fault_of(stats);
    EXPECT_EQ(fault_of(route_api_request("GET", "/balloon/statistics", "{}")),
              "GET request cannot have a body");
}

TEST(ApiRouter, GetWithABodyAndPutWithout) {
    auto get = route_api_request("GET", "/machine-config", "{}");
    EXPECT_EQ(get.endpoint, ApiEndpoint::GetMachineConfig);
    EXPECT_EQ(fault_of(get), "GET request cannot have a body");
    auto put = route_api_request("PUT", "/boot-source", "");
    EXPECT_EQ(fault_of(put), "BootSource: empty JSON body");
}

TEST(ApiRouter, EndpointNames) {
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::GetInstanceInfo), "get_instance_info");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::PatchNetworkInterface), "patch_network_interface");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::PutBalloon), "put_balloon");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::PatchBalloon), "patch_balloon");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::GetBalloon), "get_balloon");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::GetBalloonStats), "get_balloon_stats");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::PatchBalloonStats), "patch_balloon_stats");
    EXPECT_EQ(api_endpoint_name(ApiEndpoint::Invalid), "invalid");
}

TEST(ApiMetrics, CountsPerEndpoint) {
    ApiMetrics m;
    m.record(ApiEndpoint::PutDrive, false);
    m.record(ApiEndpoint::PutDrive, true);
    m.record(ApiEndpoint::Invalid, true);
    EXPECT_EQ(m.requests(ApiEndpoint::PutDrive), 2u);
    EXPECT_EQ(m.fails(ApiEndpoint::PutDrive), 1u);
    EXPECT_EQ(m.requests(ApiEndpoint::PatchDrive), 0u);
    EXPECT_EQ(m.total_requests(), 3u);
    EXPECT_EQ(m.total_fails(), 2u);
}

}  // namespace
}  // namespace vireo
