#include "api/api_guard.h"

#include <new>
#include <stdexcept>
#include <system_error>

#include <gtest/gtest.h>

namespace vireo {
namespace {

std::string fault(const ApiResponse& r) {
    return std::get<Fault>(r.body).fault_message;
}

TEST(ApiGuard, AnAnswerPassesThrough) {
    EXPECT_EQ(answer_without_throwing("x", [] { return ApiResponse::no_content(); }).status, 204);
    EXPECT_EQ(answer_without_throwing("x", [] { return ApiResponse::bad_request("no"); }),
              ApiResponse::bad_request("no"));
}

TEST(ApiGuard, BadAllocIs400) {
    const ApiResponse r =
        answer_without_throwing("PUT /x", []() -> ApiResponse { throw std::bad_alloc(); });
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault(r).find("PUT /x: out of memory"), std::string::npos) << fault(r);
}

TEST(ApiGuard, OtherExceptionsAre500) {
    const ApiResponse r = answer_without_throwing("PUT /x", []() -> ApiResponse {
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "thread");
    });
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(fault(r).find("internal error: thread"), std::string::npos) << fault(r);
    const ApiResponse u = answer_without_throwing("y", []() -> ApiResponse { throw 42; });
    EXPECT_EQ(u.status, 500);
}

}  // namespace
}  // namespace vireo
