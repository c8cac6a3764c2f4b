// virtio-blk request parsing (virtio 1.2 §5.2.6) over chains of various shapes.
#include "devices/virtio/virtio_blk_request.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace vireo::virtio {
namespace {

constexpr std::uint64_t kMemSize = 0x100000;

class BlkRequestTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kMemSize}}};
        mem = std::make_unique<GuestMemory>(std::move(GuestMemory::create(spec).value()));
        request.data.reserve(16);
    }
    void header(std::uint64_t at, std::uint32_t type, std::uint64_t sector) {
        ASSERT_TRUE(mem->write_obj(GuestAddress{at}, type));
        ASSERT_TRUE(mem->write_obj(GuestAddress{at + 4}, std::uint32_t{0}));
        ASSERT_TRUE(mem->write_obj(GuestAddress{at + 8}, sector));
    }
    void add(std::uint64_t addr, std::uint32_t len, bool writable) {
        chain.buffers.push_back({GuestAddress{addr}, len, writable});
        (writable ? chain.writable_bytes : chain.readable_bytes) += len;
    }

    std::unique_ptr<GuestMemory> mem;
    DescriptorChain chain;
    BlkRequest request;
};

TEST_F(BlkRequestTest, ReadWithSeparateBuffers) {
    header(0x1000, kBlkTypeIn, 7);
    add(0x1000, 16, false);
    add(0x2000, 512, true);
    add(0x3000, 1024, true);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(request.type, kBlkTypeIn);
    EXPECT_EQ(request.sector, 7U);
    EXPECT_EQ(request.data_len, 1536U);
    ASSERT_EQ(request.data.size(), 2U);
    EXPECT_EQ(request.status.value, 0x4000U);
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusOk);
}

TEST_F(BlkRequestTest, WriteWithHeaderAndDataInOneBuffer) {
    header(0x1000, kBlkTypeOut, 1);
    add(0x1000, 16 + 512, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(request.data_len, 512U);
    ASSERT_EQ(request.data.size(), 1U);
    EXPECT_EQ(static_cast<std::uint8_t*>(request.data[0].iov_base),
              mem->slice(GuestAddress{0x1010}, 1).value().data());
}

TEST_F(BlkRequestTest, ReadDataAndStatusInOneBuffer) {
    header(0x1000, kBlkTypeIn, 0);
    add(0x1000, 16, false);
    add(0x2000, 513, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(request.data_len, 512U);
    EXPECT_EQ(request.status.value, 0x2000U + 512);
}

TEST_F(BlkRequestTest, HeaderSplitOverBuffers) {
    header(0x1000, kBlkTypeOut, 0x1122334455667788ULL);
    // Move the last 8 bytes of the header elsewhere.
    std::array<std::uint8_t, 8> tail{};
    ASSERT_TRUE(mem->read(GuestAddress{0x1008}, tail));
    ASSERT_TRUE(mem->write(GuestAddress{0x5000}, tail));
    add(0x1000, 8, false);
    add(0x5000, 8, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(request.sector, 0x1122334455667788ULL);
    EXPECT_EQ(request.data_len, 0U);
}

TEST_F(BlkRequestTest, NoStatusByteIsMalformed) {
    header(0x1000, kBlkTypeIn, 0);
    add(0x1000, 16, false);
    EXPECT_FALSE(parse_blk_request(*mem, chain, request));
}

TEST_F(BlkRequestTest, ShortHeaderIsMalformed) {
    add(0x1000, 15, false);
    add(0x4000, 1, true);
    EXPECT_FALSE(parse_blk_request(*mem, chain, request));
}

TEST_F(BlkRequestTest, OutOfRangeSectorsAreIoErrors) {
    header(0x1000, kBlkTypeIn, 99);
    add(0x1000, 16, false);
    add(0x2000, 1024, true);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusIoErr);
    request.sector = ~0ULL;  // sector + count would wrap
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusIoErr);
    request.sector = 98;
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusOk);
}

TEST_F(BlkRequestTest, PartialSectorIsAnIoError) {
    header(0x1000, kBlkTypeIn, 0);
    add(0x1000, 16, false);
    add(0x2000, 100, true);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusIoErr);
}

TEST_F(BlkRequestTest, WritesToReadOnlyDiskFail) {
    header(0x1000, kBlkTypeOut, 0);
    add(0x1000, 16 + 512, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(validate_blk_request(request, 100, true, 1024), kBlkStatusIoErr);
    request.type = kBlkTypeDiscard;
    EXPECT_EQ(validate_blk_request(request, 100, true, 1024), kBlkStatusIoErr);
    request.type = kBlkTypeFlush;
    EXPECT_EQ(validate_blk_request(request, 100, true, 1024), kBlkStatusOk);
}

TEST_F(BlkRequestTest, UnknownTypeIsUnsupported) {
    header(0x1000, 77, 0);
    add(0x1000, 16, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusUnsupported);
}

TEST_F(BlkRequestTest, DiscardSegment) {
    header(0x1000, kBlkTypeDiscard, 0);
    BlkDiscardSegment seg{8, 16, 0};
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x1010}, seg));
    add(0x1000, 32, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(request.segment.sector, 8U);
    EXPECT_EQ(request.segment.num_sectors, 16U);
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusOk);
    EXPECT_EQ(validate_blk_request(request, 20, false, 1024), kBlkStatusIoErr);  // past the end
    EXPECT_EQ(validate_blk_request(request, 100, false, 8), kBlkStatusIoErr);    // over the cap
    request.segment.flags = 1;  // unmap is only meaningful for write zeroes
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusUnsupported);
    request.type = kBlkTypeWriteZeroes;
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusOk);
}

TEST_F(BlkRequestTest, TwoDiscardSegmentsAreUnsupported) {
    header(0x1000, kBlkTypeDiscard, 0);
    add(0x1000, 48, false);
    add(0x4000, 1, true);
    ASSERT_TRUE(parse_blk_request(*mem, chain, request));
    EXPECT_EQ(validate_blk_request(request, 100, false, 1024), kBlkStatusUnsupported);
}

}  // namespace
}  // namespace vireo::virtio
