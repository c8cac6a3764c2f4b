// virtio-net behind the virtio-pci transport, driven by a driver that breaks the rules while
// frames arrive on a real tap (in a network namespace of the test's own).
//
// Before issue 11's fix: a driver that cleared DRIVER_OK without a reset, set the receive
// queue's size to 1024 and posted 1024 one-byte buffers had the running device thread walk 1024
// chains for one frame, writing past its 256-entry stack array of used chains (a stack overwrite
// with guest-chosen values; with _GLIBCXX_ASSERTIONS, an abort of the whole VMM).
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "backends/net/tap.h"
#include "base/unique_fd.h"
#include "devices/virtio/virtio_net.h"
#include "devices/virtio/virtio_pci_device.h"
#include "devices/virtio/virtio_spec.h"
#include "virtio_test_doubles.h"

namespace vireo::virtio {
namespace {

constexpr std::uint64_t kBar = 0xc0000000;
constexpr std::uint64_t kDesc = 0x10000;   // room for 1024 descriptors
constexpr std::uint64_t kAvail = 0x20000;  // ... and a 1024-entry avail ring
constexpr std::uint64_t kUsed = 0x30000;
constexpr std::uint64_t kBuffers = 0x40000;
constexpr unsigned kMrgRxbuf = 15;  // VIRTIO_NET_F_MRG_RXBUF
constexpr std::uint16_t kHostile = 1024;
constexpr std::uint16_t kTestEtherType = 0x88b5;  // IEEE 802 local experimental
constexpr std::size_t kFrameSize = 1000;

ino_t netns_inode() {
    struct stat st {};
    return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

// `body` on a thread in a fresh network namespace, which goes away with the thread.
void in_fresh_netns(const std::function<void()>& body) {
    std::thread t([&] {
        const ino_t host = netns_inode();
        if (::unshare(CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno) << " (needs root)";
            return;
        }
        if (host == 0 || netns_inode() == host) {
            ADD_FAILURE() << "not in a new network namespace: refusing to touch interfaces";
            return;
        }
        // No IPv6 autoconfiguration frames on the tap: only the test's frame arrives.
        for (const char* f : {"/proc/sys/net/ipv6/conf/default/disable_ipv6",
                              "/proc/sys/net/ipv6/conf/all/disable_ipv6"}) {
            std::ofstream(f) << "1\n";
        }
        body();
    });
    t.join();
}

class Driver {
public:
    explicit Driver(VirtioPciDevice& dev) : m_dev(dev) {}
    template <typename T>
    T read(std::uint64_t offset) {
        T v{};
        m_dev.bar_read(0, offset, std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof(T)));
        return v;
    }
    template <typename T>
    void write(std::uint64_t offset, T v) {
        m_dev.bar_write(0, offset, std::span(reinterpret_cast<const std::uint8_t*>(&v), sizeof(T)));
    }
    std::uint8_t status() { return read<std::uint8_t>(0x14); }
    void set_status(std::uint8_t s) { write<std::uint8_t>(0x14, s); }
    void negotiate(std::uint64_t features) {
        set_status(0);
        set_status(kStatusAcknowledge | kStatusDriver);
        write<std::uint32_t>(0x08, 0);
        write<std::uint32_t>(0x0c, static_cast<std::uint32_t>(features));
        write<std::uint32_t>(0x08, 1);
        write<std::uint32_t>(0x0c, static_cast<std::uint32_t>(features >> 32));
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    }
    void queue(std::uint16_t index, std::uint16_t size, bool enable) {
        write<std::uint16_t>(0x16, index);
        write<std::uint16_t>(0x18, size);
        write<std::uint64_t>(0x20, kDesc);
        write<std::uint64_t>(0x28, kAvail);
        write<std::uint64_t>(0x30, kUsed);
        if (enable) {
            write<std::uint16_t>(0x1c, 1);
        }
    }
    static constexpr std::uint8_t kRunning =
        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;

private:
    VirtioPciDevice& m_dev;
};

// 1024 descriptors of one writable byte each, all made available (avail idx = `published`).
void post_one_byte_buffers(GuestMemory& mem, std::uint16_t published) {
    for (std::uint16_t i = 0; i < kHostile; ++i) {
        Descriptor d{kBuffers + i, 1, kDescWrite, 0};
        ASSERT_TRUE(mem.write_obj(GuestAddress{kDesc + 16ULL * i}, d));
        ASSERT_TRUE(mem.write_obj(GuestAddress{kAvail + 4 + 2ULL * i}, i));
    }
    ASSERT_TRUE(mem.write_obj(GuestAddress{kAvail + 2}, published));
    ASSERT_TRUE(mem.write_obj(GuestAddress{kUsed + 2}, std::uint16_t{0}));
}

// A broadcast frame of kFrameSize bytes sent out of the tap's host side, i.e. to the device.
void send_frame(const std::string& ifname) {
    UniqueFd s(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kTestEtherType)));
    ASSERT_TRUE(s.valid()) << std::strerror(errno);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(kTestEtherType);
    sll.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    sll.sll_halen = 6;
    std::memset(sll.sll_addr, 0xff, 6);
    std::vector<std::uint8_t> frame(kFrameSize, 0x5a);
    std::memset(frame.data(), 0xff, 6);                            // destination
    std::memcpy(frame.data() + 6, "\x02\x00\x00\x00\x00\x01", 6);  // source
    frame[12] = kTestEtherType >> 8;
    frame[13] = kTestEtherType & 0xff;
    ASSERT_EQ(::sendto(s.get(), frame.data(), frame.size(), 0,
                       reinterpret_cast<const sockaddr*>(&sll), sizeof(sll)),
              static_cast<ssize_t>(frame.size()))
        << std::strerror(errno);
}

std::uint16_t used_idx(const GuestMemory& mem) {
    return mem.read_obj<std::uint16_t>(GuestAddress{kUsed + 2}).value();
}

TEST(VirtioNetHostileDriver, ReceiveQueueResizedUnderTheDeviceCannotOutgrowItsValidatedSize) {
    in_fresh_netns([] {
        auto tap = Tap::open("vhostile0");
        ASSERT_TRUE(tap) << tap.error().message();
        const std::string ifname = tap->name();
        ASSERT_TRUE(tap->set_up());
        auto net = VirtioNet::create(std::move(tap.value()), MacAddress::random_local());
        ASSERT_TRUE(net) << net.error().message();
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, 0x100000}}};
        auto mem = std::make_unique<GuestMemory>(std::move(GuestMemory::create(spec).value()));
        FakeMsi msi;
        FakeIoEvents ioevents;
        FakeLine line;
        auto created = VirtioPciDevice::create(std::move(net.value()), *mem, msi, &ioevents, &line);
        ASSERT_TRUE(created) << created.error().message();
        auto& dev = *created.value();
        ASSERT_TRUE(dev.config_space().set_bar_address(0, kBar));
        const std::uint16_t command = 0x0006;  // memory space + bus master
        dev.config_write(0x04, std::span(reinterpret_cast<const std::uint8_t*>(&command), 2));
        Driver drv(dev);

        // A well-behaved start: receive queue 0 with 256 entries.
        drv.negotiate(feature(kFeatureVersion1) | feature(kMrgRxbuf));
        ASSERT_NE(drv.status() & kStatusFeaturesOk, 0);
        post_one_byte_buffers(*mem, kMaxQueueSize);
        drv.queue(0, kMaxQueueSize, true);
        drv.set_status(Driver::kRunning);
        ASSERT_TRUE(dev.device().active());

        // Then the attack: DRIVER_OK cleared, queue_size 1024, 1024 buffers, DRIVER_OK again.
        drv.set_status(Driver::kRunning & ~kStatusDriverOk);
        drv.queue(0, kHostile, false);
        post_one_byte_buffers(*mem, kHostile);
        drv.set_status(Driver::kRunning);
        send_frame(ifname);
        // The device thread would serve the frame within milliseconds (before the fix: abort).
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_NE(drv.status() & kStatusDeviceNeedsReset, 0);
        EXPECT_EQ(used_idx(*mem), 0) << "a halted device delivers nothing";
        drv.write<std::uint16_t>(0x16, 0);
        EXPECT_EQ(drv.read<std::uint16_t>(0x18), kMaxQueueSize) << "queue_size stayed frozen";

        // After a reset the same frame, still queued on the tap, fills at most the 256 chains
        // of the validated ring ("a frame larger than the whole ring: deliver what fits").
        drv.negotiate(feature(kFeatureVersion1) | feature(kMrgRxbuf));
        post_one_byte_buffers(*mem, kMaxQueueSize);
        drv.queue(0, kMaxQueueSize, true);
        drv.set_status(Driver::kRunning);
        ASSERT_TRUE(dev.device().active());
        for (int i = 0; i < 2000 && used_idx(*mem) != kMaxQueueSize; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_EQ(used_idx(*mem), kMaxQueueSize);
        EXPECT_EQ(drv.status() & kStatusDeviceNeedsReset, 0);
        created.value().reset();  // before the doubles it uses
    });
}

// Before the fix a tap deleted under vireo (-EBADFD on every read, EPOLLERR on every poll) made
// the receive loop spin for ever on the device thread: the VMM's pause never returned.
TEST(VirtioNetHostileDriver, DeletedTapStopsReceiveAndReportsTheLinkDown) {
    in_fresh_netns([] {
        auto tap = Tap::open("vgone0");
        ASSERT_TRUE(tap) << tap.error().message();
        ASSERT_TRUE(tap->set_up());
        auto net = VirtioNet::create(std::move(tap.value()), MacAddress::random_local());
        ASSERT_TRUE(net) << net.error().message();
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, 0x100000}}};
        auto mem = std::make_unique<GuestMemory>(std::move(GuestMemory::create(spec).value()));
        FakeMsi msi;
        FakeIoEvents ioevents;
        FakeLine line;
        auto created = VirtioPciDevice::create(std::move(net.value()), *mem, msi, &ioevents, &line);
        ASSERT_TRUE(created) << created.error().message();
        auto& dev = *created.value();
        ASSERT_TRUE(dev.config_space().set_bar_address(0, kBar));
        const std::uint16_t command = 0x0006;
        dev.config_write(0x04, std::span(reinterpret_cast<const std::uint8_t*>(&command), 2));
        Driver drv(dev);
        constexpr unsigned kStatusFeature = 16;  // VIRTIO_NET_F_STATUS
        drv.negotiate(feature(kFeatureVersion1) | feature(kMrgRxbuf) | feature(kStatusFeature));
        post_one_byte_buffers(*mem, kMaxQueueSize);
        drv.queue(0, kMaxQueueSize, true);
        drv.set_status(Driver::kRunning);
        ASSERT_TRUE(dev.device().active());
        EXPECT_EQ(drv.read<std::uint16_t>(0x2000 + 6) & 1, 1) << "link up";

        ASSERT_EQ(std::system("ip link del vgone0"), 0);
        drv.write<std::uint16_t>(0x3000, 0);  // an rx kick: the device reads the tap
        // The link goes down (config status) and the device thread is free to stop.
        for (int i = 0; i < 2000 && (drv.read<std::uint16_t>(0x2000 + 6) & 1) != 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_EQ(drv.read<std::uint16_t>(0x2000 + 6) & 1, 0) << "link down";
        EXPECT_GE(std::as_const(dev.device()).counters().errors.load(), 1U);
        dev.pause();  // before the fix: never returned
        EXPECT_FALSE(dev.device().active());
        dev.resume();
        EXPECT_TRUE(dev.device().active());
        created.value().reset();
    });
}

}  // namespace
}  // namespace vireo::virtio
