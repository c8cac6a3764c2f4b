#include "memory/guest_memory.h"

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

GuestMemory make(std::initializer_list<MemoryRegionSpec> specs, MemoryOptions opts = {}) {
    auto m = GuestMemory::create(std::span(specs.begin(), specs.size()), opts);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
    return std::move(m).value();
}

TEST(GuestMemory, ReadBackWhatWasWritten) {
    auto mem = make({{GuestAddress(0), 64 * 1024}, {GuestAddress(1 << 20), 64 * 1024}});
    ASSERT_TRUE(mem.write_obj(GuestAddress(0x100), std::uint64_t{0x1122334455667788}).ok());
    ASSERT_TRUE(mem.write_obj(GuestAddress((1 << 20) + 8), std::uint32_t{0xdeadbeef}).ok());
    EXPECT_EQ(*mem.read_obj<std::uint64_t>(GuestAddress(0x100)), 0x1122334455667788U);
    EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress((1 << 20) + 8)), 0xdeadbeefU);
    EXPECT_EQ(mem.total_size(), 128U * 1024);
}

TEST(GuestMemory, RejectsAccessesOutsideRam) {
    auto mem = make({{GuestAddress(0), 64 * 1024}, {GuestAddress(0x20000), 64 * 1024}});
    std::array<std::uint8_t, 16> buf{};
    // Straddles the end of the first region into the gap.
    EXPECT_FALSE(mem.read(GuestAddress(0xfff8), buf).ok());
    // Entirely in the hole between regions.
    EXPECT_FALSE(mem.write(GuestAddress(0x10000), buf).ok());
    // Past the end of RAM.
    EXPECT_FALSE(mem.read(GuestAddress(0x30000), buf).ok());
    // Address + length wraps past 2^64: must not be mistaken for a small address.
    EXPECT_FALSE(mem.read(GuestAddress(~0ULL - 4), buf).ok());
    // The last bytes of a region are fine.
    EXPECT_TRUE(mem.read(GuestAddress(0xfff0), buf).ok());
    EXPECT_TRUE(mem.contains_range(GuestAddress(0x20000), 64 * 1024));
    EXPECT_FALSE(mem.contains_range(GuestAddress(0x20000), 64 * 1024 + 1));
}

TEST(GuestMemory, FailedWriteChangesNothing) {
    auto mem = make({{GuestAddress(0), 4096}});
    std::array<std::uint8_t, 8> ones;
    ones.fill(0xff);
    EXPECT_FALSE(mem.write(GuestAddress(4092), ones).ok());
    EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress(4092)), 0U);
}

TEST(GuestMemory, RejectsBadLayouts) {
    const MemoryRegionSpec unaligned[] = {{GuestAddress(0x800), 4096}};
    EXPECT_FALSE(GuestMemory::create(unaligned).ok());
    const MemoryRegionSpec empty[] = {{GuestAddress(0), 0}};
    EXPECT_FALSE(GuestMemory::create(empty).ok());
    const MemoryRegionSpec overlap[] = {{GuestAddress(0), 8192}, {GuestAddress(4096), 4096}};
    EXPECT_FALSE(GuestMemory::create(overlap).ok());
    const MemoryRegionSpec wraps[] = {{GuestAddress(~0ULL & ~0xfffULL), 8192}};
    EXPECT_FALSE(GuestMemory::create(wraps).ok());
    EXPECT_FALSE(GuestMemory::create(std::span<const MemoryRegionSpec>()).ok());
}

TEST(GuestMemory, HugetlbWithoutEnoughFreePagesSaysHowManyAreMissing) {
    // One page more than this host has free: refused before anything is mapped, whatever the
    // host has reserved (the nested scenario config-fields boots a guest on real huge pages).
    const std::uint64_t have = free_huge_pages_2m();
    const std::uint64_t size = (have + 1) * (2ULL << 20);
    const MemoryRegionSpec spec{GuestAddress(0), size};
    auto m = GuestMemory::create(std::span(&spec, 1), MemoryOptions{.hugetlb = true});
    ASSERT_FALSE(m);
    const std::string msg = m.error().message();
    EXPECT_NE(msg.find("huge pages \"2M\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("need " + std::to_string(have + 1) + " huge pages of 2 MiB"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("has " + std::to_string(have) + " free"), std::string::npos) << msg;
}

TEST(GuestMemory, HugetlbNeedsWholeHugePages) {
    const MemoryRegionSpec spec{GuestAddress(0), 3ULL << 20};
    auto m = GuestMemory::create(std::span(&spec, 1), MemoryOptions{.hugetlb = true});
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("multiple of 2 MiB"), std::string::npos)
        << m.error().message();
}

TEST(GuestMemory, MemfdBackingIsSharedWithTheFd) {
    auto mem = make({{GuestAddress(0), 4096}, {GuestAddress(0x10000), 4096}},
                    MemoryOptions{.memfd = true});
    ASSERT_GE(mem.fd(), 0);
    ASSERT_TRUE(mem.write_obj(GuestAddress(0x10000), std::uint32_t{0xcafef00d}).ok());
    // The second region starts at offset 4096 of the memfd.
    std::uint32_t v = 0;
    ASSERT_EQ(::pread(mem.fd(), &v, sizeof(v), 4096), static_cast<ssize_t>(sizeof(v)));
    EXPECT_EQ(v, 0xcafef00dU);
    EXPECT_EQ(mem.regions()[1].fd_offset, 4096U);
}

TEST(GuestMemory, MoveKeepsMappings) {
    auto a = make({{GuestAddress(0), 4096}});
    ASSERT_TRUE(a.write_obj(GuestAddress(0), std::uint8_t{42}).ok());
    GuestMemory b = std::move(a);
    EXPECT_EQ(*b.read_obj<std::uint8_t>(GuestAddress(0)), 42);
    EXPECT_TRUE(a.regions().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

}  // namespace
}  // namespace vireo

namespace vireo {
namespace {

TEST(GuestMemory, MappingsAreHugePageAligned) {
    // Guest-physical and host-virtual addresses must agree modulo 2 MiB for KVM to map huge pages.
    auto mem = make({{GuestAddress(0), 6ULL << 20}, {GuestAddress(1ULL << 32), 4ULL << 20}});
    for (const auto& r : mem.regions()) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.host) % (2ULL << 20), 0U);
    }
    auto fd_mem = make({{GuestAddress(0), 4ULL << 20}}, MemoryOptions{.memfd = true});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(fd_mem.regions()[0].host) % (2ULL << 20), 0U);
}

struct Heard final : HostWriteObserver {
    void host_wrote(GuestAddress gpa, std::uint64_t len) override {
        writes.emplace_back(gpa.value, len);
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> writes;
};

TEST(GuestMemory, WriteObserverHearsTheVmmsWrites) {
    auto mem = make({{GuestAddress(0), 1ULL << 20}, {GuestAddress(1ULL << 32), 1ULL << 20}});
    Heard heard;
    const std::array<std::uint8_t, 4> bytes{1, 2, 3, 4};
    ASSERT_TRUE(mem.write(GuestAddress(0x1000), bytes).ok());
    EXPECT_TRUE(heard.writes.empty());  // nobody listens yet
    mem.set_write_observer(&heard);
    ASSERT_TRUE(mem.write(GuestAddress(0x2000), bytes).ok());
    EXPECT_FALSE(mem.write(GuestAddress(0x100000 - 2), bytes).ok());  // refused: not heard
    // A host pointer from a slice names its guest address; the range stops at its region's end.
    auto s = mem.slice(GuestAddress((1ULL << 32) + 0xff000), 0x1000);
    ASSERT_TRUE(s.ok());
    mem.note_write_at(s->data() + 0x10, 0x100000);
    std::uint8_t outside = 0;
    mem.note_write_at(&outside, 1);           // not guest RAM: ignored
    mem.note_write(GuestAddress(0x3000), 0);  // nothing written: not heard
    using W = std::pair<std::uint64_t, std::uint64_t>;
    EXPECT_EQ(heard.writes, (std::vector<W>{{0x2000, 4}, {(1ULL << 32) + 0xff010, 0xff0}}));
    // A moved-from memory keeps no observer; the new owner has it.
    GuestMemory moved = std::move(mem);
    EXPECT_TRUE(moved.has_write_observer());
    EXPECT_FALSE(mem.has_write_observer());  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace vireo
