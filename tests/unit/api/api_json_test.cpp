#include "api/api_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_parser.h"

namespace vireo {
namespace {

using Json = nlohmann::json;

TEST(ApiJson, InstanceInfoAndVersion) {
    InstanceInfo info{.id = "vm1", .state = InstanceState::NotStarted, .vmm_version = "0.1.0"};
    EXPECT_EQ(to_json(info),
              R"({"app_name":"vireo","id":"vm1","state":"Not started","vmm_version":"0.1.0"})");
    info.state = InstanceState::Running;
    EXPECT_EQ(Json::parse(to_json(info))["state"], "Running");
    info.state = InstanceState::Paused;
    EXPECT_EQ(Json::parse(to_json(info))["state"], "Paused");
    EXPECT_EQ(to_json(FirecrackerVersion{"0.1.0"}), R"({"firecracker_version":"0.1.0"})");
}

TEST(ApiJson, MachineConfigurationReadsBack) {
    MachineConfiguration m{.vcpu_count = 4,
                           .mem_size_mib = 2048,
                           .smt = true,
                           .track_dirty_pages = true,
                           .huge_pages = HugePages::Hugetlbfs2M};
    std::string json = to_json(m);
    EXPECT_EQ(json, R"({"vcpu_count":4,"mem_size_mib":2048,"smt":true,"track_dirty_pages":true,)"
                    R"("huge_pages":"2M"})");
    auto back = parse_machine_configuration(json);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, m);
    // vireo's memory_backend appears only when set, so Firecracker's output stays unchanged.
    m = MachineConfiguration{.memory_backend = MemoryBacking::Memfd};
    json = to_json(m);
    EXPECT_NE(json.find(R"("memory_backend":"Memfd")"), std::string::npos) << json;
    back = parse_machine_configuration(json);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, m);
}

TEST(ApiJson, VmConfigUsesFirecrackerSectionNames) {
    VmConfig c;
    c.drives.push_back(Drive{.drive_id = "rootfs", .path_on_host = "/r", .is_root_device = true});
    c.network_interfaces.push_back(
        NetworkInterface{.iface_id = "eth0", .host_dev_name = "tap0", .guest_mac = GuestMac{2}});
    Json j = Json::parse(to_json(c));
    EXPECT_TRUE(j["boot-source"].is_null());
    EXPECT_EQ(j["drives"][0]["drive_id"], "rootfs");
    EXPECT_EQ(j["drives"][0]["cache_type"], "Writeback");  // vireo's default (api_types.h)
    EXPECT_FALSE(j["drives"][0].contains("io_engine"));    // not given: vireo picks
    c.drives[0].io_engine = IoEngine::Sync;
    c.drives[0].cache_type = CacheType::Unsafe;
    j = Json::parse(to_json(c));
    EXPECT_EQ(j["drives"][0]["cache_type"], "Unsafe");
    EXPECT_EQ(j["drives"][0]["io_engine"], "Sync");
    EXPECT_EQ(j["machine-config"]["mem_size_mib"], 128);
    EXPECT_EQ(j["network-interfaces"][0]["guest_mac"], "02:00:00:00:00:00");
    EXPECT_TRUE(j["network-interfaces"][0]["mtu"].is_null());
    EXPECT_TRUE(j["logger"].is_null());
    EXPECT_TRUE(j["metrics"].is_null());
    EXPECT_TRUE(j["entropy"].is_null());
    c.entropy = EntropyDevice{};
    c.logger = Logger{.level = LogLevel::Trace};
    c.metrics = Metrics{.metrics_path = "/m", .properties = {{"k", "v"}}};
    j = Json::parse(to_json(c));
    EXPECT_TRUE(j["entropy"]["rate_limiter"].is_null());
    EXPECT_TRUE(j["drives"][0]["rate_limiter"].is_null());
    EXPECT_TRUE(j["network-interfaces"][0]["tx_rate_limiter"].is_null());
    c.drives[0].rate_limiter = RateLimiterConfig{.ops = BucketConfig{10, 5, 100}};
    c.entropy->rate_limiter = RateLimiterConfig{.bandwidth = BucketConfig{1, 0, 2}};
    j = Json::parse(to_json(c));
    EXPECT_TRUE(j["drives"][0]["rate_limiter"]["bandwidth"].is_null());
    EXPECT_EQ(j["drives"][0]["rate_limiter"]["ops"],
              (Json{{"size", 10}, {"one_time_burst", 5}, {"refill_time", 100}}));
    EXPECT_EQ(j["entropy"]["rate_limiter"]["bandwidth"]["refill_time"], 2);
    EXPECT_EQ(j["logger"]["level"], "Trace");
    EXPECT_TRUE(j["logger"]["log_path"].is_null());
    EXPECT_EQ(j["metrics"]["properties"]["k"], "v");
}

TEST(ApiJson, ResponseBodies) {
    EXPECT_EQ(response_body_json(ApiResponse::no_content()), "");
    EXPECT_EQ(response_body_json(ApiResponse::bad_request("no \"way\"")),
              R"({"fault_message":"no \"way\""})");
    EXPECT_EQ(response_body_json(ApiResponse::ok(FirecrackerVersion{"1"})),
              R"({"firecracker_version":"1"})");
    // Strings from the VMM that are not UTF-8 are replaced, never thrown on.
    EXPECT_NO_THROW(response_body_json(ApiResponse::bad_request("\xff\xfe")));
    EXPECT_EQ(ApiResponse::internal_error("x").status, 500);
    EXPECT_TRUE(ApiResponse::internal_error("x").failed());
    EXPECT_FALSE(ApiResponse::no_content().failed());
}

TEST(ApiJson, GuestMacFormat) {
    EXPECT_EQ(format_guest_mac(GuestMac{0xaa, 0xbb, 0xcc, 0x0d, 0xe, 0xff}), "aa:bb:cc:0d:0e:ff");
}

}  // namespace
}  // namespace vireo
