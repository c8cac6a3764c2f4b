#include "base/mac_address.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace vireo {
namespace {

std::string parse_error(const std::string& text) {
    auto r = MacAddress::parse(text);
    EXPECT_FALSE(r.ok()) << text << " parsed";
    return r.ok() ? "" : r.error().message();
}

TEST(MacAddress, ParsesAndFormats) {
    auto mac = MacAddress::parse("52:54:00:AB:cd:0F");
    ASSERT_TRUE(mac.ok()) << mac.error().message();
    EXPECT_EQ(mac->bytes(), (MacAddress::Bytes{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f}));
    EXPECT_EQ(mac->to_string(), "52:54:00:ab:cd:0f");
    EXPECT_FALSE(mac->is_multicast());
    EXPECT_TRUE(mac->is_locally_administered());
    EXPECT_EQ(*MacAddress::parse(mac->to_string()), *mac);
    EXPECT_EQ(MacAddress().to_string(), "00:00:00:00:00:00");
    auto universal = MacAddress::parse("00:1b:21:00:00:01");
    ASSERT_TRUE(universal.ok());
    EXPECT_FALSE(universal->is_locally_administered());
}

TEST(MacAddress, RejectsMalformedTextNamingTheProblem) {
    EXPECT_EQ(parse_error("52:54:00:12:34"),
              "invalid MAC address '52:54:00:12:34': expected 6 hex pairs like 52:54:00:12:34:56 "
              "(17 characters), got 14 characters");
    EXPECT_EQ(parse_error(""),
              "invalid MAC address '': expected 6 hex pairs like 52:54:00:12:34:56 (17 "
              "characters), got 0 characters");
    EXPECT_EQ(parse_error("52-54-00-12-34-56"),
              "invalid MAC address '52-54-00-12-34-56': expected ':' at position 2");
    EXPECT_EQ(parse_error("52:54:00:zz:34:56"),
              "invalid MAC address '52:54:00:zz:34:56': octet 4 'zz' is not two hex digits");
    EXPECT_EQ(parse_error("52:54:00:1:234:56"),
              "invalid MAC address '52:54:00:1:234:56': octet 4 '1:' is not two hex digits");
    EXPECT_EQ(parse_error(" 52:54:00:12:34:5"),
              "invalid MAC address ' 52:54:00:12:34:5': octet 1 ' 5' is not two hex digits");
    EXPECT_NE(parse_error("52:54:00:12:34:56 ").find("got 18 characters"), std::string::npos);
}

TEST(MacAddress, RejectsMulticastAndBroadcast) {
    for (const char* text : {"01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"}) {
        EXPECT_EQ(parse_error(text),
                  std::string("invalid MAC address '") + text +
                      "': multicast bit (bit 0 of the first octet) is set; a NIC needs a unicast "
                      "address");
    }
}

TEST(MacAddress, RandomLocalAddressesAreUnicastLocallyAdministeredAndVary) {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        const MacAddress mac = MacAddress::random_local();
        EXPECT_FALSE(mac.is_multicast()) << mac.to_string();
        EXPECT_TRUE(mac.is_locally_administered()) << mac.to_string();
        auto back = MacAddress::parse(mac.to_string());
        ASSERT_TRUE(back.ok()) << back.error().message();
        EXPECT_EQ(*back, mac);
        seen.insert(mac.to_string());
    }
    EXPECT_GT(seen.size(), 190U);  // 46 random bits: collisions would mean a broken source
}

}  // namespace
}  // namespace vireo
