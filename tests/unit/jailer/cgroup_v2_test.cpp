#include "jailer/cgroup_v2.h"

#include <gtest/gtest.h>

namespace vireo::jailer {
namespace {

TEST(CgroupV2, FindsTheUnifiedMount) {
    const char* hybrid =
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
    auto m = CgroupV2::find_mount(hybrid);
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, "/sys/fs/cgroup/unified");
    EXPECT_EQ(*CgroupV2::find_mount("none /a\\040b cgroup2 rw 0 0\n"), "/a b");
    auto none = CgroupV2::find_mount("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("cgroup2"), std::string::npos);
}

TEST(CgroupV2, ControllerOfFile) {
    EXPECT_EQ(CgroupV2::controller_of("memory.max"), "memory");
    EXPECT_EQ(CgroupV2::controller_of("cpu.max"), "cpu");
    EXPECT_EQ(CgroupV2::controller_of("hugetlb.2MB.max"), "hugetlb");
    EXPECT_EQ(CgroupV2::controller_of("cgroup.max.descendants"), "");
}

}  // namespace
}  // namespace vireo::jailer
