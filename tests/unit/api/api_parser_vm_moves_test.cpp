// Parsing of the request bodies that move a whole VM: snapshot load (Firecracker's) and live
// migration (vireo's extension, issue 14). Split from api_parser_test.cpp.
#include <string>

#include <gtest/gtest.h>

#include "api/api_parser.h"

namespace vireo {
namespace {

TEST(SnapshotLoadParams, FirecrackerBodiesParse) {
    // mem_backend, overrides, resume.
    auto full = parse_snapshot_load_params(R"({
        "snapshot_path": "/s/state",
        "mem_backend": {"backend_type": "File", "backend_path": "/s/mem"},
        "track_dirty_pages": true, "resume_vm": true,
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"}],
        "drive_overrides": [{"drive_id": "rootfs", "path_on_host": "/c/root.ext4"}],
        "eager_memory": true, "allow_block_devices": true})");
    ASSERT_TRUE(full) << full.error().message();
    EXPECT_TRUE(full->allow_block_devices);
    EXPECT_EQ(full->mem_file_path, "/s/mem");
    EXPECT_TRUE(full->track_dirty_pages && full->resume_vm && full->eager_memory);
    ASSERT_EQ(full->network_overrides.size(), 1U);
    EXPECT_EQ(full->network_overrides[0].host_dev_name, "tap7");
    ASSERT_EQ(full->drive_overrides.size(), 1U);
    EXPECT_EQ(full->drive_overrides[0].path_on_host, "/c/root.ext4");
    // The deprecated forms.
    auto old = parse_snapshot_load_params(
        R"({"snapshot_path": "/s", "mem_file_path": "/m", "enable_diff_snapshots": true})");
    ASSERT_TRUE(old) << old.error().message();
    EXPECT_EQ(old->mem_file_path, "/m");
    EXPECT_TRUE(old->track_dirty_pages);
    EXPECT_FALSE(old->resume_vm);
    EXPECT_FALSE(old->allow_block_devices);
}

TEST(SnapshotLoadParams, BadBodiesNameTheProblem) {
    const std::pair<const char*, const char*> cases[] = {
        {R"({"snapshot_path": "/s"})", "mem_backend"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m",
             "mem_backend": {"backend_type": "File", "backend_path": "/m"}})",
         "not both"},
        {R"({"mem_file_path": "/m"})", "snapshot_path"},
        {R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/u"}})",
         "Uffd"},
        {R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "Disk", "backend_path": "/u"}})",
         "backend_type"},
        {R"({"snapshot_path": "/s", "mem_backend": {"backend_path": "/u"}})", "backend_type"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": {}})",
         "network_overrides"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m",
             "network_overrides": [{"iface_id": "eth0"}]})",
         "host_dev_name"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m",
             "network_overrides": [{"iface_id": "eth0", "host_dev_name": "a/b"}]})",
         "host_dev_name"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m",
             "drive_overrides": [{"drive_id": "bad id!", "path_on_host": "/x"}]})",
         "drive_id"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m", "vsock_override": {"uds_path": "/v"}})",
         "vsock"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": "yes"})", "resume_vm"},
        {R"({"snapshot_path": "/s", "mem_file_path": "/m", "bogus": 1})", "bogus"},
    };
    for (const auto& [body, word] : cases) {
        auto r = parse_snapshot_load_params(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(word), std::string::npos)
            << body << " -> " << r.error().message();
    }
}

// Live migration (vireo extension, issue 14): defaults, bounds and refusals.
TEST(MigrationParams, BodiesParseWithDefaults) {
    auto send = parse_migration_send_params(R"({"destination_url": "tcp:169.254.0.2:7777"})");
    ASSERT_TRUE(send) << send.error().message();
    EXPECT_EQ(send->downtime_ms, 300U);
    EXPECT_EQ(send->timeout_s, 3600U);
    EXPECT_EQ(send->timeout_strategy, TimeoutStrategy::Cancel);
    EXPECT_EQ(send->max_bandwidth_mib, 0U);
    EXPECT_TRUE(send->auto_converge);
    send = parse_migration_send_params(R"({"destination_url": "unix:/m", "downtime_ms": 1,
        "timeout_s": 604800, "timeout_strategy": "Ignore", "max_bandwidth_mib": 1048576,
        "auto_converge": false})");
    ASSERT_TRUE(send) << send.error().message();
    EXPECT_EQ(send->timeout_strategy, TimeoutStrategy::Ignore);
    EXPECT_FALSE(send->auto_converge);
    auto receive = parse_migration_receive_params(R"({"receiver_url": "unix:/m",
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap1"}]})");
    ASSERT_TRUE(receive) << receive.error().message();
    EXPECT_EQ(receive->network_overrides.size(), 1U);
    EXPECT_FALSE(receive->local);
    send = parse_migration_send_params(R"({"destination_url": "unix:/m", "local": true})");
    ASSERT_TRUE(send) << send.error().message();
    EXPECT_TRUE(send->local);
    receive = parse_migration_receive_params(R"({"receiver_url": "unix:/m", "local": true})");
    ASSERT_TRUE(receive) << receive.error().message();
    EXPECT_TRUE(receive->local);
    EXPECT_TRUE(parse_migration_cancel(""));
    EXPECT_TRUE(parse_migration_cancel(" {} "));
}

TEST(MigrationParams, BadBodiesNameTheProblem) {
    const std::pair<const char*, const char*> send_cases[] = {
        {R"({})", "destination_url"},
        {R"({"destination_url": "unix:/m", "downtime_ms": 0})", "downtime_ms"},
        {R"({"destination_url": "unix:/m", "downtime_ms": 600001})", "downtime_ms"},
        {R"({"destination_url": "unix:/m", "timeout_s": 0})", "timeout_s"},
        {R"({"destination_url": "unix:/m", "timeout_s": 604801})", "timeout_s"},
        {R"({"destination_url": "unix:/m", "timeout_s": -1})", "timeout_s"},
        {R"({"destination_url": "unix:/m", "max_bandwidth_mib": 1048577})", "max_bandwidth_mib"},
        {R"({"destination_url": "unix:/m", "timeout_strategy": "Retry"})", "timeout_strategy"},
        {R"({"destination_url": "unix:/m", "auto_converge": 1})", "auto_converge"},
        {R"({"destination_url": "tcp:127.0.0.1:7", "local": true})", "must be unix:PATH"},
        {R"({"destination_url": "unix:/m", "local": "yes"})", "local"},
        {R"({"destination_url": "unix:/m", "speed": 3})", "speed"},
    };
    for (const auto& [body, word] : send_cases) {
        auto r = parse_migration_send_params(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(word), std::string::npos)
            << body << " -> " << r.error().message();
    }
    const std::pair<const char*, const char*> receive_cases[] = {
        {R"({})", "receiver_url"},
        {R"({"receiver_url": "tcp:127.0.0.1:7", "local": true})", "must be unix:PATH"},
        {R"({"receiver_url": "unix:/m", "drive_overrides": [{"drive_id": "bad id!",
             "path_on_host": "/x"}]})",
         "drive_id"},
        {R"({"receiver_url": "unix:/m", "vsock_override": {}})", "vsock_override"},
    };
    for (const auto& [body, word] : receive_cases) {
        auto r = parse_migration_receive_params(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message().find(word), std::string::npos)
            << body << " -> " << r.error().message();
    }
    auto cancel = parse_migration_cancel(R"({"now": true})");
    ASSERT_FALSE(cancel);
    EXPECT_NE(cancel.error().message().find("now"), std::string::npos);
}

}  // namespace
}  // namespace vireo
