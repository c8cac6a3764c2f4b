// One logger setup for --log-path and PUT /logger: a second setup replaces the first (spdlog's
// registry knows the default logger by name, "vireo"), and Firecracker's level names parse in any
// case.
#include "vmm/log_setup.h"

#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include "base/read_file.h"
#include "base/test_files.h"

namespace vireo {
namespace {

std::string contents(const std::string& path) {
    auto bytes = read_whole_file(path, 1 << 20);
    EXPECT_TRUE(bytes) << path;
    return bytes ? std::string(bytes->begin(), bytes->end()) : std::string();
}

TEST(LogSetup, ASecondSetupReplacesTheFirst) {
    test::TempDir dir;
    const auto previous = spdlog::default_logger();
    const auto first = dir.file("first.log");
    const auto second = dir.file("second.log");
    ASSERT_TRUE(log_to_file(first));
    spdlog::info("to the first");
    ASSERT_TRUE(log_to_file(second));  // as PUT /logger after --log-path
    spdlog::info("to the second");
    EXPECT_NE(contents(first).find("to the first"), std::string::npos);
    EXPECT_EQ(contents(first).find("to the second"), std::string::npos);
    EXPECT_NE(contents(second).find("to the second"), std::string::npos);
    EXPECT_EQ(spdlog::get("vireo"), spdlog::default_logger());
    // A path that cannot be opened leaves the log where it was.
    EXPECT_FALSE(log_to_file(dir.file("no/such/dir/x.log")));
    spdlog::info("still the second");
    EXPECT_NE(contents(second).find("still the second"), std::string::npos);
    spdlog::set_default_logger(previous);
}

TEST(LogSetup, LevelNames) {
    EXPECT_EQ(parse_log_level("Info"), spdlog::level::info);
    EXPECT_EQ(parse_log_level("info"), spdlog::level::info);
    EXPECT_EQ(parse_log_level("Warning"), spdlog::level::warn);
    EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
    EXPECT_EQ(parse_log_level("ERROR"), spdlog::level::err);
    EXPECT_EQ(parse_log_level("Debug"), spdlog::level::debug);
    EXPECT_EQ(parse_log_level("Trace"), spdlog::level::trace);
    EXPECT_EQ(parse_log_level("Off"), spdlog::level::off);
    EXPECT_FALSE(parse_log_level("loud").has_value());
    EXPECT_FALSE(parse_log_level("").has_value());
}

}  // namespace
}  // namespace vireo
