#include "base/result.h"

#include <cerrno>
#include <memory>

#include <gtest/gtest.h>

namespace vireo {
namespace {

Result<int> half(int v) {
    if (v % 2 != 0) {
        return Error("odd");
    }
    return v / 2;
}

TEST(Result, ValueAndError) {
    auto a = half(4);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, 2);
    auto b = half(3);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().message(), "odd");
}

TEST(Result, MoveOnlyValues) {
    Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 7);
}

TEST(Result, VoidAndErrno) {
    Result<void> good = ok();
    EXPECT_TRUE(good.ok());
    Result<void> bad = Error::from_errno("open /nope", ENOENT);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().sys_errno(), ENOENT);
    EXPECT_EQ(bad.error().message(), "open /nope: No such file or directory");
    EXPECT_EQ(bad.error().wrap("kernel").message(),
              "kernel: open /nope: No such file or directory");
}

}  // namespace
}  // namespace vireo
