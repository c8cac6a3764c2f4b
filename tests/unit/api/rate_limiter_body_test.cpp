// Firecracker's RateLimiter object ({bandwidth?, ops?} of {size, one_time_burst?, refill_time}) in
// every body that takes one (issue 15): valid values, the limits of each field, hostile values.
#include "api/api_parser.h"

#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vireo {
namespace {

using Json = nlohmann::json;

// Firecracker's RateLimiter object, on drives (PUT and PATCH), NICs and the entropy device.
TEST(RateLimiterBody, ValuesAndHostileValues) {
    Json base{{"drive_id", "d"},
              {"path_on_host", "/d"},
              {"is_root_device", false},
              {"is_read_only", false}};
    Json b = base;
    b["rate_limiter"] = {{"bandwidth", {{"size", 1048576}, {"refill_time", 100}}},
                         {"ops", {{"size", 500}, {"one_time_burst", 1000}, {"refill_time", 1000}}}};
    auto d = parse_drive(b.dump(), "d");
    ASSERT_TRUE(d) << d.error().message();
    ASSERT_TRUE(d->rate_limiter);
    EXPECT_EQ(d->rate_limiter->bandwidth, (BucketConfig{1048576, 0, 100}));
    EXPECT_EQ(d->rate_limiter->ops, (BucketConfig{500, 1000, 1000}));
    // {} and null: unlimited; an absent bucket is absent.
    b["rate_limiter"] = Json::object();
    d = parse_drive(b.dump(), "d");
    ASSERT_TRUE(d && d->rate_limiter);
    EXPECT_FALSE(d->rate_limiter->limits());
    b["rate_limiter"] = nullptr;
    EXPECT_FALSE(parse_drive(b.dump(), "d")->rate_limiter);
    // Size 0 and refill_time 0 are valid (they disable a bucket), the largest values too.
    b["rate_limiter"] = {{"ops", {{"size", 0}, {"refill_time", 0}}},
                         {"bandwidth",
                          {{"size", 18446744073709551615ULL},
                           {"one_time_burst", 18446744073709551615ULL},
                           {"refill_time", kMaxRefillTimeMs}}}};
    d = parse_drive(b.dump(), "d");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_FALSE(d->rate_limiter->ops->limits());
    EXPECT_TRUE(d->rate_limiter->bandwidth->limits());
    // Each bad value is named.
    const std::pair<Json, const char*> bad[] = {
        {Json{{"bandwidth", {{"size", 1}}}}, "`refill_time`"},
        {Json{{"bandwidth", {{"refill_time", 1}}}}, "`size`"},
        {Json{{"ops", {{"size", -1}, {"refill_time", 1}}}}, "`size`"},
        {Json{{"ops", {{"size", 1.5}, {"refill_time", 1}}}}, "`size`"},
        {Json{{"ops", {{"size", "10"}, {"refill_time", 1}}}}, "`size`"},
        {Json{{"ops", {{"size", 1}, {"refill_time", kMaxRefillTimeMs + 1}}}}, "`refill_time`"},
        {Json{{"ops", {{"size", 1}, {"refill_time", 1}, {"one_time_burst", -5}}}},
         "`one_time_burst`"},
        {Json{{"ops", {{"size", 1}, {"refill_time", 1}, {"refil", 1}}}}, "`refil`"},
        {Json{{"iops", {{"size", 1}, {"refill_time", 1}}}}, "`iops`"},
        {Json{{"ops", Json::array()}}, "ops"},
        {Json::array(), "rate_limiter"},
        {Json(7), "rate_limiter"},
    };
    for (const auto& [limiter, says] : bad) {
        b["rate_limiter"] = limiter;
        auto r = parse_drive(b.dump(), "d");
        ASSERT_FALSE(r) << limiter.dump();
        EXPECT_NE(r.error().message().find(says), std::string::npos)
            << limiter.dump() << " -> " << r.error().message();
        Json p{{"drive_id", "d"}, {"rate_limiter", limiter}};
        EXPECT_FALSE(parse_partial_drive(p.dump(), "d")) << limiter.dump();
        Json n{{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"tx_rate_limiter", limiter}};
        EXPECT_FALSE(parse_network_interface(n.dump(), "eth0")) << limiter.dump();
        Json e{{"rate_limiter", limiter}};
        EXPECT_FALSE(parse_entropy_device(e.dump())) << limiter.dump();
    }
    // PATCH: a limiter alone is an update; an empty one too (it changes nothing).
    auto partial = parse_partial_drive(
        R"({"drive_id":"d","rate_limiter":{"bandwidth":{"size":0,"refill_time":0}}})", "d");
    ASSERT_TRUE(partial) << partial.error().message();
    EXPECT_FALSE(partial->path_on_host);
    EXPECT_EQ(partial->rate_limiter->bandwidth, (BucketConfig{}));
    EXPECT_FALSE(partial->rate_limiter->ops);
    EXPECT_TRUE(parse_partial_drive(R"({"drive_id":"d","rate_limiter":{}})", "d"));
}

}  // namespace
}  // namespace vireo
