#include "backends/net/tap.h"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "backends/net/vnet_header.h"

namespace vireo {

static_assert(Tap::kOffloadCsum == TUN_F_CSUM && Tap::kOffloadTso4 == TUN_F_TSO4 &&
              Tap::kOffloadTso6 == TUN_F_TSO6 && Tap::kOffloadTsoEcn == TUN_F_TSO_ECN &&
              Tap::kOffloadUfo == TUN_F_UFO);
static_assert(Tap::kVnetHeaderSize == sizeof(VirtioNetHeader));
static_assert(Tap::kMaxNameLength == IFNAMSIZ - 1);

namespace {

constexpr const char* kTunPath = "/dev/net/tun";

// What the kernel's dev_valid_name() refuses, checked first so that EINVAL from TUNSETIFF can only
// mean "exists but is not a tap". '%' is refused too: the kernel would pick a name from it.
Result<void> check_name(std::string_view name) {
    if (name.size() > Tap::kMaxNameLength) {
        return Error(fmt::format("tap name '{}' is too long: {} characters, at most {}", name,
                                 name.size(), Tap::kMaxNameLength));
    }
    if (name == "." || name == "..") {
        return Error(fmt::format("tap name '{}' is not a valid interface name", name));
    }
    for (char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= ' ' || u >= 0x7f || c == '/' || c == ':' || c == '%') {
            return Error(
                fmt::format("tap name '{}' is not a valid interface name (no spaces, "
                            "'/', ':', '%' or control characters)",
                            name));
        }
    }
    return ok();
}

// An AF_INET datagram socket for interface ioctls, in the calling thread's namespace.
Result<UniqueFd> ioctl_socket() {
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) {
        return Error::from_errno("socket(AF_INET)");
    }
    return s;
}

void copy_name(ifreq& ifr, std::string_view name) {
    std::memcpy(ifr.ifr_name, name.data(), name.size());  // size checked: < IFNAMSIZ
    ifr.ifr_name[name.size()] = '\0';
}

// Why TUNSETIFF refused an interface that exists: ask its driver (ethtool; the tun driver reports
// "tun" with bus "tap" or "tun").
Error describe_existing(std::string_view name) {
    auto sock = ioctl_socket();
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq ifr{};
    copy_name(ifr, name);
    ifr.ifr_data = reinterpret_cast<char*>(&info);  // the SIOCETHTOOL ABI passes a pointer
    if (!sock || ::ioctl(sock->get(), SIOCETHTOOL, &ifr) < 0) {
        return Error(fmt::format("interface '{}' exists but is not a tap", name), EINVAL);
    }
    const std::string_view driver(info.driver, ::strnlen(info.driver, sizeof(info.driver)));
    const std::string_view bus(info.bus_info, ::strnlen(info.bus_info, sizeof(info.bus_info)));
    if (driver.empty()) {
        return Error(fmt::format("interface '{}' exists but is not a tap", name), EINVAL);
    }
    if (driver != "tun") {
        return Error(
            fmt::format("interface '{}' exists but is not a tap (driver '{}')", name, driver),
            EINVAL);
    }
    if (bus == "tun") {
        return Error(fmt::format("interface '{}' is a tun (layer 3) device, not a tap", name),
                     EINVAL);
    }
    return Error(fmt::format("tap '{}' refused the attach: it is probably a multi-queue tap "
                             "(vireo opens taps single-queue)",
                             name),
                 EINVAL);
}

}  // namespace

Result<Tap> Tap::open(std::string_view name) {
    if (auto r = check_name(name); !r) {
        return r.error();
    }
    const std::string n(name);
    // Whether this open creates the interface: racy against another process creating it at the
    // same moment, which only affects created() and the wording of errors.
    const bool existed = !n.empty() && ::if_nametoindex(n.c_str()) != 0;

    UniqueFd fd(::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
        const int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO) {
            return Error::from_errno(fmt::format("open {} (no tun/tap support here: load the tun "
                                                 "module or create the node, c 10 200)",
                                                 kTunPath),
                                     e);
        }
        return Error::from_errno(fmt::format("open {}", kTunPath), e);
    }

    unsigned features = 0;
    if (::ioctl(fd.get(), TUNGETFEATURES, &features) < 0) {
        return Error::from_errno("TUNGETFEATURES");
    }
    constexpr unsigned kNeeded = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if ((features & kNeeded) != kNeeded) {
        return Error(fmt::format("{}: the kernel lacks tap with vnet headers (features {:#x})",
                                 kTunPath, features));
    }

    ifreq ifr{};
    copy_name(ifr, name);
    ifr.ifr_flags = static_cast<short>(kNeeded);  // 0x5002 fits a short
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
        const int e = errno;
        switch (e) {
            case EPERM:
                return Error(existed ? fmt::format("attaching to tap '{}' not permitted: it "
                                                   "belongs to another user (or needs "
                                                   "CAP_NET_ADMIN)",
                                                   n)
                                     : fmt::format("creating tap '{}' needs CAP_NET_ADMIN", n),
                             e);
            case EBUSY:
                return Error(fmt::format("tap '{}' is in use by another process or file", n), e);
            case EINVAL:
                if (existed) {
                    return describe_existing(n);
                }
                break;
            default:
                break;
        }
        return Error::from_errno(fmt::format("TUNSETIFF '{}'", n), e);
    }
    const std::string actual(ifr.ifr_name, ::strnlen(ifr.ifr_name, IFNAMSIZ));

    int header_size = static_cast<int>(kVnetHeaderSize);
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &header_size) < 0) {
        return Error::from_errno(fmt::format("tap '{}': TUNSETVNETHDRSZ", actual));
    }
    // A tap attached to may keep offloads from its previous user: start from none.
    if (::ioctl(fd.get(), TUNSETOFFLOAD, 0UL) < 0) {
        return Error::from_errno(fmt::format("tap '{}': TUNSETOFFLOAD", actual));
    }
    return Tap(std::move(fd), actual, !existed);
}

Result<void> Tap::set_up() {
    auto sock = ioctl_socket();
    if (!sock) {
        return sock.error().wrap(fmt::format("tap '{}' up", m_name));
    }
    ifreq ifr{};
    copy_name(ifr, m_name);
    if (::ioctl(sock->get(), SIOCGIFFLAGS, &ifr) < 0) {
        return Error::from_errno(fmt::format("tap '{}': SIOCGIFFLAGS", m_name));
    }
    if ((ifr.ifr_flags & IFF_UP) != 0) {
        return ok();
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(sock->get(), SIOCSIFFLAGS, &ifr) < 0) {
        const int e = errno;
        if (e == EPERM) {
            return Error(fmt::format("bringing tap '{}' up needs CAP_NET_ADMIN", m_name), e);
        }
        return Error::from_errno(fmt::format("tap '{}': SIOCSIFFLAGS", m_name), e);
    }
    return ok();
}

Result<unsigned> Tap::set_offload(unsigned flags) {
    if ((flags & ~kOffloadAll) != 0) {
        return Error(
            fmt::format("tap '{}': unknown offload flags {:#x}", m_name, flags & ~kOffloadAll));
    }
    // Dependencies the kernel enforces (drivers/net/tun.c set_offload): everything needs CSUM,
    // ECN needs a TSO.
    if ((flags & kOffloadCsum) == 0) {
        flags = 0;
    }
    if ((flags & (kOffloadTso4 | kOffloadTso6)) == 0) {
        flags &= ~kOffloadTsoEcn;
    }
    constexpr unsigned kDropOrder[] = {kOffloadUfo, kOffloadTsoEcn, kOffloadTso6, kOffloadTso4,
                                       kOffloadCsum};
    std::size_t next_drop = 0;
    for (;;) {
        if (::ioctl(m_fd.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0) {
            m_offload = flags;
            return flags;
        }
        if (errno != EINVAL || flags == 0) {
            return Error::from_errno(fmt::format("tap '{}': TUNSETOFFLOAD {:#x}", m_name, flags));
        }
        while (next_drop < std::size(kDropOrder) && (flags & kDropOrder[next_drop]) == 0) {
            ++next_drop;
        }
        if (next_drop == std::size(kDropOrder)) {
            flags = 0;
        } else {
            flags &= ~kDropOrder[next_drop];
            if (kDropOrder[next_drop] == kOffloadCsum) {
                flags = 0;
            } else if ((flags & (kOffloadTso4 | kOffloadTso6)) == 0) {
                flags &= ~kOffloadTsoEcn;
            }
        }
    }
}

std::int64_t Tap::readv(std::span<const iovec> iov) const {
    for (;;) {
        const ssize_t n = ::readv(m_fd.get(), iov.data(), static_cast<int>(iov.size()));
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

std::int64_t Tap::writev(std::span<const iovec> iov) const {
    for (;;) {
        const ssize_t n = ::writev(m_fd.get(), iov.data(), static_cast<int>(iov.size()));
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

}  // namespace vireo
