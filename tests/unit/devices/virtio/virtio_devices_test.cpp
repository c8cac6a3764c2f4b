// virtio devices end to end without a transport: rings in guest memory, a kick eventfd per
// queue, the device thread running for real, a test interrupt that records what was raised.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_rng.h"
#include "devices/virtio/virtio_spec.h"
#include "virtio_device_fixture.h"

namespace vireo::virtio {
namespace {

TEST_F(VirtioDeviceTest, RngFillsBuffersAndCapsRequests) {
    VirtioRng rng;
    ASSERT_TRUE(activate(rng, 1));
    rings[0].add(*mem, {{0x10000, 64, true}});
    rings[0].add(*mem, {{0x20000, 0x20000, true}});  // 128 KiB: more than the cap
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    EXPECT_EQ(rings[0].used_len(*mem, 0), 64U);
    EXPECT_EQ(rings[0].used_len(*mem, 1), VirtioRng::kMaxBytesPerRequest);
    std::array<std::uint8_t, 64> got{};
    ASSERT_TRUE(mem->read(GuestAddress{0x10000}, got));
    EXPECT_NE(std::count(got.begin(), got.end(), 0), 64);
    EXPECT_GE(irq.queue_signals.load(), 1);
    rng.reset();
}

// Records what GuestMemory's write observer hears (the soft CPU's decode cache in vireo).
struct RecordingObserver final : HostWriteObserver {
    void host_wrote(GuestAddress gpa, std::uint64_t len) override {
        const std::lock_guard lock(mutex);
        writes.emplace_back(gpa.value, len);
    }
    // True when some write covered all of [gpa, gpa + len).
    bool heard(std::uint64_t gpa, std::uint64_t len) {
        const std::lock_guard lock(mutex);
        return std::any_of(writes.begin(), writes.end(), [&](const auto& w) {
            return w.first <= gpa && gpa + len <= w.first + w.second;
        });
    }
    bool heard_any_of(std::uint64_t gpa, std::uint64_t len) {
        const std::lock_guard lock(mutex);
        return std::any_of(writes.begin(), writes.end(), [&](const auto& w) {
            return w.first < gpa + len && gpa < w.first + w.second;
        });
    }
    std::mutex mutex;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> writes;
};

TEST_F(VirtioDeviceTest, DeviceWritesReachTheWriteObserver) {
    RecordingObserver seen;
    mem->set_write_observer(&seen);
    VirtioRng rng;
    ASSERT_TRUE(activate(rng, 1));
    rings[0].add(*mem, {{0x10000, 64, true}, {0x18000, 32, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 1));
    rng.reset();
    // The entropy went into both buffers through host pointers; the observer heard of each.
    EXPECT_TRUE(seen.heard(0x10000, 64));
    EXPECT_TRUE(seen.heard(0x18000, 32));
    mem->set_write_observer(nullptr);
}

TEST_F(VirtioDeviceTest, PausedDeviceServesNothingUntilResumed) {
    VirtioRng rng;
    ASSERT_TRUE(activate(rng, 1));
    rng.pause();
    EXPECT_TRUE(rng.paused());
    rings[0].add(*mem, {{0x10000, 64, true}});
    kicks[0].signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(rings[0].used_idx(*mem), 0);
    rng.resume();
    EXPECT_FALSE(rng.paused());
    ASSERT_TRUE(rings[0].wait_used(*mem, 1));
    rng.reset();
}

TEST_F(VirtioDeviceTest, MalformedChainSetsNeedsResetAndStopsTheDevice) {
    VirtioRng rng;
    ASSERT_TRUE(activate(rng, 1));
    rings[0].add(*mem, {{kMemSize - 8, 64, true}});  // outside RAM
    kicks[0].signal();
    for (int i = 0; i < 2000 && !irq.needs_reset; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(irq.needs_reset);
    EXPECT_EQ(rings[0].used_idx(*mem), 0);
    EXPECT_EQ(std::as_const(rng).counters().errors.load(), 1U);
    rng.reset();
    EXPECT_FALSE(rng.active());
}

TEST_F(VirtioDeviceTest, ConsoleTransmitsAndReceives) {
    std::mutex m;
    std::string out;
    auto console = VirtioConsole::create([&](std::span<const std::uint8_t> b) {
                       std::lock_guard lock(m);
                       out.append(b.begin(), b.end());
                   }).value();
    ASSERT_TRUE(activate(*console, 2));
    const char hello[] = "hello from the guest";
    ASSERT_TRUE(
        mem->write(GuestAddress{0x10000},
                   std::span(reinterpret_cast<const std::uint8_t*>(hello), sizeof(hello) - 1)));
    rings[1].add(*mem, {{0x10000, sizeof(hello) - 1, false}});
    kicks[1].signal();
    ASSERT_TRUE(rings[1].wait_used(*mem, 1));
    {
        std::lock_guard lock(m);
        EXPECT_EQ(out, "hello from the guest");
    }
    // Input before any receive buffer is held, then delivered once the driver posts one.
    const std::string typed = "ls\n";
    EXPECT_EQ(console->queue_input(
                  std::span(reinterpret_cast<const std::uint8_t*>(typed.data()), typed.size())),
              typed.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(rings[0].used_idx(*mem), 0);
    rings[0].add(*mem, {{0x20000, 2, true}});
    rings[0].add(*mem, {{0x21000, 16, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    EXPECT_EQ(rings[0].used_len(*mem, 0), 2U);
    EXPECT_EQ(rings[0].used_len(*mem, 1), 1U);
    std::array<std::uint8_t, 3> got{};
    ASSERT_TRUE(mem->read(GuestAddress{0x20000}, std::span(got).first(2)));
    ASSERT_TRUE(mem->read(GuestAddress{0x21000}, std::span(got).subspan(2)));
    EXPECT_EQ(std::string(got.begin(), got.end()), "ls\n");
    console->reset();
}

TEST_F(VirtioBlkTest, ConfigReportsCapacity) {
    auto blk = open(false);
    std::array<std::uint8_t, 8> cap{};
    blk->read_config(0, cap);
    std::uint64_t sectors;
    std::memcpy(&sectors, cap.data(), 8);
    EXPECT_EQ(sectors, 128U);
    EXPECT_EQ(blk->device_features() & feature(5), 0U);  // not read-only
}

TEST_F(VirtioBlkTest, ReadWriteFlushGetId) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    // Read sector 3.
    header(0x10000, kBlkTypeIn, 3);
    rings[0].add(*mem, {{0x10000, 16, false}, {0x11000, 512, true}, {0x12000, 1, true}});
    // Write sector 5 with 0xee.
    std::vector<std::uint8_t> fill(512, 0xee);
    ASSERT_TRUE(mem->write(GuestAddress{0x13000}, fill));
    header(0x10100, kBlkTypeOut, 5);
    rings[0].add(*mem, {{0x10100, 16, false}, {0x13000, 512, false}, {0x12001, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    EXPECT_EQ(status(0x12000), kBlkStatusOk);
    EXPECT_EQ(status(0x12001), kBlkStatusOk);
    EXPECT_EQ(rings[0].used_len(*mem, 0), 513U);
    std::array<std::uint8_t, 512> got{};
    ASSERT_TRUE(mem->read(GuestAddress{0x11000}, got));
    EXPECT_EQ(got[0], 3);
    EXPECT_EQ(got[511], 3);
    // Flush, GET_ID, an unknown type, an out-of-range read.
    header(0x10200, kBlkTypeFlush, 0);
    rings[0].add(*mem, {{0x10200, 16, false}, {0x12002, 1, true}});
    header(0x10300, kBlkTypeGetId, 0);
    rings[0].add(*mem, {{0x10300, 16, false}, {0x14000, 20, true}, {0x12003, 1, true}});
    header(0x10400, 99, 0);
    rings[0].add(*mem, {{0x10400, 16, false}, {0x12004, 1, true}});
    header(0x10500, kBlkTypeIn, 128);
    rings[0].add(*mem, {{0x10500, 16, false}, {0x15000, 512, true}, {0x12005, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 6));
    EXPECT_EQ(status(0x12002), kBlkStatusOk);
    EXPECT_EQ(status(0x12003), kBlkStatusOk);
    EXPECT_EQ(status(0x12004), kBlkStatusUnsupported);
    EXPECT_EQ(status(0x12005), kBlkStatusIoErr);
    std::array<char, 20> id{};
    ASSERT_TRUE(mem->read(GuestAddress{0x14000},
                          std::span(reinterpret_cast<std::uint8_t*>(id.data()), id.size())));
    EXPECT_STREQ(id.data(), "serial-1");
    blk->reset();
    // The write reached the file.
    const int fd = ::open(path.c_str(), O_RDONLY);
    std::array<std::uint8_t, 512> sector{};
    ASSERT_EQ(::pread(fd, sector.data(), sector.size(), 5 * 512), 512);
    ::close(fd);
    EXPECT_EQ(sector[0], 0xee);
    EXPECT_EQ(sector[511], 0xee);
}

TEST_F(VirtioBlkTest, ReadsReachTheWriteObserverAndWritesDoNot) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    RecordingObserver seen;
    std::vector<std::uint8_t> fill(512, 0xee);
    ASSERT_TRUE(mem->write(GuestAddress{0x13000}, fill));
    mem->set_write_observer(&seen);
    header(0x10000, kBlkTypeIn, 3);
    rings[0].add(*mem, {{0x10000, 16, false}, {0x11000, 512, true}, {0x12000, 1, true}});
    header(0x10100, kBlkTypeOut, 5);
    rings[0].add(*mem, {{0x10100, 16, false}, {0x13000, 512, false}, {0x12001, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    blk->reset();
    mem->set_write_observer(nullptr);
    EXPECT_TRUE(seen.heard(0x11000, 512));  // the sector read into guest RAM
    EXPECT_TRUE(seen.heard(0x12000, 1));    // status bytes
    EXPECT_TRUE(seen.heard(0x12001, 1));
    EXPECT_FALSE(seen.heard_any_of(0x13000, 512));  // a write's payload is only read
}

// Pages written by a device are dirty once the request is answered (marked when the write
// completes, GuestMemory::note_write); pages it only read are not.
TEST_F(VirtioBlkTest, ReadsMarkTheirPagesDirtyAndWritesDoNot) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    header(0x10000, kBlkTypeIn, 3);
    header(0x10100, kBlkTypeOut, 5);
    mem->enable_dirty_tracking();
    static_cast<void>(mem->take_dirty(0));  // everything starts dirty: forget it
    rings[0].add(*mem, {{0x10000, 16, false}, {0x21000, 512, true}, {0x22000, 1, true}});
    rings[0].add(*mem, {{0x10100, 16, false}, {0x23000, 512, false}, {0x22001, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    blk->reset();
    const auto dirty = mem->take_dirty(0);
    const auto is_dirty = [&](std::uint64_t gpa) {
        const std::uint64_t page = gpa / kPageSize;
        return ((dirty[page / 64] >> (page % 64)) & 1) != 0;
    };
    EXPECT_TRUE(is_dirty(0x21000));  // the sector read into guest RAM
    EXPECT_TRUE(is_dirty(0x22000));  // status bytes
    EXPECT_TRUE(is_dirty(rings[0].used));
    EXPECT_FALSE(is_dirty(0x23000));  // a write's payload is only read
}

TEST_F(VirtioBlkTest, ReadOnlyDiskRefusesWritesAndKeepsTheFile) {
    auto blk = open(true);
    EXPECT_NE(blk->device_features() & feature(5), 0U);
    ASSERT_TRUE(activate(*blk, 1));
    std::vector<std::uint8_t> fill(512, 0xee);
    ASSERT_TRUE(mem->write(GuestAddress{0x13000}, fill));
    header(0x10000, kBlkTypeOut, 1);
    rings[0].add(*mem, {{0x10000, 16, false}, {0x13000, 512, false}, {0x12000, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 1));
    EXPECT_EQ(status(0x12000), kBlkStatusIoErr);
    blk->reset();
    const int fd = ::open(path.c_str(), O_RDONLY);
    std::array<std::uint8_t, 512> sector{};
    ASSERT_EQ(::pread(fd, sector.data(), sector.size(), 512), 512);
    ::close(fd);
    EXPECT_EQ(sector[0], 1);
}

TEST_F(VirtioBlkTest, FlushIsOfferedOnlyWhenAsked) {
    // cache_type: Writeback offers VIRTIO_BLK_F_FLUSH (bit 9), Unsafe does not.
    auto writeback = VirtioBlk::create(BlockFile::open(path, {.lock = false}).value(), "", "x");
    ASSERT_TRUE(writeback);
    EXPECT_NE((*writeback)->device_features() & feature(9), 0U);
    EXPECT_TRUE((*writeback)->offers_flush());
    auto unsafe =
        VirtioBlk::create(BlockFile::open(path, {.lock = false}).value(), "", "x", 1, false);
    ASSERT_TRUE(unsafe);
    EXPECT_EQ((*unsafe)->device_features() & feature(9), 0U);
    EXPECT_FALSE((*unsafe)->offers_flush());
}

TEST_F(VirtioBlkTest, TwoQueuesAnswerOnTheirOwnQueue) {
    auto blk = open(false, 2);
    EXPECT_NE(blk->device_features() & feature(12), 0U);  // VIRTIO_BLK_F_MQ
    std::array<std::uint8_t, 2> nq{};
    blk->read_config(0x22, nq);
    EXPECT_EQ(nq[0], 2);
    EXPECT_FALSE(VirtioBlk::create(BlockFile::open(path, {.lock = false}).value(), "", "x", 0));
    ASSERT_TRUE(activate(*blk, 2));
    header(0x10000, kBlkTypeIn, 9);
    rings[1].add(*mem, {{0x10000, 16, false}, {0x11000, 512, true}, {0x12000, 1, true}});
    kicks[1].signal();
    ASSERT_TRUE(rings[1].wait_used(*mem, 1));
    EXPECT_EQ(rings[0].used_idx(*mem), 0);
    EXPECT_EQ(status(0x12000), kBlkStatusOk);
    EXPECT_EQ(mem->read_obj<std::uint8_t>(GuestAddress{0x11000}).value(), 9);
    header(0x10100, kBlkTypeIn, 4);
    rings[0].add(*mem, {{0x10100, 16, false}, {0x13000, 512, true}, {0x12001, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 1));
    EXPECT_EQ(rings[1].used_idx(*mem), 1);
    EXPECT_EQ(mem->read_obj<std::uint8_t>(GuestAddress{0x13000}).value(), 4);
    blk->reset();
}

TEST_F(VirtioBlkTest, PauseAnswersRequestsAlreadyStarted) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    for (int i = 0; i < 4; ++i) {
        const std::uint64_t h = 0x10000 + 0x100 * static_cast<std::uint64_t>(i);
        header(h, kBlkTypeIn, static_cast<std::uint64_t>(i));
        rings[0].add(*mem, {{h, 16, false},
                            {0x20000 + 0x1000 * static_cast<std::uint64_t>(i), 512, true},
                            {0x12000 + static_cast<std::uint64_t>(i), 1, true}});
    }
    kicks[0].signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    blk->pause();
    // Whatever the device had taken is answered by now; nothing moves while paused.
    const auto at_pause = rings[0].used_idx(*mem);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(rings[0].used_idx(*mem), at_pause);
    blk->resume();
    ASSERT_TRUE(rings[0].wait_used(*mem, 4));
    blk->reset();
}

TEST_F(VirtioBlkTest, ReplacedImageServesTheNextRequestsAndItsCapacity) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    header(0x10000, kBlkTypeIn, 3);
    rings[0].add(*mem, {{0x10000, 16, false}, {0x11000, 512, true}, {0x12000, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 1));
    EXPECT_EQ(mem->read_obj<std::uint8_t>(GuestAddress{0x11000}).value(), 3);
    // A bigger image whose sectors all hold 0x77.
    const std::string other = path + ".new";
    {
        std::vector<std::uint8_t> image(128 * 1024, 0x77);
        const int fd = ::open(other.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
        ASSERT_EQ(::write(fd, image.data(), image.size()), static_cast<ssize_t>(image.size()));
        ::close(fd);
    }
    ASSERT_TRUE(blk->replace_file(BlockFile::open(other).value()));
    EXPECT_EQ(blk->capacity_sectors(), 256U);
    EXPECT_FALSE(blk->paused());
    EXPECT_FALSE(blk->replace_file(BlockFile::open(path, {.read_only = true}).value()));
    header(0x10100, kBlkTypeIn, 200);  // beyond the old capacity
    rings[0].add(*mem, {{0x10100, 16, false}, {0x13000, 512, true}, {0x12001, 1, true}});
    kicks[0].signal();
    ASSERT_TRUE(rings[0].wait_used(*mem, 2));
    EXPECT_EQ(status(0x12001), kBlkStatusOk);
    EXPECT_EQ(mem->read_obj<std::uint8_t>(GuestAddress{0x13000}).value(), 0x77);
    blk->reset();
    ::unlink(other.c_str());
}

TEST_F(VirtioBlkTest, ManyRequestsInFlight) {
    auto blk = open(false);
    ASSERT_TRUE(activate(*blk, 1));
    // 15 reads (the ring holds 16 descriptors, 1 per chain via a combined buffer layout is not
    // allowed, so 3 descriptors each: 5 at a time), three rounds.
    std::uint16_t done = 0;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 5; ++i) {
            const std::uint64_t h = 0x10000 + 0x100 * static_cast<std::uint64_t>(i);
            header(h, kBlkTypeIn, static_cast<std::uint64_t>(i + round));
            rings[0].add(*mem, {{h, 16, false},
                                {0x20000 + 0x1000 * static_cast<std::uint64_t>(i), 512, true},
                                {0x12000 + static_cast<std::uint64_t>(i), 1, true}});
        }
        kicks[0].signal();
        done = static_cast<std::uint16_t>(done + 5);
        ASSERT_TRUE(rings[0].wait_used(*mem, done));
        for (int i = 0; i < 5; ++i) {
            EXPECT_EQ(status(0x12000 + static_cast<std::uint64_t>(i)), kBlkStatusOk);
            EXPECT_EQ(mem->read_obj<std::uint8_t>(
                             GuestAddress{0x20000 + 0x1000 * static_cast<std::uint64_t>(i)})
                          .value(),
                      i + round);
        }
    }
    blk->reset();
}

}  // namespace
}  // namespace vireo::virtio
