// Tap tests. They need CAP_NET_ADMIN and /dev/net/tun, and run each body on a thread of its own
// inside a new, empty network namespace: every interface and address they make lives and dies
// there, never in the host's namespace. Addresses are IPv4 link-local (169.254/16) only.
#include "backends/net/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backends/net/vnet_header.h"
#include "base/unique_fd.h"

namespace vireo {
namespace {

constexpr const char* kHostIp = "169.254.77.1";   // the tap's address, host side
constexpr const char* kGuestIp = "169.254.77.2";  // a "guest" behind the tap
constexpr std::uint16_t kTestEtherType = 0x88b5;  // IEEE 802 local experimental

ino_t netns_inode() {
    struct stat st {};
    return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

// Runs `body` on a new thread that first moves into a fresh network namespace (unshare acts on
// the calling thread only). The namespace, and every interface in it, goes away with the thread.
void in_fresh_netns(const std::function<void()>& body) {
    std::thread t([&] {
        const ino_t host = netns_inode();
        if (::unshare(CLONE_NEWNET) != 0) {
            ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno)
                          << " (tap tests need root: CAP_SYS_ADMIN and CAP_NET_ADMIN)";
            return;
        }
        if (host == 0 || netns_inode() == host) {
            ADD_FAILURE() << "not in a new network namespace: refusing to touch interfaces";
            return;
        }
        body();
    });
    t.join();
}

UniqueFd inet_socket(int type = SOCK_DGRAM) {
    UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(s.valid()) << std::strerror(errno);
    return s;
}

void set_ipv4(const std::string& ifname, const char* address, const char* netmask) {
    UniqueFd s = inet_socket();
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    ASSERT_EQ(::inet_pton(AF_INET, address, &sin.sin_addr), 1);
    std::memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
    ASSERT_EQ(::ioctl(s.get(), SIOCSIFADDR, &ifr), 0) << std::strerror(errno);
    ASSERT_EQ(::inet_pton(AF_INET, netmask, &sin.sin_addr), 1);
    std::memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
    ASSERT_EQ(::ioctl(s.get(), SIOCSIFNETMASK, &ifr), 0) << std::strerror(errno);
}

short if_flags(const std::string& ifname) {
    UniqueFd s = inet_socket();
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    EXPECT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
    return ifr.ifr_flags;
}

std::array<std::uint8_t, 6> if_mac(const std::string& ifname) {
    UniqueFd s = inet_socket();
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    EXPECT_EQ(::ioctl(s.get(), SIOCGIFHWADDR, &ifr), 0) << std::strerror(errno);
    std::array<std::uint8_t, 6> mac{};
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
    return mac;
}

// A tap created, up and addressed, with the checks that get it there.
std::optional<Tap> make_tap(const std::string& name) {
    auto tap = Tap::open(name);
    EXPECT_TRUE(tap.ok()) << tap.error().message();
    if (!tap.ok()) {
        return std::nullopt;
    }
    EXPECT_EQ(tap->name(), name);
    EXPECT_TRUE(tap->created());
    EXPECT_GE(tap->fd(), 0);
    EXPECT_TRUE(tap->set_up().ok());
    EXPECT_NE(if_flags(name) & IFF_UP, 0);
    set_ipv4(name, kHostIp, "255.255.0.0");
    return std::move(tap).value();
}

struct Frame {
    VirtioNetHeader header;
    std::vector<std::uint8_t> data;  // Ethernet frame
};

// Reads frames until `match` accepts one (other traffic, e.g. IPv6 neighbour discovery, is
// skipped), or gives up after `timeout_ms`.
std::optional<Frame> read_frame(const Tap& tap, const std::function<bool(const Frame&)>& match,
                                int timeout_ms = 3000) {
    std::vector<std::uint8_t> buf(65536);
    VirtioNetHeader header;
    const std::array<iovec, 2> iov{{{&header, sizeof(header)}, {buf.data(), buf.size()}}};
    for (int waited = 0; waited < timeout_ms;) {
        const std::int64_t n = tap.readv(iov);
        if (n == -EAGAIN) {
            pollfd p{tap.fd(), POLLIN, 0};
            ::poll(&p, 1, 50);
            waited += 50;
            continue;
        }
        EXPECT_GE(n, static_cast<std::int64_t>(sizeof(header)))
            << std::strerror(static_cast<int>(-n));
        if (n < static_cast<std::int64_t>(sizeof(header))) {
            return std::nullopt;
        }
        Frame f{header, std::vector<std::uint8_t>(buf.begin(), buf.begin() + (n - 12))};
        if (match(f)) {
            return f;
        }
    }
    return std::nullopt;
}

std::uint16_t be16(const std::vector<std::uint8_t>& d, std::size_t at) {
    return static_cast<std::uint16_t>(d[at] << 8 | d[at + 1]);
}

void put16(std::vector<std::uint8_t>& d, std::size_t at, std::uint16_t v) {
    d[at] = static_cast<std::uint8_t>(v >> 8);
    d[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint16_t ip_checksum(const std::uint8_t* p, std::size_t len, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < len; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (len % 2 != 0) {
        sum += static_cast<std::uint32_t>(p[len - 1] << 8);
    }
    while (sum >> 16 != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

// Ethernet + IPv4 + UDP from kGuestIp:40000 to kHostIp:port. The UDP checksum field holds
// `udp_checksum` as given.
std::vector<std::uint8_t> udp_frame(const std::array<std::uint8_t, 6>& dst_mac, std::uint16_t port,
                                    const std::string& payload, std::uint16_t udp_checksum) {
    const std::size_t ip_len = 20 + 8 + payload.size();
    std::vector<std::uint8_t> f(14 + ip_len, 0);
    std::memcpy(f.data(), dst_mac.data(), 6);
    const std::array<std::uint8_t, 6> src{0x02, 0, 0, 0, 0, 0x02};
    std::memcpy(f.data() + 6, src.data(), 6);
    put16(f, 12, ETHERTYPE_IP);
    std::uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    put16(f, 16, static_cast<std::uint16_t>(ip_len));
    put16(f, 20, 0x4000);  // DF
    ip[8] = 64;            // TTL
    ip[9] = IPPROTO_UDP;
    ::inet_pton(AF_INET, kGuestIp, ip + 12);
    ::inet_pton(AF_INET, kHostIp, ip + 16);
    put16(f, 24, ip_checksum(ip, 20));
    put16(f, 34, 40000);
    put16(f, 36, port);
    put16(f, 38, static_cast<std::uint16_t>(8 + payload.size()));
    put16(f, 40, udp_checksum);
    std::memcpy(f.data() + 42, payload.data(), payload.size());
    return f;
}

std::int64_t write_frame(const Tap& tap, const VirtioNetHeader& header,
                         const std::vector<std::uint8_t>& frame) {
    const std::array<iovec, 2> iov{{{const_cast<VirtioNetHeader*>(&header), sizeof(header)},
                                    {const_cast<std::uint8_t*>(frame.data()), frame.size()}}};
    return tap.writev(iov);
}

TEST(Tap, FramesWrittenToTheTapReachTheHostStack) {
    in_fresh_netns([] {
        auto tap = make_tap("vtap0");
        ASSERT_TRUE(tap);
        const unsigned ifindex = ::if_nametoindex("vtap0");
        ASSERT_NE(ifindex, 0U);

        UniqueFd packet(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kTestEtherType)));
        ASSERT_TRUE(packet.valid()) << std::strerror(errno);
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(kTestEtherType);
        sll.sll_ifindex = static_cast<int>(ifindex);
        ASSERT_EQ(::bind(packet.get(), reinterpret_cast<sockaddr*>(&sll), sizeof(sll)), 0);

        std::vector<std::uint8_t> frame(14);
        const auto mac = if_mac("vtap0");
        std::memcpy(frame.data(), mac.data(), 6);
        const std::array<std::uint8_t, 6> src{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
        std::memcpy(frame.data() + 6, src.data(), 6);
        put16(frame, 12, kTestEtherType);
        const std::string payload = "vireo tap test: guest to host";
        frame.insert(frame.end(), payload.begin(), payload.end());

        // The header comes first and is not part of the frame the host sees.
        EXPECT_EQ(write_frame(*tap, VirtioNetHeader{}, frame),
                  static_cast<std::int64_t>(12 + frame.size()));

        pollfd p{packet.get(), POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the frame never reached the packet socket";
        std::vector<std::uint8_t> got(2048);
        const ssize_t n = ::recv(packet.get(), got.data(), got.size(), 0);
        ASSERT_GT(n, 0);
        got.resize(static_cast<std::size_t>(n));
        EXPECT_EQ(got, frame);
    });
}

TEST(Tap, HostTrafficArrivesOnTheTapWithAVnetHeader) {
    in_fresh_netns([] {
        auto tap = make_tap("vtap0");
        ASSERT_TRUE(tap);
        // A datagram to a neighbour on the link makes the host ask for its MAC first.
        UniqueFd udp = inet_socket();
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        ASSERT_EQ(::inet_pton(AF_INET, kGuestIp, &to.sin_addr), 1);
        const char msg[] = "hello";
        ASSERT_EQ(
            ::sendto(udp.get(), msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(sizeof(msg)))
            << std::strerror(errno);

        std::array<std::uint8_t, 4> guest_ip{};
        std::array<std::uint8_t, 4> host_ip{};
        ::inet_pton(AF_INET, kGuestIp, guest_ip.data());
        ::inet_pton(AF_INET, kHostIp, host_ip.data());
        auto arp = read_frame(*tap, [&](const Frame& f) {
            return f.data.size() >= 42 && be16(f.data, 12) == ETHERTYPE_ARP &&
                   be16(f.data, 20) == 1 /* request */ &&
                   std::memcmp(f.data.data() + 38, guest_ip.data(), 4) == 0;
        });
        ASSERT_TRUE(arp) << "no ARP request for " << kGuestIp << " came out of the tap";
        EXPECT_EQ(std::memcmp(arp->data.data() + 28, host_ip.data(), 4), 0);  // sender IP
        const auto mac = if_mac("vtap0");
        EXPECT_EQ(std::memcmp(arp->data.data() + 6, mac.data(), 6), 0);  // from the tap's MAC
        EXPECT_EQ(arp->header.gso_type, VirtioNetHeader::kGsoNone);
        EXPECT_EQ(arp->header.flags & VirtioNetHeader::kNeedsCsum, 0);

        // Drained: the next read says so distinctly.
        std::int64_t n = 0;
        std::vector<std::uint8_t> buf(2048);
        const iovec v{buf.data(), buf.size()};
        for (int i = 0; i < 100 && n != -EAGAIN; ++i) {
            n = tap->readv(std::span(&v, 1));
            EXPECT_TRUE(n == -EAGAIN || n > 12) << n;
        }
        EXPECT_EQ(n, -EAGAIN);
    });
}

// The vnet header is honoured on write: a UDP datagram with a wrong checksum is dropped, the same
// datagram marked NEEDS_CSUM (checksum offloaded by the "guest") is delivered.
TEST(Tap, NeedsCsumHeaderIsHonoured) {
    in_fresh_netns([] {
        auto tap = make_tap("vtap0");
        ASSERT_TRUE(tap);
        UniqueFd udp = inet_socket();
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_port = htons(5555);
        ASSERT_EQ(::inet_pton(AF_INET, kHostIp, &local.sin_addr), 1);
        ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0)
            << std::strerror(errno);
        const auto mac = if_mac("vtap0");

        const auto bad = udp_frame(mac, 5555, "dropped", 0x1234);
        ASSERT_EQ(write_frame(*tap, VirtioNetHeader{}, bad),
                  static_cast<std::int64_t>(12 + bad.size()));
        pollfd p{udp.get(), POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 200), 0) << "a datagram with a bad checksum was delivered";

        VirtioNetHeader h;
        h.flags = VirtioNetHeader::kNeedsCsum;
        h.csum_start = 14 + 20;  // the UDP header
        h.csum_offset = 6;       // its checksum field
        const auto partial = udp_frame(mac, 5555, "offloaded", 0x1234);
        ASSERT_EQ(write_frame(*tap, h, partial), static_cast<std::int64_t>(12 + partial.size()));
        ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the NEEDS_CSUM datagram was not delivered";
        char got[64] = {};
        EXPECT_EQ(::recv(udp.get(), got, sizeof(got), 0), 9);
        EXPECT_STREQ(got, "offloaded");
    });
}

TEST(Tap, OffloadsReportWhatTheTapAccepted) {
    in_fresh_netns([] {
        auto tap = Tap::open("vtap0");
        ASSERT_TRUE(tap.ok()) << tap.error().message();
        EXPECT_EQ(tap->offload(), 0U);
        auto all = tap->set_offload(Tap::kOffloadAll);
        ASSERT_TRUE(all.ok()) << all.error().message();
        // Linux has taken all five since 2.6.x (UFO is accepted and ignored since 4.14).
        EXPECT_EQ(*all, Tap::kOffloadAll);
        EXPECT_EQ(tap->offload(), Tap::kOffloadAll);
        // Inconsistent requests are reduced, not refused: TSO without CSUM, ECN without TSO.
        EXPECT_EQ(*tap->set_offload(Tap::kOffloadTso4), 0U);
        EXPECT_EQ(*tap->set_offload(Tap::kOffloadCsum | Tap::kOffloadTsoEcn), Tap::kOffloadCsum);
        EXPECT_EQ(*tap->set_offload(0), 0U);
        auto unknown = tap->set_offload(0x8000);
        ASSERT_FALSE(unknown.ok());
        EXPECT_EQ(unknown.error().message(), "tap 'vtap0': unknown offload flags 0x8000");
    });
}

TEST(Tap, AttachesToAnExistingPersistentTap) {
    in_fresh_netns([] {
        {
            auto first = Tap::open("vtap1");
            ASSERT_TRUE(first.ok()) << first.error().message();
            ASSERT_EQ(::ioctl(first->fd(), TUNSETPERSIST, 1), 0) << std::strerror(errno);
        }
        ASSERT_NE(::if_nametoindex("vtap1"), 0U);
        auto again = Tap::open("vtap1");
        ASSERT_TRUE(again.ok()) << again.error().message();
        EXPECT_FALSE(again->created());
        EXPECT_EQ(again->name(), "vtap1");
        EXPECT_TRUE(again->set_up().ok());
        EXPECT_EQ(::ioctl(again->fd(), TUNSETPERSIST, 0), 0);  // gone when closed
    });
}

TEST(Tap, KernelChosenName) {
    in_fresh_netns([] {
        auto tap = Tap::open("");
        ASSERT_TRUE(tap.ok()) << tap.error().message();
        EXPECT_EQ(tap->name().rfind("tap", 0), 0U) << tap->name();
        EXPECT_NE(::if_nametoindex(tap->name().c_str()), 0U);
        EXPECT_TRUE(tap->created());
    });
}

std::string open_error(const std::string& name) {
    auto tap = Tap::open(name);
    EXPECT_FALSE(tap.ok()) << name << " opened";
    return tap.ok() ? "" : tap.error().message();
}

TEST(Tap, ClearErrors) {
    in_fresh_netns([] {
        EXPECT_EQ(open_error("lo"), "interface 'lo' exists but is not a tap");
        EXPECT_EQ(open_error("vireo-tap-name-x"),
                  "tap name 'vireo-tap-name-x' is too long: 16 characters, at most 15");
        EXPECT_NE(open_error("a/b").find("not a valid interface name"), std::string::npos);
        EXPECT_NE(open_error("tap%d").find("not a valid interface name"), std::string::npos);

        auto busy = Tap::open("vtap2");
        ASSERT_TRUE(busy.ok()) << busy.error().message();
        EXPECT_EQ(open_error("vtap2"), "tap 'vtap2' is in use by another process or file");

        // A tun (layer 3) device of the same driver.
        UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        ASSERT_TRUE(tun.valid());
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, "vtun0", IFNAMSIZ - 1);
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        ASSERT_EQ(::ioctl(tun.get(), TUNSETIFF, &ifr), 0) << std::strerror(errno);
        EXPECT_EQ(open_error("vtun0"), "interface 'vtun0' is a tun (layer 3) device, not a tap");
    });
}

TEST(Tap, CreatingWithoutNetAdminSaysSo) {
    in_fresh_netns([] {
        // Drop CAP_NET_ADMIN from this thread's effective set only (capset acts on the caller).
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        std::array<__user_cap_data_struct, 2> caps{};
        ASSERT_EQ(::syscall(SYS_capget, &header, caps.data()), 0);
        caps[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
        ASSERT_EQ(::syscall(SYS_capset, &header, caps.data()), 0) << std::strerror(errno);
        EXPECT_EQ(open_error("vtap3"), "creating tap 'vtap3' needs CAP_NET_ADMIN");
        EXPECT_EQ(::if_nametoindex("vtap3"), 0U);
    });
}

}  // namespace
}  // namespace vireo
