#include "api/config_file.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_json.h"

namespace vireo {
namespace {

using Json = nlohmann::json;

// A Firecracker config file with every section vireo supports.
Json full_config() {
    return Json::parse(R"({
      "boot-source": {
        "kernel_image_path": "/guest/vmlinux",
        "boot_args": "console=ttyS0 reboot=k panic=1",
        "initrd_path": "/guest/initrd.cpio"
      },
      "drives": [
        {"drive_id": "rootfs", "path_on_host": "/guest/rootfs.ext4", "is_root_device": true,
         "is_read_only": false, "partuuid": null, "cache_type": "Unsafe", "io_engine": "Sync",
         "rate_limiter": null},
        {"drive_id": "data", "path_on_host": "/guest/data.img", "is_root_device": false,
         "is_read_only": true, "cache_type": "Writeback", "io_engine": "Async"}
      ],
      "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false,
                         "track_dirty_pages": false, "huge_pages": "None"},
      "network-interfaces": [
        {"iface_id": "eth0", "host_dev_name": "vtap0", "guest_mac": "06:00:c0:a8:00:02"},
        {"iface_id": "eth1", "host_dev_name": "vtap1"}
      ],
      "logger": {"log_path": "/tmp/fc.log", "level": "Info", "show_level": true},
      "metrics": {"metrics_path": "/tmp/metrics.json"},
      "entropy": {},
      "balloon": {"amount_mib": 256, "deflate_on_oom": true, "stats_polling_interval_s": 5,
                  "free_page_reporting": true}
    })");
}

TEST(ConfigFile, FullFile) {
    auto c = parse_config_file(full_config().dump());
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(c->boot_source);
    EXPECT_EQ(c->boot_source->kernel_image_path, "/guest/vmlinux");
    EXPECT_EQ(c->boot_source->initrd_path, "/guest/initrd.cpio");
    ASSERT_EQ(c->drives.size(), 2u);
    EXPECT_TRUE(c->drives[0].is_root_device);
    EXPECT_EQ(c->drives[0].cache_type, CacheType::Unsafe);
    EXPECT_EQ(c->drives[0].io_engine, IoEngine::Sync);
    EXPECT_EQ(c->drives[1].cache_type, CacheType::Writeback);
    EXPECT_EQ(c->drives[1].io_engine, IoEngine::Async);
    EXPECT_EQ(c->machine_config.vcpu_count, 2u);
    EXPECT_EQ(c->machine_config.mem_size_mib, 1024u);
    ASSERT_EQ(c->network_interfaces.size(), 2u);
    EXPECT_EQ(c->network_interfaces[0].guest_mac, (GuestMac{6, 0, 0xc0, 0xa8, 0, 2}));
    EXPECT_FALSE(c->network_interfaces[1].guest_mac);
    ASSERT_TRUE(c->logger);
    EXPECT_EQ(c->logger->level, LogLevel::Info);
    ASSERT_TRUE(c->metrics);
    EXPECT_EQ(c->metrics->metrics_path, "/tmp/metrics.json");
    EXPECT_TRUE(c->entropy);
    EXPECT_EQ(c->balloon, (BalloonConfig{.amount_mib = 256,
                                         .deflate_on_oom = true,
                                         .stats_polling_interval_s = 5,
                                         .free_page_reporting = true}));
}

TEST(ConfigFile, MinimalFileTakesDefaults) {
    auto c = parse_config_file(R"({"boot-source": {"kernel_image_path": "/k"}})");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->machine_config, MachineConfiguration{});
    EXPECT_EQ(c->machine_config.vcpu_count, 1u);
    EXPECT_EQ(c->machine_config.mem_size_mib, 128u);
    EXPECT_TRUE(c->drives.empty());
    EXPECT_TRUE(c->network_interfaces.empty());
    EXPECT_FALSE(c->logger);
    EXPECT_FALSE(c->metrics);
    EXPECT_FALSE(c->entropy);
    EXPECT_FALSE(c->balloon);
}

TEST(ConfigFile, RoundTripsThroughVmConfigJson) {
    auto c = parse_config_file(full_config().dump());
    ASSERT_TRUE(c) << c.error().message();
    // GET /vm/config's answer is itself a valid config file describing the same VM.
    auto again = parse_config_file(to_json(*c));
    ASSERT_TRUE(again) << again.error().message() << "\n" << to_json(*c);
    EXPECT_EQ(*again, *c);
}

TEST(ConfigFile, UnsupportedSectionsSaySo) {
    for (const char* section :
         {"vsock", "mmds-config", "cpu-config", "pmem", "memory-hotplug", "serial"}) {
        Json file = full_config();
        file[section] = Json::object();
        auto c = parse_config_file(file.dump());
        ASSERT_FALSE(c) << section;
        EXPECT_NE(c.error().message().find(std::string("`") + section + "`"), std::string::npos)
            << c.error().message();
        EXPECT_NE(c.error().message().find("not supported by vireo yet"), std::string::npos)
            << c.error().message();
        // Firecracker's GET /vm/config writes null for sections it has not configured.
        file[section] = nullptr;
        EXPECT_TRUE(parse_config_file(file.dump())) << section;
    }
}

// Firecracker sets the machine up before the balloon and checks the target against its RAM.
TEST(ConfigFile, TheBalloonFitsTheGuestsRam) {
    Json file = full_config();
    file["balloon"]["amount_mib"] = 1024;  // all of machine-config's 1024 MiB
    auto c = parse_config_file(file.dump());
    ASSERT_TRUE(c) << c.error().message();
    file["balloon"]["amount_mib"] = 1025;
    c = parse_config_file(file.dump());
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "config file: balloon: the balloon's target of 1025 MiB is more than the guest's "
              "1024 MiB of RAM");
    // Without machine-config: Firecracker's default of 128 MiB.
    file.erase("machine-config");
    file["balloon"]["amount_mib"] = 129;
    EXPECT_FALSE(parse_config_file(file.dump()));
    file["balloon"] = nullptr;
    c = parse_config_file(file.dump());
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_FALSE(c->balloon);
}

TEST(ConfigFile, UnknownAndMissingSections) {
    Json file = full_config();
    file["drivez"] = Json::array();
    auto c = parse_config_file(file.dump());
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("unknown section `drivez`"), std::string::npos)
        << c.error().message();

    file = full_config();
    file.erase("boot-source");
    c = parse_config_file(file.dump());
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("`boot-source`"), std::string::npos);

    for (const char* bad : {"", "[]", "\"x\"", "{", "null"}) {
        EXPECT_FALSE(parse_config_file(bad)) << bad;
    }
}

TEST(ConfigFile, SectionErrorsNameTheSectionAndEntry) {
    struct Case {
        const char* pointer;  // JSON pointer of the value to replace
        Json value;
        const char* says;
    };
    for (const auto& [pointer, value, says] : std::vector<Case>{
             {"/machine-config/vcpu_count", 0, "machine-config: `vcpu_count`"},
             {"/machine-config/mem_size_mib", 1099511627776, "machine-config: `mem_size_mib`"},
             {"/machine-config/cpu_template", "C3", "machine-config: `cpu_template`"},
             {"/machine-config/colour", 1, "machine-config: unknown field `colour`"},
             {"/drives/1/is_read_only", "yes", "drives[1]: `is_read_only`"},
             {"/drives/0/rate_limiter", Json{{"bandwidth", {{"size", 1}}}},
              "drives[0]: rate_limiter: bandwidth: missing required field `refill_time`"},
             {"/drives/0/drive_id", "root fs", "drives[0]: `drive_id`"},
             {"/network-interfaces/1/guest_mac", "nope", "network-interfaces[1]: `guest_mac`"},
             {"/network-interfaces/0/tx_rate_limiter", Json{{"ops", 5}},
              "network-interfaces[0]: tx_rate_limiter: ops"},
             {"/boot-source/kernel_image_path", 5, "boot-source: `kernel_image_path`"},
             {"/logger/level", "Loud", "logger: `level`"},
             {"/metrics/metrics_path", "", "metrics: `metrics_path`"},
             {"/entropy/rate_limiter", Json{{"x", 1}}, "entropy: rate_limiter: "},
             {"/drives", Json::object(), "`drives` must be an array"},
             {"/network-interfaces", "eth0", "`network-interfaces` must be an array"},
             {"/machine-config", Json::array(), "machine-config: expected a JSON object"},
             {"/balloon/amount_mib", 16777216, "balloon: `amount_mib` must be between 0 and"},
             {"/balloon/deflate_on_oom", nullptr, "balloon: `deflate_on_oom` must be a boolean"},
             {"/balloon/free_page_hinting", true, "balloon: `free_page_hinting` is not supported"},
             {"/balloon/inflate", true, "balloon: unknown field `inflate`"},
             {"/balloon", Json::array(), "balloon: expected a JSON object"},
         }) {
        Json file = full_config();
        file[Json::json_pointer(pointer)] = value;
        auto c = parse_config_file(file.dump());
        ASSERT_FALSE(c) << pointer;
        EXPECT_EQ(c.error().message().rfind("config file: ", 0), 0u) << c.error().message();
        EXPECT_NE(c.error().message().find(says), std::string::npos)
            << pointer << " -> " << c.error().message();
    }
}

TEST(ConfigFile, DuplicatesAcrossEntries) {
    struct Case {
        const char* pointer;
        Json value;
        const char* says;
    };
    for (const auto& [pointer, value, says] : std::vector<Case>{
             {"/drives/1/drive_id", "rootfs", "`rootfs` is used twice"},
             {"/drives/1/is_root_device", true, "both root devices"},
             {"/network-interfaces/1/iface_id", "eth0", "`eth0` is used twice"},
             {"/network-interfaces/1/host_dev_name", "vtap0", "`vtap0` is used twice"},
             {"/network-interfaces/1/guest_mac", "06:00:C0:A8:00:02", "is used twice"},
         }) {
        Json file = full_config();
        file[Json::json_pointer(pointer)] = value;
        auto c = parse_config_file(file.dump());
        ASSERT_FALSE(c) << pointer;
        EXPECT_NE(c.error().message().find(says), std::string::npos)
            << pointer << " -> " << c.error().message();
    }
    // Duplicate keys in the file itself.
    auto c = parse_config_file(
        R"({"boot-source":{"kernel_image_path":"/a"},"boot-source":{"kernel_image_path":"/b"}})");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("duplicate"), std::string::npos);
}

TEST(ConfigFile, SizeCap) {
    std::string text = full_config().dump();
    text.insert(text.size() - 1, std::string(kMaxConfigFileSize, ' '));
    auto c = parse_config_file(text);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("larger than"), std::string::npos);
}

TEST(ConfigFile, LoadFromDisk) {
    auto dir = std::filesystem::temp_directory_path() /
               ("vireo-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = (dir / "vm.json").string();
    {
        std::ofstream out(path);
        out << full_config().dump(2);
    }
    auto c = load_config_file(path);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->drives.size(), 2u);

    {
        std::ofstream out(path);
        out << R"({"boot-source": {}})";
    }
    c = load_config_file(path);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find(path), std::string::npos) << c.error().message();

    auto missing = load_config_file((dir / "nope.json").string());
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("No such file"), std::string::npos);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vireo
