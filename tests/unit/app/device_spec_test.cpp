// The CLI's --disk and --net specs (app/device_spec.h).
#include "app/device_spec.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

TEST(DiskSpec, PathOnly) {
    auto d = parse_disk_spec("path=/tmp/disk.img");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->path, "/tmp/disk.img");
    EXPECT_FALSE(d->read_only);
    EXPECT_EQ(d->serial, "");
}

TEST(DiskSpec, AllKeys) {
    auto d = parse_disk_spec("serial=data1,readonly=on,path=a.img,direct=on");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_TRUE(d->direct);
    EXPECT_EQ(d->path, "a.img");
    EXPECT_TRUE(d->read_only);
    EXPECT_EQ(d->serial, "data1");
}

TEST(DiskSpec, Errors) {
    for (const char* bad :
         {"", "readonly=on", "path=", "path=a,readonly=maybe", "path=a,size=3", "path=a,path=b",
          "path=a,", "nonsense", "path=a,serial=123456789012345678901"}) {
        EXPECT_FALSE(parse_disk_spec(bad)) << bad;
    }
    auto e = parse_disk_spec("path=a,colour=red");
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("colour"), std::string::npos);
}

TEST(NetSpec, TapAndMac) {
    auto n = parse_net_spec("tap=vtap0,mac=02:00:00:00:00:01");
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->tap, "vtap0");
    ASSERT_TRUE(n->mac);
    EXPECT_EQ(n->mac->to_string(), "02:00:00:00:00:01");
}

TEST(NetSpec, Errors) {
    for (const char* bad : {"", "mac=02:00:00:00:00:01", "tap=x,mac=zz:00:00:00:00:01",
                            "tap=x,mac=01:00:00:00:00:01", "tap=x,speed=10"}) {
        EXPECT_FALSE(parse_net_spec(bad)) << bad;
    }
    auto e = parse_net_spec("tap=x,mac=01:00:00:00:00:01");
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("mac"), std::string::npos);
}

}  // namespace
}  // namespace vireo
