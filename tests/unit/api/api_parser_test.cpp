// Every request body of firecracker.yaml's "definitions" that vireo accepts, checked the same way:
// a full valid body, the minimal one, each required field missing, each field of a wrong JSON
// type, an unknown field, null where it is (not) allowed, duplicate keys, malformed and oversized
// bodies. Value rules per type follow the schema tables.
#include "api/api_parser.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vireo {
namespace {

using Json = nlohmann::json;

// A parse attempt's outcome, independent of the value type.
struct Outcome {
    bool ok;
    std::string message;
};

template <typename T>
Outcome outcome(const Result<T>& r) {
    return r ? Outcome{true, ""} : Outcome{false, r.error().message()};
}

struct Field {
    std::string name;
    bool required;
    std::vector<Json> wrong;  // values of a wrong JSON type
};

struct Schema {
    std::string name;
    std::function<Outcome(std::string_view)> parse;
    Json full;  // every field, valid
    std::vector<Field> fields;
};

const Json kString = "x";
const Json kNumber = 7;
const Json kBool = true;
const Json kObject = Json::object();
const Json kArray = Json::array();

std::vector<Schema> schemas() {
    return {
        {"BootSource",
         [](std::string_view b) { return outcome(parse_boot_source(b)); },
         {{"kernel_image_path", "/k/vmlinux"},
          {"boot_args", "console=ttyS0"},
          {"initrd_path", "/k/initrd"}},
         {{"kernel_image_path", true, {kNumber, kBool, kObject, kArray}},
          {"boot_args", false, {kNumber, kBool, kArray}},
          {"initrd_path", false, {kNumber, kObject}}}},
        {"MachineConfiguration",
         [](std::string_view b) { return outcome(parse_machine_configuration(b)); },
         {{"vcpu_count", 2},
          {"mem_size_mib", 256},
          {"smt", false},
          {"track_dirty_pages", true},
          {"huge_pages", "None"},
          {"cpu_template", "None"}},
         {{"vcpu_count", true, {kString, kBool, 1.5, -1, kObject}},
          {"mem_size_mib", true, {kString, kBool, 2.0, -128, kArray}},
          {"smt", false, {kString, kNumber}},
          {"track_dirty_pages", false, {kString, kNumber}},
          {"huge_pages", false, {kNumber, kBool}},
          {"cpu_template", false, {kNumber, kObject}}}},
        {"MachineConfigurationPatch",
         [](std::string_view b) { return outcome(parse_machine_configuration_patch(b)); },
         {{"vcpu_count", 2},
          {"mem_size_mib", 256},
          {"smt", false},
          {"track_dirty_pages", true},
          {"huge_pages", "Transparent"}},
         {{"vcpu_count", false, {kString, kBool, 1.5, -1}},
          {"mem_size_mib", false, {kString, kBool, -1}},
          {"smt", false, {kString, kNumber}},
          {"track_dirty_pages", false, {kString}},
          {"huge_pages", false, {kNumber}}}},
        {"Drive",
         [](std::string_view b) { return outcome(parse_drive(b, "rootfs")); },
         {{"drive_id", "rootfs"},
          {"path_on_host", "/img/rootfs.ext4"},
          {"is_root_device", true},
          {"is_read_only", false},
          {"partuuid", "0eaa91a0-01"},
          {"cache_type", "Writeback"},
          {"io_engine", "Async"}},
         {{"drive_id", true, {kNumber, kBool, kArray}},
          {"path_on_host", true, {kNumber, kObject}},
          {"is_root_device", true, {kString, kNumber}},
          {"is_read_only", true, {kString, kNumber}},
          {"partuuid", false, {kNumber, kBool}},
          {"cache_type", false, {kNumber, kBool}},
          {"io_engine", false, {kNumber, kArray}}}},
        {"PartialDrive",
         [](std::string_view b) { return outcome(parse_partial_drive(b, "rootfs")); },
         {{"drive_id", "rootfs"}, {"path_on_host", "/img/bigger.ext4"}},
         {{"drive_id", true, {kNumber, kBool}}, {"path_on_host", true, {kNumber, kBool}}}},
        {"NetworkInterface",
         [](std::string_view b) { return outcome(parse_network_interface(b, "eth0")); },
         {{"iface_id", "eth0"},
          {"host_dev_name", "vtap0"},
          {"guest_mac", "06:00:ac:10:00:02"},
          {"mtu", 1500}},
         {{"iface_id", true, {kNumber, kBool}},
          {"host_dev_name", true, {kNumber, kArray}},
          {"guest_mac", false, {kNumber, kBool}},
          {"mtu", false, {kString, kBool, 1500.5, -1500}}}},
        {"PartialNetworkInterface",
         [](std::string_view b) { return outcome(parse_partial_network_interface(b, "eth0")); },
         {{"iface_id", "eth0"}},
         {{"iface_id", true, {kNumber, kBool, kObject}}}},
        {"InstanceActionInfo",
         [](std::string_view b) { return outcome(parse_instance_action_info(b)); },
         {{"action_type", "InstanceStart"}},
         {{"action_type", true, {kNumber, kBool, kObject}}}},
        {"Vm",
         [](std::string_view b) { return outcome(parse_vm_state(b)); },
         {{"state", "Paused"}},
         {{"state", true, {kNumber, kBool}}}},
        {"Logger",
         [](std::string_view b) { return outcome(parse_logger(b)); },
         {{"log_path", "/tmp/fc.log"},
          {"level", "Debug"},
          {"show_level", true},
          {"show_log_origin", false},
          {"module", "api_server::request"}},
         {{"log_path", false, {kNumber, kBool}},
          {"level", false, {kNumber, kBool}},
          {"show_level", false, {kString, kNumber}},
          {"show_log_origin", false, {kString}},
          {"module", false, {kNumber}}}},
        {"Metrics",
         [](std::string_view b) { return outcome(parse_metrics(b)); },
         {{"metrics_path", "/tmp/metrics.fifo"},
          {"emit_id", true},
          {"properties", {{"host", "h1"}, {"az", "x"}}}},
         {{"metrics_path", true, {kNumber, kBool}},
          {"emit_id", false, {kString, kNumber}},
          {"properties", false, {kString, kArray, Json{{"k", 1}}}}}},
        {"EntropyDevice",
         [](std::string_view b) { return outcome(parse_entropy_device(b)); },
         Json::object(),
         {}},
        {"Balloon",
         [](std::string_view b) { return outcome(parse_balloon(b)); },
         {{"amount_mib", 64},
          {"deflate_on_oom", true},
          {"stats_polling_interval_s", 1},
          {"free_page_hinting", false},
          {"free_page_reporting", true}},
         {{"amount_mib", true, {kString, kBool, 1.5, -1}},
          {"deflate_on_oom", true, {kString, kNumber}},
          {"stats_polling_interval_s", false, {kString, kBool, -1}},
          {"free_page_hinting", false, {kString, kNumber}},
          {"free_page_reporting", false, {kString, kObject}}}},
        {"BalloonUpdate",
         [](std::string_view b) { return outcome(parse_balloon_update(b)); },
         {{"amount_mib", 32}},
         {{"amount_mib", true, {kString, kBool, 2.5, -32, kObject}}}},
        {"BalloonStatsUpdate",
         [](std::string_view b) { return outcome(parse_balloon_stats_update(b)); },
         {{"stats_polling_interval_s", 5}},
         {{"stats_polling_interval_s", true, {kString, kBool, 0.5, -5, kArray}}}},
        {"SnapshotCreateParams",
         [](std::string_view b) { return outcome(parse_snapshot_create_params(b)); },
         {{"snapshot_path", "/s/state"}, {"mem_file_path", "/s/mem"}, {"snapshot_type", "Diff"}},
         {{"snapshot_path", true, {kNumber, kBool, kObject}},
          {"mem_file_path", true, {kNumber, kArray}},
          {"snapshot_type", false, {kNumber, kBool}}}},
    };
}

class BodySchema : public ::testing::TestWithParam<Schema> {};

TEST_P(BodySchema, FullBodyParses) {
    const auto& s = GetParam();
    auto r = s.parse(s.full.dump());
    EXPECT_TRUE(r.ok) << r.message;
}

TEST_P(BodySchema, MinimalBodyParses) {
    const auto& s = GetParam();
    Json minimal = Json::object();
    for (const auto& f : s.fields) {
        if (f.required) {
            minimal[f.name] = s.full[f.name];
        }
    }
    if (s.name == "MachineConfigurationPatch") {
        minimal["smt"] = true;  // a patch must change something
    }
    auto r = s.parse(minimal.dump());
    EXPECT_TRUE(r.ok) << minimal.dump() << ": " << r.message;
}

TEST_P(BodySchema, EachRequiredFieldMissing) {
    const auto& s = GetParam();
    for (const auto& f : s.fields) {
        if (!f.required) {
            continue;
        }
        Json body = s.full;
        body.erase(f.name);
        auto r = s.parse(body.dump());
        ASSERT_FALSE(r.ok) << f.name;
        EXPECT_NE(r.message.find("`" + f.name + "`"), std::string::npos) << r.message;
        if (s.name != "PartialDrive") {  // its path_on_host is "required" as the only patch
            EXPECT_NE(r.message.find("missing"), std::string::npos) << r.message;
        }
    }
}

TEST_P(BodySchema, EachFieldWithAWrongType) {
    const auto& s = GetParam();
    for (const auto& f : s.fields) {
        for (const auto& wrong : f.wrong) {
            Json body = s.full;
            body[f.name] = wrong;
            auto r = s.parse(body.dump());
            ASSERT_FALSE(r.ok) << f.name << "=" << wrong.dump();
            EXPECT_NE(r.message.find("`" + f.name), std::string::npos) << r.message;
            EXPECT_EQ(r.message.rfind(s.name == "MachineConfigurationPatch"
                                          ? std::string("MachineConfiguration")
                                          : s.name,
                                      0),
                      0u)
                << "the message names the type: " << r.message;
        }
    }
}

TEST_P(BodySchema, NullIsAbsentForOptionalFieldsOnly) {
    const auto& s = GetParam();
    for (const auto& f : s.fields) {
        Json body = s.full;
        body[f.name] = nullptr;
        auto r = s.parse(body.dump());
        if (f.required) {
            EXPECT_FALSE(r.ok) << f.name;
            EXPECT_NE(r.message.find("`" + f.name + "`"), std::string::npos) << r.message;
        } else {
            EXPECT_TRUE(r.ok) << f.name << ": " << r.message;
        }
    }
}

TEST_P(BodySchema, UnknownFieldsAreNamed) {
    const auto& s = GetParam();
    Json body = s.full;
    body["colour"] = "red";
    auto r = s.parse(body.dump());
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.message.find("unknown field `colour`"), std::string::npos) << r.message;
    for (const auto& f : s.fields) {
        EXPECT_NE(r.message.find("`" + f.name + "`"), std::string::npos)
            << "lists the expected fields: " << r.message;
    }
    body["shade"] = 3;
    r = s.parse(body.dump());
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.message.find("`colour`"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("`shade`"), std::string::npos) << r.message;
}

TEST_P(BodySchema, DuplicateKeys) {
    const auto& s = GetParam();
    std::string body = s.full.dump();
    ASSERT_EQ(body.back(), '}');
    body.pop_back();
    body += std::string(s.full.empty() ? "" : ",") + "\"dup\":1,\"dup\":2}";
    auto r = s.parse(body);
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.message.find("duplicate field `dup`"), std::string::npos) << r.message;
}

TEST_P(BodySchema, MalformedAndNonObjectBodies) {
    const auto& s = GetParam();
    for (const char* bad : {"", "   ", "{", "{\"a\":}", "[]", "\"str\"", "42", "null", "true",
                            "{} {}", "{\"a\":1,}", "{'a':1}", "\xff\xfe"}) {
        auto r = s.parse(bad);
        EXPECT_FALSE(r.ok) << bad;
        EXPECT_FALSE(r.message.empty());
    }
    std::string deep(100, '[');
    auto r = s.parse("{\"x\":" + deep + std::string(100, ']') + "}");
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.message.find("nested"), std::string::npos) << r.message;
}

TEST_P(BodySchema, OversizedBodyRefusedBeforeParsing) {
    const auto& s = GetParam();
    // Valid JSON, but one byte over the cap: the size is what is refused.
    std::string body = s.full.dump();
    body.insert(body.size() - 1, std::string(kApiMaxBodySize, ' '));
    auto r = s.parse(body);
    ASSERT_FALSE(r.ok);
    EXPECT_NE(r.message.find("larger than the limit of 51200 bytes"), std::string::npos)
        << r.message.substr(0, 200);
    // Just under the cap still parses.
    body = s.full.dump();
    body.insert(body.size() - 1, std::string(kApiMaxBodySize - body.size(), ' '));
    ASSERT_EQ(body.size(), kApiMaxBodySize);
    EXPECT_TRUE(s.parse(body).ok);
}

INSTANTIATE_TEST_SUITE_P(Api, BodySchema, ::testing::ValuesIn(schemas()),
                         [](const auto& param_info) { return param_info.param.name; });

// Value rules, type by type.

TEST(BootSourceBody, Values) {
    auto b = parse_boot_source(
        R"({"kernel_image_path":"/k","boot_args":"console=ttyS0 quiet","initrd_path":null})");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->kernel_image_path, "/k");
    EXPECT_EQ(b->boot_args, "console=ttyS0 quiet");
    EXPECT_FALSE(b->initrd_path);
    EXPECT_FALSE(parse_boot_source(R"({"kernel_image_path":""})"));
    EXPECT_FALSE(parse_boot_source(R"({"kernel_image_path":"/k\u0000x"})"));
    EXPECT_FALSE(parse_boot_source(R"({"kernel_image_path":"/k","boot_args":"a\u0000"})"));
    EXPECT_FALSE(parse_boot_source(R"({"kernel_image_path":"/k","initrd_path":""})"));
    std::string long_path(kApiMaxPathLength + 1, 'a');
    EXPECT_FALSE(parse_boot_source(R"({"kernel_image_path":")" + long_path + "\"}"));
}

TEST(MachineConfigurationBody, DefaultsAndRanges) {
    auto m = parse_machine_configuration(R"({"vcpu_count":1,"mem_size_mib":128})");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(*m, MachineConfiguration{});
    m = parse_machine_configuration(
        R"({"vcpu_count":254,"mem_size_mib":1048576,"smt":true,"huge_pages":"2M"})");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->vcpu_count, 254u);
    EXPECT_EQ(m->mem_size_mib, 1048576u);
    EXPECT_TRUE(m->smt);
    EXPECT_EQ(m->huge_pages, HugePages::Hugetlbfs2M);
    EXPECT_EQ(m->memory_backend, MemoryBacking::Anonymous);
    m = parse_machine_configuration(
        R"({"vcpu_count":1,"mem_size_mib":128,"memory_backend":"Memfd"})");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->memory_backend, MemoryBacking::Memfd);

    struct Bad {
        const char* body;
        const char* says;
    };
    for (auto [body, says] : std::vector<Bad>{
             {R"({"vcpu_count":0,"mem_size_mib":128})", "between 1 and 254"},
             {R"({"vcpu_count":255,"mem_size_mib":128})", "APIC"},
             {R"({"vcpu_count":4294967297,"mem_size_mib":128})", "between 1 and 254"},
             {R"({"vcpu_count":-1,"mem_size_mib":128})", "negative"},
             {R"({"vcpu_count":1,"mem_size_mib":0})", "`mem_size_mib`"},
             {R"({"vcpu_count":1,"mem_size_mib":1099511627776})", "1 TiB"},
             {R"({"vcpu_count":1,"mem_size_mib":1048577})", "1 TiB"},
             {R"({"vcpu_count":1,"mem_size_mib":18446744073709551615})", "1 TiB"},
             {R"({"vcpu_count":1,"mem_size_mib":18446744073709551616})", "unsigned integer"},
             {R"({"vcpu_count":1,"mem_size_mib":1e3})", "unsigned integer"},
             {R"({"vcpu_count":3,"mem_size_mib":128,"smt":true})", "1 or even"},
             {R"({"vcpu_count":1,"mem_size_mib":129,"huge_pages":"2M"})", "multiple of 2"},
             {R"({"vcpu_count":1,"mem_size_mib":128,"huge_pages":"1G"})", "\"Transparent\""},
             {R"({"vcpu_count":1,"mem_size_mib":128,"memory_backend":"Shm"})", "\"Memfd\""},
             {R"({"vcpu_count":1,"mem_size_mib":128,"memory_backend":"Memfd","huge_pages":"2M"})",
              "cannot be combined"},
             {R"({"vcpu_count":1,"mem_size_mib":128,"cpu_template":"T2"})", "\"None\" or absent"},
             {R"({"vcpu_count":1,"mem_size_mib":128,"cpu_template":"none"})", "`none`"},
         }) {
        auto r = parse_machine_configuration(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(says), std::string::npos)
            << body << " -> " << r.error().message();
    }
}

TEST(MachineConfigurationBody, PatchAndApply) {
    auto p = parse_machine_configuration_patch(R"({"mem_size_mib":512})");
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->mem_size_mib, 512u);
    EXPECT_FALSE(p->vcpu_count);

    auto empty = parse_machine_configuration_patch("{}");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().message().find("empty PATCH"), std::string::npos);
    EXPECT_FALSE(parse_machine_configuration_patch(R"({"cpu_template":"None"})"));
    EXPECT_FALSE(parse_machine_configuration_patch(R"({"vcpu_count":0})"));
    EXPECT_FALSE(parse_machine_configuration_patch(R"({"mem_size_mib":1099511627776})"));

    MachineConfiguration base{.vcpu_count = 2, .mem_size_mib = 256};
    auto applied = apply_machine_configuration_patch(base, *p);
    ASSERT_TRUE(applied);
    EXPECT_EQ(applied->vcpu_count, 2u);
    EXPECT_EQ(applied->mem_size_mib, 512u);
    // Valid alone, invalid combined with the current configuration: nothing changes.
    auto odd = parse_machine_configuration_patch(R"({"vcpu_count":3})");
    ASSERT_TRUE(odd);
    base.smt = true;
    auto refused = apply_machine_configuration_patch(base, *odd);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("1 or even"), std::string::npos);
    auto memfd = parse_machine_configuration_patch(R"({"memory_backend":"Memfd"})");
    ASSERT_TRUE(memfd) << memfd.error().message();
    base = MachineConfiguration{.mem_size_mib = 256, .huge_pages = HugePages::Hugetlbfs2M};
    refused = apply_machine_configuration_patch(base, *memfd);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("cannot be combined"), std::string::npos);
}

TEST(DriveBody, ValuesAndIds) {
    auto d = parse_drive(
        R"({"drive_id":"rootfs","path_on_host":"/r.ext4","is_root_device":true,"is_read_only":true})",
        "rootfs");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->cache_type, CacheType::Writeback);
    EXPECT_FALSE(d->io_engine);
    EXPECT_TRUE(d->is_read_only);
    EXPECT_FALSE(d->partuuid);

    auto mismatch = parse_drive(
        R"({"drive_id":"data","path_on_host":"/d","is_root_device":false,"is_read_only":false})",
        "rootfs");
    ASSERT_FALSE(mismatch);
    EXPECT_NE(mismatch.error().message().find("does not match `rootfs` in the path"),
              std::string::npos)
        << mismatch.error().message();

    for (const char* id : {"", "a-b", "a.b", "../x", "a b", "é"}) {
        Json body{{"drive_id", id},
                  {"path_on_host", "/d"},
                  {"is_root_device", false},
                  {"is_read_only", false}};
        EXPECT_FALSE(parse_drive(body.dump(), id)) << id;
    }
    EXPECT_TRUE(parse_drive(
        R"({"drive_id":"A_1","path_on_host":"/d","is_root_device":false,"is_read_only":false})",
        "A_1"));
    std::string long_id(kApiMaxIdLength + 1, 'a');
    Json body{{"drive_id", long_id},
              {"path_on_host", "/d"},
              {"is_root_device", false},
              {"is_read_only", false}};
    EXPECT_FALSE(parse_drive(body.dump(), long_id));
    body["drive_id"] = long_id.substr(1);
    EXPECT_TRUE(parse_drive(body.dump(), long_id.substr(1)));

    for (const char* enum_body : {R"({"cache_type":"unsafe"})", R"({"cache_type":"None"})",
                                  R"({"io_engine":"sync"})", R"({"io_engine":"Uring"})"}) {
        Json b = Json::parse(enum_body);
        b.update(Json{{"drive_id", "d"},
                      {"path_on_host", "/d"},
                      {"is_root_device", false},
                      {"is_read_only", false}});
        EXPECT_FALSE(parse_drive(b.dump(), "d")) << enum_body;
    }
}

TEST(DriveBody, UnsupportedFeaturesSaySo) {
    Json base{{"drive_id", "d"},
              {"path_on_host", "/d"},
              {"is_root_device", false},
              {"is_read_only", false}};
    Json vhost = base;
    vhost["socket"] = "/run/vhost.sock";
    auto r = parse_drive(vhost.dump(), "d");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("not supported by vireo yet"), std::string::npos);
    auto nothing = parse_partial_drive(R"({"drive_id":"d"})", "d");
    ASSERT_FALSE(nothing);
    EXPECT_NE(nothing.error().message().find("nothing to update"), std::string::npos);
    EXPECT_FALSE(parse_partial_drive(R"({"drive_id":"e","path_on_host":"/x"})", "d"));
}

TEST(NetworkInterfaceBody, Values) {
    auto n = parse_network_interface(
        R"({"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"AA:fc:00:00:00:01"})", "eth0");
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n->guest_mac, (GuestMac{0xaa, 0xfc, 0, 0, 0, 1}));
    EXPECT_FALSE(n->mtu);

    for (const char* mac : {"", "aa:fc:00:00:00", "aa:fc:00:00:00:01:02", "aa-fc-00-00-00-01",
                            "gg:fc:00:00:00:01", "aa:fc:00:00:00:1", "01:00:5e:00:00:01"}) {
        Json body{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", mac}};
        auto r = parse_network_interface(body.dump(), "eth0");
        ASSERT_FALSE(r) << mac;
        EXPECT_NE(r.error().message().find("guest_mac"), std::string::npos);
    }
    for (const char* tap : {"", "tap/0", "a:b", "tap 0", ".", "..", "abcdefghijklmnop"}) {
        Json body{{"iface_id", "eth0"}, {"host_dev_name", tap}};
        EXPECT_FALSE(parse_network_interface(body.dump(), "eth0")) << tap;
    }
    EXPECT_TRUE(parse_network_interface(R"({"iface_id":"eth0","host_dev_name":"abcdefghijklmno"})",
                                        "eth0"));
    for (int mtu : {0, 67, 65536}) {
        Json body{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"mtu", mtu}};
        EXPECT_FALSE(parse_network_interface(body.dump(), "eth0")) << mtu;
    }
    Json body{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"mtu", 9000}};
    EXPECT_EQ(parse_network_interface(body.dump(), "eth0")->mtu, 9000);

    Json limited{{"iface_id", "eth0"},
                 {"host_dev_name", "tap0"},
                 {"rx_rate_limiter", {{"bandwidth", {{"size", 1000}, {"refill_time", 10}}}}},
                 {"tx_rate_limiter", {{"ops", {{"size", 5}, {"refill_time", 1}}}}}};
    auto nl = parse_network_interface(limited.dump(), "eth0");
    ASSERT_TRUE(nl) << nl.error().message();
    EXPECT_EQ(nl->rx_rate_limiter->bandwidth, (BucketConfig{1000, 0, 10}));
    EXPECT_FALSE(nl->rx_rate_limiter->ops);
    EXPECT_EQ(nl->tx_rate_limiter->ops, (BucketConfig{5, 0, 1}));
    auto p = parse_partial_network_interface(
        R"({"iface_id":"eth0","tx_rate_limiter":{"bandwidth":{"size":1,"refill_time":1}}})",
        "eth0");
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_FALSE(p->rx_rate_limiter);
    EXPECT_EQ(p->tx_rate_limiter->bandwidth, (BucketConfig{1, 0, 1}));
    EXPECT_FALSE(parse_network_interface(R"({"iface_id":"eth1","host_dev_name":"t"})", "eth0"));
    EXPECT_FALSE(parse_partial_network_interface(R"({"iface_id":"eth1"})", "eth0"));
    EXPECT_FALSE(parse_partial_network_interface(R"({"iface_id":"eth0"})", "eth/0"));
}

TEST(ActionAndVmBodies, Enums) {
    EXPECT_EQ(parse_instance_action_info(R"({"action_type":"InstanceStart"})")->action_type,
              InstanceActionType::InstanceStart);
    EXPECT_EQ(parse_instance_action_info(R"({"action_type":"SendCtrlAltDel"})")->action_type,
              InstanceActionType::SendCtrlAltDel);
    EXPECT_EQ(parse_instance_action_info(R"({"action_type":"FlushMetrics"})")->action_type,
              InstanceActionType::FlushMetrics);
    auto bad = parse_instance_action_info(R"({"action_type":"Reboot"})");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("\"InstanceStart\", \"SendCtrlAltDel\", \"FlushMetrics\""),
              std::string::npos)
        << bad.error().message();
    EXPECT_FALSE(parse_instance_action_info(R"({"action_type":"instancestart"})"));
    EXPECT_FALSE(parse_instance_action_info(R"({"action_type":"InstanceStart","payload":{}})"));

    EXPECT_EQ(parse_vm_state(R"({"state":"Paused"})")->state, VmStateRequest::Paused);
    EXPECT_EQ(parse_vm_state(R"({"state":"Resumed"})")->state, VmStateRequest::Resumed);
    EXPECT_FALSE(parse_vm_state(R"({"state":"Running"})"));
}

TEST(LoggerAndMetricsBodies, Values) {
    auto l = parse_logger("{}");
    ASSERT_TRUE(l);
    EXPECT_EQ(*l, Logger{});
    l = parse_logger(R"({"level":"wArNiNg","log_path":"/tmp/log"})");
    ASSERT_TRUE(l) << l.error().message();
    EXPECT_EQ(l->level, LogLevel::Warning);
    for (const char* level : {"Error", "warning", "INFO", "debug", "Trace", "off"}) {
        EXPECT_TRUE(parse_logger(Json{{"level", level}}.dump())) << level;
    }
    EXPECT_FALSE(parse_logger(R"({"level":"Verbose"})"));
    EXPECT_FALSE(parse_logger(R"({"log_path":""})"));

    auto m = parse_metrics(R"({"metrics_path":"/m","properties":{"a":"1","b":"2"}})");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->properties.size(), 2u);
    EXPECT_EQ(m->properties.at("b"), "2");
    EXPECT_FALSE(m->emit_id);
    EXPECT_FALSE(parse_metrics(R"({"metrics_path":""})"));
    EXPECT_FALSE(parse_metrics(R"({"metrics_path":"/m","properties":{"a":null}})"));
}

TEST(EntropyBody, RateLimiter) {
    EXPECT_TRUE(parse_entropy_device("{}"));
    EXPECT_FALSE(parse_entropy_device(R"({"rate_limiter":null})")->rate_limiter);
    auto r = parse_entropy_device(R"({"rate_limiter":{"ops":{"size":1,"refill_time":1}}})");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->rate_limiter->ops, (BucketConfig{1, 0, 1}));
}

TEST(ErrorMessages, AreShortAndPrintable) {
    // Hostile keys and values are cut and control bytes escaped in messages.
    std::string key(1000, 'k');
    auto r = parse_boot_source(Json{{"kernel_image_path", "/k"}, {key + "\n", 1}}.dump());
    ASSERT_FALSE(r);
    EXPECT_LT(r.error().message().size(), 300u);
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
}

TEST(GuestMac, ParseAndValidate) {
    auto mac = parse_guest_mac("02:00:00:00:00:ff");
    ASSERT_TRUE(mac);
    EXPECT_EQ((*mac)[5], 0xff);
    EXPECT_FALSE(parse_guest_mac("ff:ff:ff:ff:ff:ff"));
    EXPECT_FALSE(parse_guest_mac("02:00:00:00:00:0g"));
    EXPECT_TRUE(validate_api_id("rootfs_1"));
    EXPECT_FALSE(validate_api_id(""));
}

}  // namespace
}  // namespace vireo
