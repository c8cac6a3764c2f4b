// The CLI's --disk, --net and --balloon specs (app/device_spec.h).
#include "app/device_spec.h"

#include <utility>

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

TEST(DiskSpec, RateLimits) {
    auto d = parse_disk_spec("path=a,bw=10M,iops=500/100+2000");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->rate_limiter.bandwidth, (BucketConfig{10 * 1024 * 1024, 0, 1000}));
    EXPECT_EQ(d->rate_limiter.ops, (BucketConfig{500, 2000, 100}));
    d = parse_disk_spec("path=a,bw=4096/10+1G");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->rate_limiter.bandwidth, (BucketConfig{4096, 1024ULL * 1024 * 1024, 10}));
    EXPECT_FALSE(d->rate_limiter.ops);
    EXPECT_FALSE(parse_disk_spec("path=a")->rate_limiter.limits());
    for (const char* bad :
         {"path=a,bw=", "path=a,bw=0", "path=a,bw=10M/0", "path=a,bw=10M/", "path=a,bw=10M+",
          "path=a,iops=1.5", "path=a,iops=10K", "path=a,iops=-1", "path=a,bw=/100",
          "path=a,bw=1M/18446744073710", "path=a,iops=99999999999999999999", "path=a,bw=1M/100/2",
          "path=a,bw=1M+1M+1M"}) {
        auto e = parse_disk_spec(bad);
        ASSERT_FALSE(e) << bad;
        EXPECT_NE(e.error().message().find(
                      std::string(bad).find("iops") != std::string::npos ? "iops" : "bw"),
                  std::string::npos)
            << bad << " -> " << e.error().message();
    }
}

TEST(NetSpec, RateLimits) {
    auto n = parse_net_spec("tap=t,tx_bw=1M/100,rx_ops=1000,rx_bw=2M+8M");
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->tx_rate_limiter.bandwidth, (BucketConfig{1024 * 1024, 0, 100}));
    EXPECT_FALSE(n->tx_rate_limiter.ops);
    EXPECT_EQ(n->rx_rate_limiter.ops, (BucketConfig{1000, 0, 1000}));
    EXPECT_EQ(n->rx_rate_limiter.bandwidth, (BucketConfig{2 * 1024 * 1024, 8 * 1024 * 1024, 1000}));
    EXPECT_FALSE(parse_net_spec("tap=t,tx_bw=fast"));
    EXPECT_FALSE(parse_net_spec("tap=t,tx_iops=5"));
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

TEST(BalloonSpec, AmountOnlyTakesDefaults) {
    auto b = parse_balloon_spec("amount_mib=64");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, BalloonConfig{.amount_mib = 64});
    b = parse_balloon_spec("amount_mib=0");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->amount_mib, 0U);
}

TEST(BalloonSpec, AllKeys) {
    auto b = parse_balloon_spec(
        "stats_interval=5,amount_mib=128,free_page_reporting=on,deflate_on_oom=yes");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(*b, (BalloonConfig{.amount_mib = 128,
                                 .deflate_on_oom = true,
                                 .stats_polling_interval_s = 5,
                                 .free_page_reporting = true}));
    b = parse_balloon_spec("amount_mib=16777215,deflate_on_oom=off,stats_interval=4294967295");
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(b->amount_mib, kMaxBalloonMib);
    EXPECT_FALSE(b->deflate_on_oom);
    EXPECT_EQ(b->stats_polling_interval_s, 4294967295U);
}

TEST(BalloonSpec, Errors) {
    const std::pair<const char*, const char*> bad[] = {
        {"", "amount_mib=N is required"},
        {"deflate_on_oom=on", "amount_mib=N is required"},
        {"amount_mib=", "'' is not a whole number"},
        {"amount_mib=-1", "'-1' is not a whole number"},
        {"amount_mib=1.5", "'1.5' is not a whole number"},
        {"amount_mib=64M", "'64M' is not a whole number"},
        {"amount_mib=16777216", "amount_mib: 16777216 is more than 16777215"},
        {"amount_mib=99999999999999999999999", "is more than 16777215"},
        {"amount_mib=1,stats_interval=4294967296", "stats_interval: 4294967296 is more than"},
        {"amount_mib=1,stats_interval=x", "stats_interval: 'x' is not a whole number"},
        {"amount_mib=1,deflate_on_oom=maybe", "deflate_on_oom: 'maybe' is not on or off"},
        {"amount_mib=1,free_page_reporting=2", "free_page_reporting: '2' is not on or off"},
        {"amount_mib=1,free_page_hinting=on", "unknown key 'free_page_hinting'"},
        {"amount_mib=1,amount_mib=2", "'amount_mib' given twice"},
        {"amount_mib=1,", "trailing ','"},
        {"64", "'64' is not key=value"},
    };
    for (const auto& [spec, says] : bad) {
        auto b = parse_balloon_spec(spec);
        ASSERT_FALSE(b) << spec;
        EXPECT_EQ(b.error().message().rfind("--balloon", 0), 0U) << b.error().message();
        EXPECT_NE(b.error().message().find(says), std::string::npos)
            << spec << " -> " << b.error().message();
    }
}

TEST(BalloonSpec, NoMoreThanTheGuestsRam) {
    const BalloonConfig b{.amount_mib = 512};
    EXPECT_TRUE(check_balloon_fits(b, 512ULL << 20));
    EXPECT_TRUE(check_balloon_fits(BalloonConfig{}, 0));
    auto r = check_balloon_fits(b, (512ULL << 20) - 4096);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(),
              "--balloon: the balloon's target of 512 MiB is more than the guest's 511 MiB of RAM "
              "(--memory)");
}

}  // namespace
}  // namespace vireo
