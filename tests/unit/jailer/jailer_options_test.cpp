#include "jailer/jailer_options.h"

#include <gtest/gtest.h>

namespace vireo::jailer {
namespace {

JailerArgs good_args() {
    JailerArgs a;
    a.id = "551e7604-e35c-42b3-b825-416853441234";
    a.exec_file = "/usr/bin/vireo";
    a.uid = "123";
    a.gid = "100";
    return a;
}

TEST(JailerOptions, InstanceIdRule) {
    EXPECT_TRUE(validate_instance_id("a"));
    EXPECT_TRUE(validate_instance_id("vm-01-AbC"));
    EXPECT_TRUE(validate_instance_id(std::string(64, 'x')));
    EXPECT_FALSE(validate_instance_id(""));
    EXPECT_FALSE(validate_instance_id(std::string(65, 'x')));
    for (const char* bad : {"a/b", "..", "a.b", "a_b", "a b", "é"}) {
        auto r = validate_instance_id(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message().find("--id"), std::string::npos);
    }
}

TEST(JailerOptions, PathsFromIdAndExecName) {
    auto a = good_args();
    a.chroot_base_dir = "/srv/jailer/";
    auto c = parse_jailer_args(a);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->exec_name, "vireo");
    EXPECT_EQ(c->instance_dir(), "/srv/jailer/vireo/551e7604-e35c-42b3-b825-416853441234");
    EXPECT_EQ(c->root_dir(), c->instance_dir() + "/root");
    EXPECT_EQ(c->uid, 123u);
    EXPECT_EQ(c->gid, 100u);
    EXPECT_EQ(c->parent_cgroup, "vireo");
    EXPECT_FALSE(c->place_in_cgroup);
    EXPECT_TRUE(c->netns_path.empty());
}

TEST(JailerOptions, BadNumbersAndPaths) {
    for (const char* uid : {"", "-1", "abc", "12x", "4294967295", "99999999999"}) {
        auto a = good_args();
        a.uid = uid;
        auto c = parse_jailer_args(a);
        ASSERT_FALSE(c) << uid;
        EXPECT_NE(c.error().message().find("--uid"), std::string::npos);
    }
    for (const char* base : {"relative", "/", ""}) {
        auto a = good_args();
        a.chroot_base_dir = base;
        EXPECT_FALSE(parse_jailer_args(a)) << base;
    }
    for (const char* exec : {"", "/usr/bin/", "/usr/bin/.."}) {
        auto a = good_args();
        a.exec_file = exec;
        EXPECT_FALSE(parse_jailer_args(a)) << exec;
    }
}

TEST(JailerOptions, Netns) {
    auto a = good_args();
    a.netns = "blue";
    EXPECT_EQ(parse_jailer_args(a)->netns_path, "/var/run/netns/blue");
    a.netns = "/proc/1/ns/net";
    EXPECT_EQ(parse_jailer_args(a)->netns_path, "/proc/1/ns/net");
}

TEST(JailerOptions, Cgroups) {
    auto s = parse_cgroup_setting("cpu.max=50000 100000");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->file, "cpu.max");
    EXPECT_EQ(s->value, "50000 100000");
    s = parse_cgroup_setting("io.max=8:0 rbps=1048576");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value, "8:0 rbps=1048576");
    for (const char* bad : {"memory.max", "=1", "memory.max=", "../x.max=1", "max=1", ".x=1",
                            "a/b.c=1", "memory.max=1\n2"}) {
        EXPECT_FALSE(parse_cgroup_setting(bad)) << bad;
    }

    auto a = good_args();
    a.cgroups = {"memory.max=268435456", "cpu.max=max"};
    auto c = parse_jailer_args(a);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->place_in_cgroup);
    EXPECT_EQ(c->cgroups.size(), 2u);

    a.parent_cgroup = "all-vms/external/";
    EXPECT_EQ(parse_jailer_args(a)->parent_cgroup, "all-vms/external");
    for (const char* bad : {"/abs", "a/../b", "./a", "a//b", ".."}) {
        a.parent_cgroup = bad;
        auto r = parse_jailer_args(a);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message().find("--parent-cgroup"), std::string::npos);
    }
}

TEST(JailerOptions, CgroupVersionOneIsRefusedByName) {
    auto a = good_args();
    a.cgroup_version = "1";
    auto c = parse_jailer_args(a);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("--cgroup-version 1"), std::string::npos);
    a.cgroup_version = "3";
    EXPECT_FALSE(parse_jailer_args(a));
}

TEST(JailerOptions, ResourceLimits) {
    auto l = parse_resource_limit("fsize=250000000");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->resource, RLIMIT_FSIZE);
    EXPECT_EQ(l->value, 250000000u);
    l = parse_resource_limit("no-file=1024");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->resource, RLIMIT_NOFILE);
    for (const char* bad : {"fsize", "fsize=", "fsize=-1", "fsize=1k", "nofile=1", "cpu=1"}) {
        EXPECT_FALSE(parse_resource_limit(bad)) << bad;
    }
}

}  // namespace
}  // namespace vireo::jailer
