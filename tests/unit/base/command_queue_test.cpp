#include "base/command_queue.h"

#include <poll.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

using Queue = CommandQueue<int, std::string>;

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

TEST(CommandQueue, CallBlocksUntilTheConsumerResponds) {
    auto q = Queue::create();
    ASSERT_TRUE(q) << q.error().message();
    auto& queue = **q;
    EXPECT_FALSE(readable(queue.fd(), 0));
    EXPECT_FALSE(queue.poll());

    std::optional<std::string> answer;
    std::thread caller([&] { answer = queue.call(21); });
    ASSERT_TRUE(readable(queue.fd(), 5000));
    auto command = queue.poll();
    ASSERT_TRUE(command);
    EXPECT_EQ(command->request, 21);
    // Nothing pending any more: the doorbell is quiet.
    EXPECT_FALSE(readable(queue.fd(), 0));
    command->respond(std::to_string(command->request * 2));
    caller.join();
    EXPECT_EQ(answer, "42");
}

TEST(CommandQueue, ManyProducersEachGetTheirOwnAnswer) {
    auto q = Queue::create();
    ASSERT_TRUE(q);
    auto& queue = **q;
    constexpr int kCallers = 8;
    constexpr int kCalls = 50;
    std::atomic<int> wrong{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t) {
        callers.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i) {
                int n = t * 1000 + i;
                if (queue.call(n) != std::to_string(n)) {
                    ++wrong;
                }
            }
        });
    }
    int answered = 0;
    while (answered < kCallers * kCalls) {
        ASSERT_TRUE(readable(queue.fd(), 5000)) << "after " << answered;
        while (auto command = queue.poll()) {
            command->respond(std::to_string(command->request));
            ++answered;
        }
    }
    for (auto& c : callers) {
        c.join();
    }
    EXPECT_EQ(wrong, 0);
    EXPECT_FALSE(readable(queue.fd(), 0));
}

TEST(CommandQueue, DroppedCommandAndCloseReleaseCallers) {
    auto q = Queue::create();
    ASSERT_TRUE(q);
    auto& queue = **q;
    std::optional<std::string> first = "unset";
    std::thread a([&] { first = queue.call(1); });
    ASSERT_TRUE(readable(queue.fd(), 5000));
    {
        auto command = queue.poll();
        ASSERT_TRUE(command);
        // Dropped without respond().
    }
    a.join();
    EXPECT_FALSE(first);

    std::optional<std::string> second = "unset";
    std::thread b([&] { second = queue.call(2); });
    ASSERT_TRUE(readable(queue.fd(), 5000));
    queue.close();
    b.join();
    EXPECT_FALSE(second);
    EXPECT_TRUE(queue.closed());
    EXPECT_FALSE(queue.call(3));  // refused at once
    EXPECT_FALSE(queue.poll());
}

TEST(CommandQueue, RespondingTwiceKeepsTheFirstAnswer) {
    auto q = Queue::create();
    ASSERT_TRUE(q);
    auto& queue = **q;
    std::optional<std::string> answer;
    std::thread caller([&] { answer = queue.call(5); });
    ASSERT_TRUE(readable(queue.fd(), 5000));
    auto command = queue.poll();
    ASSERT_TRUE(command);
    Queue::Command moved = std::move(*command);
    moved.respond("first");
    moved.respond("second");
    caller.join();
    EXPECT_EQ(answer, "first");
}

}  // namespace
}  // namespace vireo
