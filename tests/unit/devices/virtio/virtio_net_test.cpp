// virtio-net receive and transmit against a real tap, in a fresh network namespace (like the tap
// tests: nothing touches the host's interfaces; addresses are 169.254/16). The test plays the
// driver: it posts small mergeable receive buffers a few at a time, so frames span several
// chains and the device often runs out of buffers in the middle of a frame, and it checks every
// frame's num_buffers and payload.
#include "devices/virtio/virtio_net.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "backends/net/vnet_header.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {
namespace {

constexpr const char* kHostIp = "169.254.77.1";
constexpr const char* kGuestIp = "169.254.77.2";
constexpr std::uint16_t kSize = 64;  // queue size the test driver uses
constexpr std::uint64_t kMemSize = 0x400000;
constexpr std::uint32_t kBufLen = 96;           // each receive buffer (>= the 12-byte header)
constexpr std::uint64_t kRxBuffers = 0x100000;  // kSize buffers of kBufLen from here

void in_fresh_netns(const std::function<void()>& body) {
    std::thread t([&] {
        struct stat host {};
        ::stat("/proc/thread-self/ns/net", &host);
        if (::unshare(CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
            return;
        }
        struct stat now {};
        ::stat("/proc/thread-self/ns/net", &now);
        if (now.st_ino == host.st_ino) {
            ADD_FAILURE() << "not in a new network namespace";
            return;
        }
        body();
    });
    t.join();
}

struct TestIrq final : VirtioInterrupt {
    void signal_queue(std::uint16_t) override {}
    void signal_config() override {}
    void set_needs_reset() override { needs_reset = true; }
    std::atomic<bool> needs_reset{false};
};

class Driver {
public:
    Driver(GuestMemory& mem, std::uint64_t desc, std::uint64_t avail, std::uint64_t used)
        : m_mem(mem), m_desc(desc), m_avail(avail), m_used(used) {}
    void configure(VirtQueue& q) const {
        q.config().size = kSize;
        q.config().desc_table = m_desc;
        q.config().avail_ring = m_avail;
        q.config().used_ring = m_used;
        q.config().ready = true;
    }
    // Posts descriptor `i` (a one-buffer writable chain).
    void post(std::uint16_t i) {
        Descriptor d{kRxBuffers + std::uint64_t{i} * kBufLen, kBufLen, kDescWrite, 0};
        ASSERT_TRUE(m_mem.write_obj(GuestAddress{m_desc + 16ULL * i}, d));
        ASSERT_TRUE(m_mem.write_obj(GuestAddress{m_avail + 4 + 2ULL * (m_avail_idx % kSize)}, i));
        ++m_avail_idx;
        ASSERT_TRUE(m_mem.write_obj(GuestAddress{m_avail + 2}, m_avail_idx));
    }
    // The next used entry, if any: (id, len).
    std::optional<std::pair<std::uint16_t, std::uint32_t>> next_used() {
        const auto idx = m_mem.read_obj<std::uint16_t>(GuestAddress{m_used + 2}).value();
        if (idx == m_last_used) {
            return std::nullopt;
        }
        const auto slot = m_last_used % kSize;
        const auto id =
            m_mem.read_obj<std::uint32_t>(GuestAddress{m_used + 4 + 8ULL * slot}).value();
        const auto len =
            m_mem.read_obj<std::uint32_t>(GuestAddress{m_used + 8 + 8ULL * slot}).value();
        ++m_last_used;
        return std::make_pair(static_cast<std::uint16_t>(id), len);
    }
    std::uint16_t outstanding() const {
        return static_cast<std::uint16_t>(m_avail_idx - m_last_used);
    }

private:
    GuestMemory& m_mem;
    std::uint64_t m_desc, m_avail, m_used;
    std::uint16_t m_avail_idx = 0;
    std::uint16_t m_last_used = 0;
};

TEST(VirtioNet, MergeableReceiveAcrossChainsWithFewBuffers) {
    in_fresh_netns([] {
        std::array<MemoryRegionSpec, 1> spec{{{GuestAddress{0}, kMemSize}}};
        auto mem = std::move(GuestMemory::create(spec).value());
        auto tap = Tap::open("vtap0");
        ASSERT_TRUE(tap) << tap.error().message();
        ASSERT_TRUE(tap->set_up());
        // Host side: 169.254.77.1/16, and a static neighbour entry for the "guest".
        const MacAddress guest_mac({0x02, 0, 0, 0, 0, 0x42});
        {
            int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            ifreq ifr{};
            std::strncpy(ifr.ifr_name, "vtap0", IFNAMSIZ - 1);
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            ::inet_pton(AF_INET, kHostIp, &sin.sin_addr);
            std::memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
            ASSERT_EQ(::ioctl(s, SIOCSIFADDR, &ifr), 0) << std::strerror(errno);
            ::inet_pton(AF_INET, "255.255.0.0", &sin.sin_addr);
            std::memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
            ASSERT_EQ(::ioctl(s, SIOCSIFNETMASK, &ifr), 0) << std::strerror(errno);
            arpreq arp{};
            sockaddr_in pa{};
            pa.sin_family = AF_INET;
            ::inet_pton(AF_INET, kGuestIp, &pa.sin_addr);
            std::memcpy(&arp.arp_pa, &pa, sizeof(pa));
            arp.arp_ha.sa_family = ARPHRD_ETHER;
            std::memcpy(arp.arp_ha.sa_data, guest_mac.bytes().data(), 6);
            arp.arp_flags = ATF_COM | ATF_PERM;
            std::strncpy(arp.arp_dev, "vtap0", sizeof(arp.arp_dev) - 1);
            ASSERT_EQ(::ioctl(s, SIOCSARP, &arp), 0) << std::strerror(errno);
            ::close(s);
        }
        auto net = VirtioNet::create(std::move(tap.value()), guest_mac);
        ASSERT_TRUE(net);
        std::vector<VirtQueue> queues;
        std::vector<EventFd> kicks;
        for (int i = 0; i < 2; ++i) {
            queues.emplace_back(kMaxQueueSize);
            kicks.push_back(EventFd::create().value());
        }
        Driver rx(mem, 0x1000, 0x2000, 0x3000);
        Driver tx(mem, 0x4000, 0x5000, 0x6000);
        rx.configure(queues[0]);
        tx.configure(queues[1]);
        TestIrq irq;
        const std::uint64_t features = feature(kFeatureVersion1) | feature(kFeatureEventIdx) |
                                       feature(15) /* MRG_RXBUF */ | feature(5) /* MAC */;
        ASSERT_TRUE((*net)->activate(mem, features, queues, kicks, irq));

        // Datagrams of growing size, each carrying its sequence number in every payload byte.
        constexpr int kFrames = 60;
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        ::inet_pton(AF_INET, kGuestIp, &to.sin_addr);
        for (int i = 0; i < kFrames; ++i) {
            std::vector<std::uint8_t> payload(100 + 20 * static_cast<std::size_t>(i),
                                              static_cast<std::uint8_t>(i));
            ASSERT_EQ(::sendto(s, payload.data(), payload.size(), 0,
                               reinterpret_cast<sockaddr*>(&to), sizeof(to)),
                      static_cast<ssize_t>(payload.size()));
        }
        ::close(s);

        // The driver: at most 16 buffers outstanding (the largest frame needs 15), refilled as they
        // come back.
        std::uint16_t next_desc = 0;
        auto refill = [&] {
            while (rx.outstanding() < 16) {
                rx.post(next_desc);
                next_desc = static_cast<std::uint16_t>((next_desc + 1) % kSize);
            }
            kicks[0].signal();
        };
        refill();
        int got = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (got < kFrames && std::chrono::steady_clock::now() < deadline && !irq.needs_reset) {
            auto first = rx.next_used();
            if (!first) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            // Reassemble: the header's num_buffers says how many chains the frame spans.
            std::vector<std::uint8_t> frame;
            auto append = [&](std::pair<std::uint16_t, std::uint32_t> u) {
                std::vector<std::uint8_t> part(u.second);
                ASSERT_TRUE(
                    mem.read(GuestAddress{kRxBuffers + std::uint64_t{u.first} * kBufLen}, part));
                frame.insert(frame.end(), part.begin(), part.end());
            };
            append(*first);
            ASSERT_GE(frame.size(), 12U);
            std::uint16_t num_buffers;
            std::memcpy(&num_buffers, frame.data() + 10, 2);
            ASSERT_GE(num_buffers, 1);
            for (std::uint16_t k = 1; k < num_buffers; ++k) {
                std::optional<std::pair<std::uint16_t, std::uint32_t>> more;
                while (!(more = rx.next_used()) && std::chrono::steady_clock::now() < deadline) {
                    refill();
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
                ASSERT_TRUE(more) << "frame " << got << ": chain " << k << " of " << num_buffers
                                  << " never came";
                append(*more);
            }
            refill();
            // 12-byte header, 14 Ethernet, 20 IPv4, 8 UDP, then the payload.
            if (frame.size() < 12 + 14 + 28 || frame[12 + 12] != 0x08 || frame[12 + 13] != 0x00 ||
                frame[12 + 14 + 9] != 17) {
                continue;  // not our UDP (IPv6 router solicitations and the like)
            }
            const std::size_t payload = frame.size() - (12 + 14 + 28);
            EXPECT_EQ(payload, 100 + 20 * static_cast<std::size_t>(got)) << "frame " << got;
            for (std::size_t b = 12 + 14 + 28; b < frame.size(); ++b) {
                ASSERT_EQ(frame[b], static_cast<std::uint8_t>(got))
                    << "frame " << got << " byte " << b;
            }
            ++got;
        }
        EXPECT_FALSE(irq.needs_reset) << "the device declared the queue broken";
        EXPECT_EQ(got, kFrames);
        (*net)->reset();
    });
}

// After a live migration the device announces the guest on its tap: one RARP reverse request
// from the guest's MAC to broadcast, which a packet socket on the host side of the tap sees.
TEST(VirtioNet, AnnounceSendsARarpFrameFromTheGuestsMac) {
    in_fresh_netns([] {
        auto tap = Tap::open("vtap0");
        ASSERT_TRUE(tap) << tap.error().message();
        ASSERT_TRUE(tap->set_up());
        const int ifindex = static_cast<int>(::if_nametoindex("vtap0"));
        ASSERT_GT(ifindex, 0);
        const int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x8035));
        ASSERT_GE(s, 0) << std::strerror(errno);
        sockaddr_ll where{};
        where.sll_family = AF_PACKET;
        where.sll_protocol = htons(0x8035);
        where.sll_ifindex = ifindex;
        ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&where), sizeof where), 0);
        const MacAddress guest_mac({0x02, 0x76, 0x69, 0x72, 0x65, 0x42});
        auto net = VirtioNet::create(std::move(tap).value(), guest_mac);
        ASSERT_TRUE(net) << net.error().message();
        ASSERT_TRUE((*net)->announce());
        pollfd p{s, POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 2000), 1) << "no frame on the tap";
        std::array<std::uint8_t, 128> f{};
        const ssize_t n = ::recv(s, f.data(), f.size(), 0);
        ::close(s);
        ASSERT_GE(n, 42);
        const auto& m = guest_mac.bytes();
        EXPECT_TRUE(
            std::all_of(f.begin(), f.begin() + 6, [](std::uint8_t b) { return b == 0xff; }));
        EXPECT_TRUE(std::equal(m.begin(), m.end(), f.begin() + 6));  // source
        EXPECT_EQ(f[12], 0x80);                                      // EtherType RARP
        EXPECT_EQ(f[13], 0x35);
        EXPECT_EQ(f[14 + 7], 3);                                           // reverse request
        EXPECT_TRUE(std::equal(m.begin(), m.end(), f.begin() + 14 + 8));   // sender hardware
        EXPECT_TRUE(std::equal(m.begin(), m.end(), f.begin() + 14 + 18));  // target hardware
    });
}

}  // namespace
}  // namespace vireo::virtio
