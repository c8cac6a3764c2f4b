// The virtio-pci modern transport (virtio 1.2 §4.1) driven the way Linux's virtio_pci_modern
// driver drives it, with test doubles for the MSI controller, the ioeventfd registry and INTx.
#include "devices/virtio/virtio_pci_device.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <thread>

#include "devices/virtio/virtio_rng.h"
#include "devices/virtio/virtio_spec.h"
#include "virtio_test_doubles.h"

namespace vireo::virtio {
namespace {

constexpr std::uint64_t kBar = 0xc0000000;
// BAR 0 offsets of the structures (virtio_pci_device.h).
constexpr std::uint64_t kCommon = 0x0000;
constexpr std::uint64_t kIsr = 0x1000;
constexpr std::uint64_t kNotify = 0x3000;

class VirtioPciTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, 0x100000}}};
        mem = std::make_unique<GuestMemory>(std::move(GuestMemory::create(spec).value()));
        auto d =
            VirtioPciDevice::create(std::make_unique<VirtioRng>(), *mem, msi, &ioevents, &line);
        ASSERT_TRUE(d) << d.error().message();
        dev = std::move(d.value());
        ASSERT_TRUE(dev->config_space().set_bar_address(0, kBar));
        write_cfg16(0x04, 0x0006);  // Command: memory space + bus master
    }
    template <typename T>
    T read_bar(std::uint64_t offset) {
        T v{};
        dev->bar_read(0, offset, std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof(T)));
        return v;
    }
    template <typename T>
    void write_bar(std::uint64_t offset, T v) {
        dev->bar_write(0, offset, std::span(reinterpret_cast<const std::uint8_t*>(&v), sizeof(T)));
    }
    std::uint16_t read_cfg16(std::uint16_t offset) {
        std::uint16_t v = 0;
        dev->config_read(offset, std::span(reinterpret_cast<std::uint8_t*>(&v), 2));
        return v;
    }
    std::uint8_t read_cfg8(std::uint16_t offset) {
        std::uint8_t v = 0;
        dev->config_read(offset, std::span(&v, 1));
        return v;
    }
    void write_cfg16(std::uint16_t offset, std::uint16_t v) {
        dev->config_write(offset, std::span(reinterpret_cast<const std::uint8_t*>(&v), 2));
    }
    // Linux's sequence up to FEATURES_OK with the given driver features.
    std::uint8_t negotiate(std::uint64_t features) {
        write_bar<std::uint8_t>(kCommon + 0x14, 0);
        write_bar<std::uint8_t>(kCommon + 0x14, kStatusAcknowledge);
        write_bar<std::uint8_t>(kCommon + 0x14, kStatusAcknowledge | kStatusDriver);
        write_bar<std::uint32_t>(kCommon + 0x08, 0);
        write_bar<std::uint32_t>(kCommon + 0x0c, static_cast<std::uint32_t>(features));
        write_bar<std::uint32_t>(kCommon + 0x08, 1);
        write_bar<std::uint32_t>(kCommon + 0x0c, static_cast<std::uint32_t>(features >> 32));
        write_bar<std::uint8_t>(kCommon + 0x14,
                                kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
        return read_bar<std::uint8_t>(kCommon + 0x14);
    }
    void setup_queue() {
        write_bar<std::uint16_t>(kCommon + 0x16, 0);   // queue_select
        write_bar<std::uint16_t>(kCommon + 0x18, 16);  // queue_size
        // 64-bit fields written as two halves, as vp_iowrite64_twopart does.
        write_bar<std::uint32_t>(kCommon + 0x20, 0x1000);
        write_bar<std::uint32_t>(kCommon + 0x24, 0);
        write_bar<std::uint32_t>(kCommon + 0x28, 0x2000);
        write_bar<std::uint32_t>(kCommon + 0x2c, 0);
        write_bar<std::uint32_t>(kCommon + 0x30, 0x3000);
        write_bar<std::uint32_t>(kCommon + 0x34, 0);
        write_bar<std::uint16_t>(kCommon + 0x1c, 1);  // queue_enable
    }
    void driver_ok() {
        write_bar<std::uint8_t>(kCommon + 0x14, kStatusAcknowledge | kStatusDriver |
                                                    kStatusFeaturesOk | kStatusDriverOk);
    }
    std::uint16_t used_idx() { return mem->read_obj<std::uint16_t>(GuestAddress{0x3002}).value(); }
    // Waits up to 2 s for the device to publish used index `n`.
    void wait_used(std::uint16_t n) {
        for (int i = 0; i < 2000 && used_idx() != n; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    std::unique_ptr<GuestMemory> mem;
    FakeMsi msi;
    FakeIoEvents ioevents;
    FakeLine line;
    std::unique_ptr<VirtioPciDevice> dev;
};

TEST_F(VirtioPciTest, IdentityAndCapabilities) {
    EXPECT_EQ(read_cfg16(0x00), 0x1af4);
    EXPECT_EQ(read_cfg16(0x02), 0x1040 + kDeviceEntropy);
    EXPECT_GE(read_cfg8(0x08), 1);          // revision
    EXPECT_EQ(read_cfg8(0x3d), 1);          // INTA#
    EXPECT_NE(read_cfg16(0x06) & 0x10, 0);  // capabilities list
    // Walk the list: common, notify, ISR, device, PCI cfg (vendor caps), then MSI-X.
    std::vector<std::uint8_t> types;
    bool msix = false;
    for (std::uint8_t p = read_cfg8(0x34); p != 0;
         p = read_cfg8(static_cast<std::uint16_t>(p + 1))) {
        if (read_cfg8(p) == 0x09) {
            types.push_back(read_cfg8(static_cast<std::uint16_t>(p + 3)));
        } else if (read_cfg8(p) == 0x11) {
            msix = true;
            EXPECT_EQ((read_cfg16(static_cast<std::uint16_t>(p + 2)) & 0x7ff) + 1, 2);  // 2 vectors
        }
        ASSERT_LT(types.size(), 16U);
    }
    EXPECT_EQ(types, (std::vector<std::uint8_t>{1, 2, 3, 4, 5}));
    EXPECT_TRUE(msix);
}

TEST_F(VirtioPciTest, FeaturesOffered) {
    write_bar<std::uint32_t>(kCommon + 0x00, 1);
    const std::uint32_t high = read_bar<std::uint32_t>(kCommon + 0x04);
    EXPECT_NE(high & 1U, 0U);  // VERSION_1 (bit 32)
    write_bar<std::uint32_t>(kCommon + 0x00, 0);
    const std::uint32_t low = read_bar<std::uint32_t>(kCommon + 0x04);
    EXPECT_NE(low & (1U << kFeatureEventIdx), 0U);
    EXPECT_NE(low & (1U << kFeatureIndirectDesc), 0U);
    write_bar<std::uint32_t>(kCommon + 0x00, 7);  // no such word
    EXPECT_EQ(read_bar<std::uint32_t>(kCommon + 0x04), 0U);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x12), 1);  // num_queues
}

TEST_F(VirtioPciTest, LegacyOnlyDriverIsRefused) {
    EXPECT_EQ(negotiate(0) & kStatusFeaturesOk, 0);  // no VERSION_1
}

TEST_F(VirtioPciTest, UnofferedFeatureIsRefused) {
    EXPECT_EQ(negotiate(feature(kFeatureVersion1) | feature(3)) & kStatusFeaturesOk, 0);
}

TEST_F(VirtioPciTest, QueueRegistersAndVectors) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    write_bar<std::uint16_t>(kCommon + 0x16, 0);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), kMaxQueueSize);
    // The vector is programmed before the queue is enabled, as Linux's setup_vq() does.
    write_bar<std::uint16_t>(kCommon + 0x1a, 1);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x1a), 1);
    write_bar<std::uint16_t>(kCommon + 0x1a, 9);  // beyond the table: NO_VECTOR
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x1a), kNoVector);
    setup_queue();
    EXPECT_EQ(read_bar<std::uint64_t>(kCommon + 0x28), 0x2000U);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x1c), 1);
    write_bar<std::uint16_t>(kCommon + 0x10, 0);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x10), 0);
    write_bar<std::uint16_t>(kCommon + 0x16, 5);  // a queue that does not exist
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), 0);
}

TEST_F(VirtioPciTest, DriverOkRegistersIoeventsAndResetRemovesThem) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    EXPECT_TRUE(dev->device().active());
    ASSERT_EQ(ioevents.added.size(), 1U);
    EXPECT_EQ(ioevents.added[0].first.address, kBar + kNotify);
    EXPECT_EQ(ioevents.added[0].first.length, 2U);
    write_bar<std::uint8_t>(kCommon + 0x14, 0);
    EXPECT_FALSE(dev->device().active());
    EXPECT_EQ(read_bar<std::uint8_t>(kCommon + 0x14), 0);
    ASSERT_EQ(ioevents.removed.size(), 1U);
    EXPECT_EQ(ioevents.removed[0].first.address, kBar + kNotify);
    write_bar<std::uint16_t>(kCommon + 0x16, 0);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), kMaxQueueSize);  // forgotten
}

// The machine's reset before teardown (Component::reset, ComponentRegistry::reset_all), also of a
// device the VMM paused: the thread stops and the driver's state is gone, as after status 0.
TEST_F(VirtioPciTest, TheMachinesResetStopsTheDeviceLikeTheDriversReset) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(dev->device().active());
    dev->pause();
    static_cast<Component&>(*dev).reset();
    EXPECT_FALSE(dev->device().active());
    EXPECT_FALSE(dev->device().activated());
    EXPECT_EQ(read_bar<std::uint8_t>(kCommon + 0x14), 0);
    ASSERT_EQ(ioevents.removed.size(), 1U);
    write_bar<std::uint16_t>(kCommon + 0x16, 0);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x1c), 0);  // queue no longer enabled
    // A second reset, and a resume after it, start nothing.
    static_cast<Component&>(*dev).reset();
    dev->resume();
    EXPECT_FALSE(dev->device().active());
}

TEST_F(VirtioPciTest, MovedBarMovesIoevents) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    dev->bar_moved(0, kBar, kBar + 0x10000);
    ASSERT_EQ(ioevents.added.size(), 2U);
    EXPECT_EQ(ioevents.added[1].first.address, kBar + 0x10000 + kNotify);
    ASSERT_EQ(ioevents.removed.size(), 1U);
}

TEST_F(VirtioPciTest, NotifyWriteKicksAndIntxRaisesUntilIsrRead) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    // One 32-byte request on the ring.
    Descriptor d{0x8000, 32, kDescWrite, 0};
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x1000}, d));
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2004}, std::uint16_t{0}));
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2002}, std::uint16_t{1}));
    write_bar<std::uint16_t>(kNotify, 0);  // the MMIO path (no ioeventfd here)
    wait_used(1);
    ASSERT_EQ(used_idx(), 1);
    for (int i = 0; i < 2000 && !line.level; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(line.level);                     // MSI-X is off: INTx
    EXPECT_EQ(read_bar<std::uint8_t>(kIsr), 1);  // queue interrupt, read clears
    EXPECT_FALSE(line.level);
    EXPECT_EQ(read_bar<std::uint8_t>(kIsr), 0);
}

TEST_F(VirtioPciTest, MalformedQueueSetsNeedsReset) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2004}, std::uint16_t{40}));  // head out of range
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2002}, std::uint16_t{1}));
    write_bar<std::uint16_t>(kNotify, 0);
    for (int i = 0; i < 2000 && (dev->status() & kStatusDeviceNeedsReset) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_NE(dev->status() & kStatusDeviceNeedsReset, 0);
    // The driver recovers with a reset.
    write_bar<std::uint8_t>(kCommon + 0x14, 0);
    EXPECT_EQ(dev->status(), 0);
}

TEST_F(VirtioPciTest, BadQueueConfigurationFailsActivationNotTheVmm) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    write_bar<std::uint16_t>(kCommon + 0x16, 0);
    write_bar<std::uint16_t>(kCommon + 0x18, 16);
    write_bar<std::uint64_t>(kCommon + 0x20, 0x1000);
    write_bar<std::uint64_t>(kCommon + 0x28, 0x2000);
    write_bar<std::uint32_t>(kCommon + 0x30, 0xfff000);  // used ring beyond RAM
    write_bar<std::uint16_t>(kCommon + 0x1c, 1);
    driver_ok();
    EXPECT_FALSE(dev->device().active());
    EXPECT_NE(dev->status() & kStatusDeviceNeedsReset, 0);
}

TEST_F(VirtioPciTest, OddAccessesAreHarmless) {
    // Unaligned and out-of-range accesses anywhere in the BAR.
    for (std::uint64_t off : {0x3bULL, 0x3fULL, 0x1001ULL, 0x2fffULL, 0x3ffeULL, 0x7fffULL}) {
        std::array<std::uint8_t, 8> buf{};
        dev->bar_read(0, off, std::span(buf).first(1));
        dev->bar_write(0, off, std::span(buf).first(1));
    }
    // Nothing was started, nothing got stuck.
    EXPECT_EQ(dev->status() & ~kStatusAcknowledge, 0);
    EXPECT_FALSE(dev->device().active());
}

// Snapshot: a running device, paused, saved to bytes, restored into a NEW device on the same
// guest memory: it is active at the saved ring positions and serves the next request.
TEST_F(VirtioPciTest, SnapshotRestoresARunningDeviceAtItsRingPositions) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    Descriptor d{0x8000, 32, kDescWrite, 0};
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x1000}, d));
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2004}, std::uint16_t{0}));
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2002}, std::uint16_t{1}));
    write_bar<std::uint16_t>(kNotify, 0);
    wait_used(1);
    ASSERT_EQ(used_idx(), 1);
    dev->pause();
    const auto bytes = save_to_bytes(dev->save_state());
    dev.reset();  // the old process's device is gone

    auto loaded = load_from_bytes<VirtioPciState>(bytes);
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->queues[0].next_avail, 1);
    EXPECT_EQ(loaded->queues[0].next_used, 1);
    FakeMsi msi2;
    FakeIoEvents ioevents2;
    FakeLine line2;
    auto fresh =
        VirtioPciDevice::create(std::make_unique<VirtioRng>(), *mem, msi2, &ioevents2, &line2);
    ASSERT_TRUE(fresh);
    dev = std::move(fresh.value());
    ASSERT_TRUE(dev->restore_state(*loaded)) << "restore";
    EXPECT_EQ(dev->status(),
              kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    EXPECT_TRUE(dev->device().paused()) << "activated, held paused until the VM resumes";
    EXPECT_EQ(dev->config_space().bar_address(0), kBar);
    EXPECT_EQ(ioevents2.added.size(), 1U) << "the notify ioeventfd is registered again";
    dev->resume();
    EXPECT_TRUE(dev->device().active());

    // The second request goes in ring slot 1 and comes back as used entry 2.
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2006}, std::uint16_t{0}));
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x2002}, std::uint16_t{2}));
    write_bar<std::uint16_t>(kNotify, 0);
    wait_used(2);
    EXPECT_EQ(used_idx(), 2);
    EXPECT_EQ(save_to_bytes(dev->save_state()).size(), bytes.size());
    dev.reset();  // before msi2, ioevents2 and line2, which it uses, go out of scope
}

TEST_F(VirtioPciTest, SnapshotRestoreRefusesAStateThatDoesNotFit) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    const VirtioPciState good = dev->save_state();

    auto too_many = good;
    too_many.queues.push_back(too_many.queues[0]);
    EXPECT_FALSE(dev->restore_state(too_many));
    auto unoffered = good;
    unoffered.driver_features |= 1ULL << 63;
    EXPECT_FALSE(dev->restore_state(unoffered));
    auto huge_queue = good;
    huge_queue.queues[0].config.size = 0x8000;
    EXPECT_FALSE(dev->restore_state(huge_queue));
    auto device_bytes = good;
    device_bytes.device = {1, 2, 3};  // virtio-rng keeps no state of its own
    EXPECT_FALSE(dev->restore_state(device_bytes));

    // Every truncation of the encoding is refused by the reader, never misread.
    const auto bytes = save_to_bytes(good);
    for (std::size_t n = 0; n < bytes.size(); n += 7) {
        EXPECT_FALSE(load_from_bytes<VirtioPciState>(std::span(bytes).first(n))) << n;
    }
}

// --- A hostile driver (issue 11): the rules of virtio 1.2 §2.1.2 and §4.1.4.3.2 enforced. ---

// A request on queue 0 (set up by setup_queue()): one 32-byte writable buffer, made available
// as ring entry `n`.
void publish_rng_request(GuestMemory& mem, std::uint16_t n) {
    Descriptor d{0x8000, 32, kDescWrite, 0};
    ASSERT_TRUE(mem.write_obj(GuestAddress{0x1000}, d));
    ASSERT_TRUE(mem.write_obj(GuestAddress{0x2004 + 2ULL * (n % 16)}, std::uint16_t{0}));
    ASSERT_TRUE(mem.write_obj(GuestAddress{0x2002}, static_cast<std::uint16_t>(n + 1)));
}

// Before the fix the status write was stored, the queue fields became writable again while the
// device thread ran on them, and a kick with queue_size 0 divided by zero on the device thread.
TEST_F(VirtioPciTest, ClearingDriverOkWithoutResetHaltsTheDeviceUntilReset) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(dev->device().active());
    const std::uint8_t running =
        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;

    write_bar<std::uint8_t>(kCommon + 0x14, running & ~kStatusDriverOk);
    const std::uint8_t status = read_bar<std::uint8_t>(kCommon + 0x14);
    EXPECT_EQ(status, running | kStatusDeviceNeedsReset) << "the write is refused, not stored";
    EXPECT_FALSE(dev->device().active()) << "the device thread stopped";

    // The queue fields stay frozen: size 0 (a division by zero), a 1024-entry ring.
    write_bar<std::uint16_t>(kCommon + 0x16, 0);
    write_bar<std::uint16_t>(kCommon + 0x18, 0);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), 16);
    write_bar<std::uint16_t>(kCommon + 0x18, 1024);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), 16);
    write_bar<std::uint32_t>(kCommon + 0x20, 0x7000);
    EXPECT_EQ(read_bar<std::uint64_t>(kCommon + 0x20), 0x1000U);

    // Neither DRIVER_OK again, nor a kick, nor the VMM's resume brings the device back.
    driver_ok();
    publish_rng_request(*mem, 0);
    write_bar<std::uint16_t>(kNotify, 0);
    dev->resume();
    EXPECT_FALSE(dev->device().active());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(used_idx(), 0) << "a halted device serves nothing";
    EXPECT_EQ(ioevents.added.size(), 1U) << "no second ioeventfd registration";

    // Reset brings it back, and it serves the request the driver makes next.
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    EXPECT_EQ(read_bar<std::uint8_t>(kCommon + 0x14) & kStatusDeviceNeedsReset, 0);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(dev->device().active());
    ASSERT_TRUE(mem->write_obj(GuestAddress{0x3002}, std::uint16_t{0}));
    publish_rng_request(*mem, 0);
    write_bar<std::uint16_t>(kNotify, 0);
    wait_used(1);
    EXPECT_EQ(used_idx(), 1);
}

TEST_F(VirtioPciTest, ClearingFeaturesOkWithoutResetIsRefused) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    write_bar<std::uint8_t>(kCommon + 0x14, kStatusAcknowledge | kStatusDriver);
    EXPECT_NE(read_bar<std::uint8_t>(kCommon + 0x14) & kStatusFeaturesOk, 0);
    EXPECT_NE(read_bar<std::uint8_t>(kCommon + 0x14) & kStatusDeviceNeedsReset, 0);
    // Features stay as negotiated.
    write_bar<std::uint32_t>(kCommon + 0x08, 1);
    write_bar<std::uint32_t>(kCommon + 0x0c, 0);
    EXPECT_EQ(read_bar<std::uint32_t>(kCommon + 0x0c), 1U);
    // Writing back the device's NEEDS_RESET bit, or leaving it out, is not a clear.
    write_bar<std::uint8_t>(kCommon + 0x14, 0);
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    EXPECT_EQ(read_bar<std::uint8_t>(kCommon + 0x14) & kStatusDeviceNeedsReset, 0);
}

TEST_F(VirtioPciTest, QueueFieldsAreFrozenOnceTheQueueIsEnabled) {
    ASSERT_NE(negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk, 0);
    write_bar<std::uint16_t>(kCommon + 0x1a, 1);
    setup_queue();  // enables queue 0
    write_bar<std::uint16_t>(kCommon + 0x18, 8);
    write_bar<std::uint16_t>(kCommon + 0x1a, 0);
    write_bar<std::uint64_t>(kCommon + 0x20, 0x9000);
    write_bar<std::uint64_t>(kCommon + 0x28, 0x9000);
    write_bar<std::uint64_t>(kCommon + 0x30, 0x9000);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x18), 16);
    EXPECT_EQ(read_bar<std::uint16_t>(kCommon + 0x1a), 1);
    EXPECT_EQ(read_bar<std::uint64_t>(kCommon + 0x20), 0x1000U);
    EXPECT_EQ(read_bar<std::uint64_t>(kCommon + 0x28), 0x2000U);
    EXPECT_EQ(read_bar<std::uint64_t>(kCommon + 0x30), 0x3000U);
    // The same DRIVER_OK written twice activates once.
    driver_ok();
    driver_ok();
    EXPECT_EQ(ioevents.added.size(), 1U);
    EXPECT_TRUE(dev->device().active());
}

// The VMM's pause, a driver reset on a vCPU, and the control thread's device work all go
// through the transport's lock: run them against each other.
TEST_F(VirtioPciTest, PauseResumeAndExclusiveWorkInterleaveWithDriverResets) {
    std::atomic<bool> stop{false};
    std::thread vcpu([&] {
        while (!stop) {
            if ((negotiate(feature(kFeatureVersion1)) & kStatusFeaturesOk) != 0) {
                setup_queue();
                driver_ok();
            }
        }
    });
    for (int i = 0; i < 300; ++i) {
        dev->pause();
        ASSERT_TRUE(dev->with_device([](VirtioDevice& d) -> Result<void> {
            // Nothing can start or stop the device thread while this runs.
            const bool before = d.active();
            std::this_thread::yield();
            if (d.active() != before) {
                return Error("the device thread changed state under the transport lock");
            }
            return ok();
        }));
        dev->resume();
    }
    stop = true;
    vcpu.join();
}

}  // namespace
}  // namespace vireo::virtio
