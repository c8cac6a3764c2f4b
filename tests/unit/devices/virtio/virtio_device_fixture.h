// The harness of the transport-less virtio device tests: rings in guest memory at fixed places,
// a kick eventfd per queue, the device thread running for real, a test interrupt that records what
// was raised; and a small disk image whose sectors hold their own numbers.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/event_fd.h"
#include "devices/virtio/virt_queue.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtio_spec.h"
#include "memory/guest_memory.h"

namespace vireo::virtio {
namespace fixture {

constexpr std::uint64_t kMemSize = 0x200000;
constexpr std::uint16_t kSize = 16;

struct TestInterrupt final : VirtioInterrupt {
    void signal_queue(std::uint16_t) override { ++queue_signals; }
    void signal_config() override { ++config_signals; }
    void set_needs_reset() override { needs_reset = true; }
    std::atomic<int> queue_signals{0};
    std::atomic<int> config_signals{0};
    std::atomic<bool> needs_reset{false};
};

// A driver's view of one queue: descriptor table, avail and used rings at fixed places.
struct TestRing {
    std::uint64_t desc, avail, used;
    std::uint16_t avail_idx = 0;
    std::uint16_t next_desc = 0;

    void configure(VirtQueue& q) const {
        q.config().size = kSize;
        q.config().desc_table = desc;
        q.config().avail_ring = avail;
        q.config().used_ring = used;
        q.config().ready = true;
    }
    // Adds a chain of (addr, len, writable) buffers and publishes it.
    void add(GuestMemory& mem,
             std::initializer_list<std::tuple<std::uint64_t, std::uint32_t, bool>> bufs) {
        const std::uint16_t head = next_desc;
        std::size_t i = 0;
        for (const auto& [addr, len, writable] : bufs) {
            const auto index = static_cast<std::uint16_t>((head + i) % kSize);
            const bool last = i + 1 == bufs.size();
            Descriptor d{
                addr, len,
                static_cast<std::uint16_t>((writable ? kDescWrite : 0) | (last ? 0 : kDescNext)),
                static_cast<std::uint16_t>((index + 1) % kSize)};
            ASSERT_TRUE(mem.write_obj(GuestAddress{desc + 16ULL * index}, d));
            ++i;
        }
        next_desc = static_cast<std::uint16_t>((head + bufs.size()) % kSize);
        ASSERT_TRUE(mem.write_obj(GuestAddress{avail + 4 + 2ULL * (avail_idx % kSize)}, head));
        ++avail_idx;
        ASSERT_TRUE(mem.write_obj(GuestAddress{avail + 2}, avail_idx));
    }
    std::uint16_t used_idx(const GuestMemory& mem) const {
        return mem.read_obj<std::uint16_t>(GuestAddress{used + 2}).value();
    }
    std::uint32_t used_len(const GuestMemory& mem, std::uint16_t i) const {
        return mem.read_obj<std::uint32_t>(GuestAddress{used + 4 + 8ULL * (i % kSize) + 4}).value();
    }
    // Waits (bounded) until the device has returned `n` chains.
    bool wait_used(const GuestMemory& mem, std::uint16_t n) const {
        for (int i = 0; i < 2000; ++i) {
            if (used_idx(mem) == n) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return false;
    }
};

class VirtioDeviceTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kMemSize}}};
        mem = std::make_unique<GuestMemory>(std::move(GuestMemory::create(spec).value()));
        for (int i = 0; i < 2; ++i) {
            queues.emplace_back(kMaxQueueSize);
            kicks.push_back(EventFd::create().value());
            rings[i].configure(queues.back());
        }
    }
    Result<void> activate(VirtioDevice& d, std::size_t nqueues, std::uint64_t features = 0) {
        return d.activate(*mem, features | feature(kFeatureVersion1),
                          std::span(queues).first(nqueues), std::span(kicks).first(nqueues), irq);
    }

    std::unique_ptr<GuestMemory> mem;
    std::vector<VirtQueue> queues;
    std::vector<EventFd> kicks;
    TestRing rings[2] = {{0x1000, 0x2000, 0x3000}, {0x4000, 0x5000, 0x6000}};
    TestInterrupt irq;
};

class VirtioBlkTest : public VirtioDeviceTest {
protected:
    void SetUp() override {
        VirtioDeviceTest::SetUp();
        char tmpl[] = "/tmp/vireo-blk-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        path = tmpl;
        std::vector<std::uint8_t> image(64 * 1024);
        for (std::size_t i = 0; i < image.size(); ++i) {
            image[i] = static_cast<std::uint8_t>(i / 512);  // each sector holds its number
        }
        ASSERT_EQ(::write(fd, image.data(), image.size()), static_cast<ssize_t>(image.size()));
        ::close(fd);
    }
    void TearDown() override { ::unlink(path.c_str()); }
    std::unique_ptr<VirtioBlk> open(bool read_only, std::uint16_t nqueues = 1) {
        auto f = BlockFile::open(path, {.read_only = read_only});
        EXPECT_TRUE(f) << f.error().message();
        auto d = VirtioBlk::create(std::move(f.value()), "serial-1", "vda", nqueues);
        EXPECT_TRUE(d);
        return std::move(d.value());
    }
    void header(std::uint64_t at, std::uint32_t type, std::uint64_t sector) {
        ASSERT_TRUE(mem->write_obj(GuestAddress{at}, type));
        ASSERT_TRUE(mem->write_obj(GuestAddress{at + 4}, std::uint32_t{0}));
        ASSERT_TRUE(mem->write_obj(GuestAddress{at + 8}, sector));
    }
    std::uint8_t status(std::uint64_t at) {
        return mem->read_obj<std::uint8_t>(GuestAddress{at}).value();
    }
    std::string path;
};

}  // namespace fixture
using namespace fixture;
}  // namespace vireo::virtio
