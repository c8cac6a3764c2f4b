// Split virtqueue parsing against hand-built rings, well-formed and malformed (DESIGN.md §3).
#include "devices/virtio/virt_queue.h"

#include <gtest/gtest.h>

#include <array>

#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {
namespace {

constexpr std::uint64_t kDesc = 0x1000;
constexpr std::uint64_t kAvail = 0x2000;
constexpr std::uint64_t kUsed = 0x3000;
constexpr std::uint64_t kData = 0x10000;
constexpr std::uint64_t kMemSize = 0x100000;
constexpr std::uint16_t kSize = 8;

class VirtQueueTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kMemSize}}};
        auto m = GuestMemory::create(spec);
        ASSERT_TRUE(m);
        mem = std::make_unique<GuestMemory>(std::move(m.value()));
        auto& c = q.config();
        c.size = kSize;
        c.desc_table = kDesc;
        c.avail_ring = kAvail;
        c.used_ring = kUsed;
        c.ready = true;
        chain.buffers.reserve(kSize);
    }
    void activate(bool event_idx = false, bool indirect = true) {
        ASSERT_TRUE(q.activate(*mem, event_idx, indirect));
    }
    void desc(std::uint64_t table, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
              std::uint16_t flags, std::uint16_t next = 0) {
        Descriptor d{addr, len, flags, next};
        ASSERT_TRUE(mem->write_obj(GuestAddress{table + 16ULL * i}, d));
    }
    void publish(std::uint16_t head) {
        ASSERT_TRUE(mem->write_obj(GuestAddress{kAvail + 4 + 2ULL * (avail_idx % kSize)}, head));
        ++avail_idx;
        ASSERT_TRUE(mem->write_obj(GuestAddress{kAvail + 2}, avail_idx));
    }
    std::uint16_t used_idx() {
        return mem->read_obj<std::uint16_t>(GuestAddress{kUsed + 2}).value();
    }
    Result<bool> pop() { return q.pop(*mem, chain); }

    std::unique_ptr<GuestMemory> mem;
    VirtQueue q{kMaxQueueSize};
    DescriptorChain chain;
    std::uint16_t avail_idx = 0;
};

TEST_F(VirtQueueTest, ResetReportsMaximumSize) {
    VirtQueue fresh(64);
    EXPECT_EQ(fresh.config().size, 64);
    EXPECT_EQ(fresh.config().msix_vector, kNoVector);
    EXPECT_FALSE(fresh.config().ready);
}

TEST_F(VirtQueueTest, ActivateChecksSizeAlignmentAndPlacement) {
    q.config().size = 6;
    EXPECT_FALSE(q.activate(*mem, false, false));
    q.config().size = 512;  // above the maximum
    EXPECT_FALSE(q.activate(*mem, false, false));
    q.config().size = kSize;
    q.config().avail_ring = kAvail + 1;
    EXPECT_FALSE(q.activate(*mem, false, false));
    q.config().avail_ring = kAvail;
    q.config().used_ring = kMemSize - 8;  // runs past the end of RAM
    EXPECT_FALSE(q.activate(*mem, false, false));
    q.config().used_ring = kUsed;
    EXPECT_TRUE(q.activate(*mem, false, false));
}

TEST_F(VirtQueueTest, EmptyQueuePopsNothing) {
    activate();
    auto r = pop();
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
}

TEST_F(VirtQueueTest, PopsAChainReadableThenWritable) {
    activate();
    desc(kDesc, 0, kData, 16, kDescNext, 3);
    desc(kDesc, 3, kData + 0x100, 512, kDescNext | kDescWrite, 5);
    desc(kDesc, 5, kData + 0x400, 1, kDescWrite);
    publish(0);
    auto r = pop();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(*r);
    EXPECT_EQ(chain.head, 0);
    ASSERT_EQ(chain.buffers.size(), 3U);
    EXPECT_FALSE(chain.buffers[0].writable);
    EXPECT_TRUE(chain.buffers[1].writable);
    EXPECT_EQ(chain.buffers[2].addr.value, kData + 0x400);
    EXPECT_EQ(chain.readable_bytes, 16U);
    EXPECT_EQ(chain.writable_bytes, 513U);
    ASSERT_TRUE(q.add_used(*mem, chain.head, 513));
    EXPECT_EQ(used_idx(), 1);
    auto elem = mem->read_obj<std::array<std::uint32_t, 2>>(GuestAddress{kUsed + 4}).value();
    EXPECT_EQ(elem[0], 0U);
    EXPECT_EQ(elem[1], 513U);
}

TEST_F(VirtQueueTest, IndicesWrapAround) {
    activate();
    desc(kDesc, 1, kData, 8, 0);
    for (int i = 0; i < 3 * kSize; ++i) {
        publish(1);
        auto r = pop();
        ASSERT_TRUE(r && *r);
        ASSERT_TRUE(q.add_used(*mem, chain.head, 0));
    }
    EXPECT_EQ(used_idx(), 3 * kSize);
}

TEST_F(VirtQueueTest, RejectsHeadOutOfRange) {
    activate();
    publish(kSize);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, RejectsNextOutOfRange) {
    activate();
    desc(kDesc, 0, kData, 8, kDescNext, kSize + 3);
    publish(0);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, RejectsBufferOutsideGuestMemory) {
    activate();
    desc(kDesc, 0, kMemSize - 4, 8, 0);
    publish(0);
    auto r = pop();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("outside guest RAM"), std::string::npos);
}

TEST_F(VirtQueueTest, RejectsAddressThatWraps) {
    activate();
    desc(kDesc, 0, ~0ULL - 2, 16, 0);
    publish(0);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, DetectsLoops) {
    activate();
    desc(kDesc, 0, kData, 8, kDescNext, 1);
    desc(kDesc, 1, kData, 8, kDescNext, 0);
    publish(0);
    auto r = pop();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("longer than the queue"), std::string::npos);
}

TEST_F(VirtQueueTest, RejectsSelfLoop) {
    activate();
    desc(kDesc, 2, kData, 8, kDescNext, 2);
    publish(2);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, ChainAsLongAsTheQueueIsAccepted) {
    activate();
    for (std::uint16_t i = 0; i < kSize; ++i) {
        desc(kDesc, i, kData + 16ULL * i, 16, i + 1 < kSize ? kDescNext : 0,
             static_cast<std::uint16_t>(i + 1));
    }
    publish(0);
    auto r = pop();
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.buffers.size(), kSize);
}

TEST_F(VirtQueueTest, ZeroLengthBuffersAreHarmless) {
    activate();
    desc(kDesc, 0, kData, 0, kDescNext, 1);
    desc(kDesc, 1, 0, 0, kDescWrite);
    publish(0);
    auto r = pop();
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(chain.readable_bytes + chain.writable_bytes, 0U);
}

TEST_F(VirtQueueTest, RejectsReadableAfterWritable) {
    activate();
    desc(kDesc, 0, kData, 8, kDescNext | kDescWrite, 1);
    desc(kDesc, 1, kData, 8, 0);
    publish(0);
    auto r = pop();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("after a device-writable"), std::string::npos);
}

TEST_F(VirtQueueTest, RejectsMoreAvailableThanQueueSize) {
    activate();
    ASSERT_TRUE(mem->write_obj(GuestAddress{kAvail + 2}, static_cast<std::uint16_t>(kSize + 1)));
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, IndirectTable) {
    activate();
    constexpr std::uint64_t kTable = 0x8000;
    desc(kTable, 0, kData, 16, kDescNext, 2);
    desc(kTable, 2, kData + 0x200, 64, kDescWrite);
    desc(kDesc, 4, kTable, 3 * 16, kDescIndirect);
    publish(4);
    auto r = pop();
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE(*r);
    EXPECT_EQ(chain.head, 4);
    ASSERT_EQ(chain.buffers.size(), 2U);
    EXPECT_EQ(chain.writable_bytes, 64U);
}

TEST_F(VirtQueueTest, IndirectRejectedWithoutFeature) {
    activate(false, false);
    desc(kDesc, 0, 0x8000, 16, kDescIndirect);
    publish(0);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, MalformedIndirectTables) {
    activate();
    constexpr std::uint64_t kTable = 0x8000;
    struct Case {
        std::uint64_t addr;
        std::uint32_t len;
        std::uint16_t flags;
    };
    const Case cases[] = {
        {kTable, 0, kDescIndirect},                 // empty
        {kTable, 20, kDescIndirect},                // not a multiple of 16
        {kTable, 16 * (kSize + 1), kDescIndirect},  // longer than the queue
        {kMemSize - 16, 32, kDescIndirect},         // outside RAM
        {kTable, 16, kDescIndirect | kDescNext},    // INDIRECT with NEXT
    };
    desc(kTable, 0, kData, 8, 0);
    for (const auto& c : cases) {
        VirtQueue fresh(kMaxQueueSize);
        fresh.config() = q.config();
        ASSERT_TRUE(fresh.activate(*mem, false, true));
        desc(kDesc, 0, c.addr, c.len, c.flags);
        avail_idx = 0;
        publish(0);
        EXPECT_FALSE(fresh.pop(*mem, chain)) << "len " << c.len << " flags " << c.flags;
    }
}

TEST_F(VirtQueueTest, NestedIndirectRejected) {
    activate();
    constexpr std::uint64_t kTable = 0x8000;
    desc(kTable, 0, 0x9000, 16, kDescIndirect);
    desc(kDesc, 0, kTable, 16, kDescIndirect);
    publish(0);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, IndirectLoopDetected) {
    activate();
    constexpr std::uint64_t kTable = 0x8000;
    desc(kTable, 0, kData, 8, kDescNext, 1);
    desc(kTable, 1, kData, 8, kDescNext, 0);
    desc(kDesc, 0, kTable, 32, kDescIndirect);
    publish(0);
    EXPECT_FALSE(pop());
}

TEST_F(VirtQueueTest, UsedIdOutOfRangeRejected) {
    activate();
    EXPECT_FALSE(q.add_used(*mem, kSize, 0));
}

TEST_F(VirtQueueTest, NotificationWithoutEventIdxFollowsFlags) {
    activate(false);
    desc(kDesc, 0, kData, 8, 0);
    publish(0);
    ASSERT_TRUE(pop());
    ASSERT_TRUE(q.add_used(*mem, 0, 0));
    EXPECT_TRUE(q.needs_notification(*mem));
    ASSERT_TRUE(mem->write_obj(GuestAddress{kAvail}, kAvailNoInterrupt));
    EXPECT_FALSE(q.needs_notification(*mem));
}

TEST_F(VirtQueueTest, EventIdxNotifiesWhenUsedEventIsCrossed) {
    activate(true);
    desc(kDesc, 0, kData, 8, 0);
    const GuestAddress used_event{kAvail + 4 + 2 * kSize};
    // First notification is always sent.
    publish(0);
    ASSERT_TRUE(pop());
    ASSERT_TRUE(q.add_used(*mem, 0, 0));  // used idx 1
    EXPECT_TRUE(q.needs_notification(*mem));
    // The driver asks to hear about used idx 3 (used_event = 2: notify when idx passes 2).
    ASSERT_TRUE(mem->write_obj(used_event, std::uint16_t{2}));
    publish(0);
    ASSERT_TRUE(pop());
    ASSERT_TRUE(q.add_used(*mem, 0, 0));  // used idx 2
    EXPECT_FALSE(q.needs_notification(*mem));
    publish(0);
    ASSERT_TRUE(pop());
    ASSERT_TRUE(q.add_used(*mem, 0, 0));  // used idx 3: crosses 2
    EXPECT_TRUE(q.needs_notification(*mem));
}

TEST_F(VirtQueueTest, EnableNotificationWritesAvailEvent) {
    activate(true);
    desc(kDesc, 0, kData, 8, 0);
    publish(0);
    ASSERT_TRUE(pop());
    EXPECT_FALSE(q.enable_notification(*mem));
    EXPECT_EQ(mem->read_obj<std::uint16_t>(GuestAddress{kUsed + 4 + 8 * kSize}).value(), 1);
    publish(0);
    EXPECT_TRUE(q.enable_notification(*mem));  // a buffer arrived: pop again
}

TEST_F(VirtQueueTest, StateRoundTrips) {
    activate();
    desc(kDesc, 0, kData, 8, 0);
    publish(0);
    ASSERT_TRUE(pop());
    ASSERT_TRUE(q.add_used(*mem, 0, 0));
    VirtQueue copy(kMaxQueueSize);
    copy.restore(q.state());
    EXPECT_EQ(copy.state().next_avail, 1);
    EXPECT_EQ(copy.state().next_used, 1);
    EXPECT_EQ(copy.config().desc_table, kDesc);
}

// The device works from the configuration it validated at activate(): a driver value written
// afterwards (size 0, a 1024-entry ring, rings elsewhere) moves no bound. Before the fix the
// rings were read through the live driver fields: size 0 divided by zero.
TEST_F(VirtQueueTest, RingAccessUsesTheValidatedCopyNotTheDriversFields) {
    activate();
    EXPECT_EQ(q.size(), kSize);
    q.config().size = 0;
    q.config().desc_table = kMemSize - 16;
    q.config().used_ring = kMemSize - 4;
    desc(kDesc, 0, kData, 8, 0);
    publish(0);
    ASSERT_TRUE(pop()) << "the chain is read from the validated table";
    EXPECT_EQ(chain.head, 0);
    ASSERT_TRUE(q.add_used(*mem, 0, 0));
    EXPECT_EQ(used_idx(), 1) << "the used entry goes to the validated ring";
    q.config().size = 1024;
    // More than the validated size made available is an error, not a longer walk.
    avail_idx = static_cast<std::uint16_t>(avail_idx + kSize + 1);
    ASSERT_TRUE(mem->write_obj(GuestAddress{kAvail + 2}, avail_idx));
    EXPECT_FALSE(pop());
    EXPECT_EQ(q.size(), kSize);
    EXPECT_EQ(q.state().config.size, kSize) << "a snapshot saves what the device used";
}

TEST_F(VirtQueueTest, InactiveQueueRefusesRingOperations) {
    q.config().size = 0;
    EXPECT_FALSE(pop());
    EXPECT_FALSE(q.add_used(*mem, 0, 0));
    EXPECT_FALSE(q.needs_notification(*mem));
    EXPECT_FALSE(q.enable_notification(*mem));
    q.undo_pop();
    EXPECT_EQ(q.state().next_avail, 0);
    EXPECT_EQ(q.size(), 0);
}

}  // namespace
}  // namespace vireo::virtio
