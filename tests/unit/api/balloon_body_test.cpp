// Firecracker's Balloon, BalloonUpdate and BalloonStatsUpdate bodies (PUT /balloon, PATCH
// /balloon, PATCH /balloon/statistics) and the JSON of GET /balloon and GET /balloon/statistics:
// defaults, the limit of each field, hostile values, and what vireo does not offer. The checks
// every body gets (missing, wrong types, unknown fields, ...) are in api_parser_test.cpp.
#include <limits>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_json.h"
#include "api/api_parser.h"

namespace vireo {
namespace {

using Json = nlohmann::json;

std::string message_of(const Result<BalloonConfig>& r) {
    return r ? std::string("<parsed>") : r.error().message();
}

TEST(BalloonBody, MinimalTakesDefaults) {
    auto b = parse_balloon(R"({"amount_mib":0,"deflate_on_oom":false})");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, BalloonConfig{});
    b = parse_balloon(R"({"amount_mib":512,"deflate_on_oom":true,"stats_polling_interval_s":null,)"
                      R"("free_page_hinting":null,"free_page_reporting":null})");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, (BalloonConfig{.amount_mib = 512, .deflate_on_oom = true}));
}

TEST(BalloonBody, EveryField) {
    auto b =
        parse_balloon(R"({"amount_mib":100,"deflate_on_oom":true,"stats_polling_interval_s":5,)"
                      R"("free_page_hinting":false,"free_page_reporting":true})");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, (BalloonConfig{.amount_mib = 100,
                                 .deflate_on_oom = true,
                                 .stats_polling_interval_s = 5,
                                 .free_page_reporting = true}));
}

TEST(BalloonBody, Limits) {
    Json body{{"amount_mib", kMaxBalloonMib}, {"deflate_on_oom", false}};
    auto b = parse_balloon(body.dump());
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->amount_mib, kMaxBalloonMib);
    // One MiB more would overflow the device's 32-bit page count: refused, and the message says
    // why.
    body["amount_mib"] = std::uint64_t{kMaxBalloonMib} + 1;
    b = parse_balloon(body.dump());
    ASSERT_FALSE(b);
    EXPECT_NE(message_of(b).find("`amount_mib` must be between 0 and 16777215"), std::string::npos)
        << message_of(b);
    EXPECT_NE(message_of(b).find("32-bit num_pages"), std::string::npos) << message_of(b);
    EXPECT_NE(message_of(b).find("got 16777216"), std::string::npos) << message_of(b);

    body["amount_mib"] = 1;
    body["stats_polling_interval_s"] = std::numeric_limits<std::uint32_t>::max();
    b = parse_balloon(body.dump());
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->stats_polling_interval_s, std::numeric_limits<std::uint32_t>::max());
    body["stats_polling_interval_s"] = std::uint64_t{1} << 32;
    b = parse_balloon(body.dump());
    ASSERT_FALSE(b);
    EXPECT_NE(message_of(b).find("`stats_polling_interval_s` must be between 0 and 4294967295"),
              std::string::npos)
        << message_of(b);
}

TEST(BalloonBody, HostileValues) {
    const std::pair<Json, const char*> bad[] = {
        {Json{{"amount_mib", -1}, {"deflate_on_oom", false}}, "must not be negative"},
        {Json{{"amount_mib", 1e30}, {"deflate_on_oom", false}}, "`amount_mib`"},
        {Json{{"amount_mib", 18446744073709551615ULL}, {"deflate_on_oom", false}},
         "`amount_mib` must be between"},
        {Json{{"amount_mib", 1.0}, {"deflate_on_oom", false}}, "unsigned integer"},
        {Json{{"amount_mib", "64"}, {"deflate_on_oom", false}}, "`amount_mib` must be"},
        {Json{{"amount_mib", 1}, {"deflate_on_oom", 1}}, "`deflate_on_oom` must be a boolean"},
        {Json{{"amount_mib", 1}}, "missing required field `deflate_on_oom`"},
        {Json{{"deflate_on_oom", true}}, "missing required field `amount_mib`"},
        {Json{{"amount_mib", 1}, {"deflate_on_oom", true}, {"stats_polling_interval_s", -2}},
         "`stats_polling_interval_s` must not be negative"},
        {Json{{"amount_mib", 1}, {"deflate_on_oom", true}, {"free_page_reporting", "on"}},
         "`free_page_reporting` must be a boolean"},
        {Json{{"amount_mib", 1}, {"deflate_on_oom", true}, {"ballon", 1}},
         "unknown field `ballon`"},
        {Json::array(), "expected a JSON object"},
    };
    for (const auto& [body, says] : bad) {
        auto b = parse_balloon(body.dump());
        ASSERT_FALSE(b) << body.dump();
        EXPECT_EQ(message_of(b).rfind("Balloon: ", 0), 0U) << message_of(b);
        EXPECT_NE(message_of(b).find(says), std::string::npos)
            << body.dump() << " -> " << message_of(b);
    }
}

TEST(BalloonBody, FreePageHintingIsRefusedOnlyWhenAskedFor) {
    auto b = parse_balloon(R"({"amount_mib":1,"deflate_on_oom":true,"free_page_hinting":true})");
    ASSERT_FALSE(b);
    EXPECT_NE(message_of(b).find("`free_page_hinting` is not supported"), std::string::npos)
        << message_of(b);
    EXPECT_TRUE(
        parse_balloon(R"({"amount_mib":1,"deflate_on_oom":true,"free_page_hinting":false})"));
}

TEST(BalloonUpdateBody, Values) {
    auto u = parse_balloon_update(R"({"amount_mib":0})");
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->amount_mib, 0U);
    u = parse_balloon_update(Json{{"amount_mib", kMaxBalloonMib}}.dump());
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->amount_mib, kMaxBalloonMib);
    for (const Json& body : {Json{{"amount_mib", std::uint64_t{kMaxBalloonMib} + 1}},
                             Json{{"amount_mib", -1}}, Json{{"amount_mib", nullptr}},
                             Json::object(), Json{{"amount_mib", 1}, {"deflate_on_oom", true}}}) {
        auto r = parse_balloon_update(body.dump());
        ASSERT_FALSE(r) << body.dump();
        EXPECT_EQ(r.error().message().rfind("BalloonUpdate: ", 0), 0U) << r.error().message();
    }
    auto over = parse_balloon_update(Json{{"amount_mib", 1ULL << 40}}.dump());
    ASSERT_FALSE(over);
    EXPECT_NE(over.error().message().find("32-bit num_pages"), std::string::npos)
        << over.error().message();
}

TEST(BalloonStatsUpdateBody, Values) {
    auto u = parse_balloon_stats_update(R"({"stats_polling_interval_s":0})");
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->stats_polling_interval_s, 0U);
    u = parse_balloon_stats_update(R"({"stats_polling_interval_s":4294967295})");
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->stats_polling_interval_s, 4294967295U);
    for (const char* body :
         {R"({"stats_polling_interval_s":4294967296})", R"({"stats_polling_interval_s":-1})",
          R"({"stats_polling_interval_s":null})", R"({})", R"({"amount_mib":1})",
          R"({"stats_polling_interval_s":"5"})"}) {
        auto r = parse_balloon_stats_update(body);
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().message().rfind("BalloonStatsUpdate: ", 0), 0U) << r.error().message();
    }
}

TEST(BalloonTarget, NoMoreThanTheGuestsRam) {
    EXPECT_TRUE(validate_balloon_target(0, 1));
    EXPECT_TRUE(validate_balloon_target(256, 256));
    auto r = validate_balloon_target(257, 256);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(),
              "the balloon's target of 257 MiB is more than the guest's 256 MiB of RAM");
}

TEST(BalloonJson, GetBalloonReadsBack) {
    const BalloonConfig c{.amount_mib = 64,
                          .deflate_on_oom = true,
                          .stats_polling_interval_s = 2,
                          .free_page_reporting = true};
    const std::string json = to_json(c);
    // Firecracker's field order, with its free_page_hinting (never on in vireo).
    EXPECT_EQ(json, R"({"amount_mib":64,"deflate_on_oom":true,"stats_polling_interval_s":2,)"
                    R"("free_page_hinting":false,"free_page_reporting":true})");
    auto back = parse_balloon(json);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, c);
    EXPECT_EQ(response_body_json(ApiResponse::ok(c)), json);
}

TEST(BalloonJson, Statistics) {
    BalloonStats s;
    s.target_pages = 512;
    s.actual_pages = 256;
    s.target_mib = 2;
    s.actual_mib = 1;
    EXPECT_EQ(to_json(s),
              R"({"target_pages":512,"actual_pages":256,"target_mib":2,"actual_mib":1})");
    // The guest's figures follow, by Firecracker's names, in the device's order.
    s.guest = {{"swap_in", 0}, {"free_memory", 1ULL << 40}, {"oom_kill", 3}};
    EXPECT_EQ(to_json(s), R"({"target_pages":512,"actual_pages":256,"target_mib":2,"actual_mib":1,)"
                          R"("swap_in":0,"free_memory":1099511627776,"oom_kill":3})");
    EXPECT_EQ(response_body_json(ApiResponse::ok(s)), to_json(s));
}

TEST(BalloonJson, VmConfigSection) {
    VmConfig c;
    EXPECT_TRUE(Json::parse(to_json(c))["balloon"].is_null());
    c.balloon = BalloonConfig{.amount_mib = 8, .deflate_on_oom = true};
    const Json j = Json::parse(to_json(c));
    EXPECT_EQ(j["balloon"]["amount_mib"], 8);
    EXPECT_EQ(j["balloon"]["deflate_on_oom"], true);
    EXPECT_EQ(j["balloon"]["stats_polling_interval_s"], 0);
    EXPECT_EQ(j["balloon"]["free_page_reporting"], false);
}

}  // namespace
}  // namespace vireo
