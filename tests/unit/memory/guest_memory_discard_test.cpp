// GuestMemory::discard: a balloon's pages go back to the host (RSS drops) and read as zeros,
// for anonymous and memfd backings; anything but whole pages inside one region is refused and
// changes nothing.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memory/guest_memory.h"

namespace vireo {
namespace {

GuestMemory make(std::initializer_list<MemoryRegionSpec> specs, MemoryOptions opts = {}) {
    auto m = GuestMemory::create(std::span(specs.begin(), specs.size()), opts);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
    return std::move(m).value();
}

// This process's resident anonymous + shared-memory bytes (RssAnon + RssShmem).
std::uint64_t rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string key;
    std::uint64_t total = 0;
    while (status >> key) {
        std::uint64_t kib = 0;
        if (key == "RssAnon:" || key == "RssShmem:") {
            status >> kib;
            total += kib * 1024;
        }
    }
    return total;
}

void fill(GuestMemory& mem, std::uint64_t at, std::uint64_t len, std::uint8_t v) {
    std::vector<std::uint8_t> bytes(len, v);
    ASSERT_TRUE(mem.write(GuestAddress{at}, bytes));
}

std::uint8_t byte_at(const GuestMemory& mem, std::uint64_t at) {
    return mem.read_obj<std::uint8_t>(GuestAddress{at}).value();
}

void discard_gives_pages_back(MemoryOptions opts) {
    constexpr std::uint64_t kSize = 64ULL << 20;
    GuestMemory mem = make({{GuestAddress(0), kSize}}, opts);
    fill(mem, 0, kSize, 0x5a);
    const std::uint64_t before = rss_bytes();
    auto released = mem.discard(GuestAddress{4096}, 48ULL << 20);
    ASSERT_TRUE(released) << released.error().message();
    EXPECT_EQ(*released, 48ULL << 20);
    const std::uint64_t after = rss_bytes();
    EXPECT_GE(before - std::min(before, after), 40ULL << 20) << before << " -> " << after;
    EXPECT_EQ(byte_at(mem, 0), 0x5a);
    EXPECT_EQ(byte_at(mem, 4096), 0);
    EXPECT_EQ(byte_at(mem, 4096 + (48ULL << 20) - 1), 0);
    EXPECT_EQ(byte_at(mem, 4096 + (48ULL << 20)), 0x5a);
    // The pages are the guest's again at its next write.
    fill(mem, 8192, 16, 0x11);
    EXPECT_EQ(byte_at(mem, 8192), 0x11);
}

TEST(GuestMemoryDiscard, AnonymousPagesLeaveTheRssAndReadZero) {
    discard_gives_pages_back({});
}

TEST(GuestMemoryDiscard, MemfdPagesArePunchedOut) {
    discard_gives_pages_back(MemoryOptions{.memfd = true});
}

TEST(GuestMemoryDiscard, RefusesAnythingButWholePagesInOneRegion) {
    GuestMemory mem = make({{GuestAddress(0), 1 << 20}, {GuestAddress(1 << 20), 1 << 20}});
    fill(mem, 0, 1 << 20, 0x77);
    fill(mem, 1 << 20, 1 << 20, 0x77);
    EXPECT_FALSE(mem.discard(GuestAddress{100}, 4096));                    // unaligned start
    EXPECT_FALSE(mem.discard(GuestAddress{4096}, 100));                    // partial page
    EXPECT_FALSE(mem.discard(GuestAddress{(1 << 20) - 4096}, 8192));       // spans two regions
    EXPECT_FALSE(mem.discard(GuestAddress{2 << 20}, 4096));                // past RAM
    EXPECT_FALSE(mem.discard(GuestAddress{0xfffffffffffff000ULL}, 8192));  // wraps
    EXPECT_EQ(byte_at(mem, 0), 0x77);
    EXPECT_EQ(byte_at(mem, (1 << 20) - 4096), 0x77);
    EXPECT_EQ(byte_at(mem, 1 << 20), 0x77);
    auto none = mem.discard(GuestAddress{0}, 0);
    ASSERT_TRUE(none);
    EXPECT_EQ(*none, 0U);
}

}  // namespace
}  // namespace vireo
