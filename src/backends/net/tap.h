// A tap interface: Ethernet frames between a virtio-net device and the host's network stack.
//
// Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, single queue, non-blocking, close-on-exec.
// Every frame read or written starts with a 12-byte VirtioNetHeader (vnet_header.h), then the
// Ethernet frame (no preamble, no FCS).
//
// Threading: one device thread owns the Tap; readv/writev/set_offload are not synchronized.
// fd() is for that thread's EventLoop (EPOLLIN for frames to read, EPOLLOUT after a writev
// returned -EAGAIN).
//
// Lifetime: a tap this process created (created() is true) is not persistent and disappears when
// the Tap is destroyed; a tap that existed before (e.g. `ip tuntap add mode tap`) stays.
//
// Everything here acts on the network namespace of the calling thread at open().
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

class Tap {
public:
    static constexpr std::size_t kVnetHeaderSize = 12;
    // Interface names are at most IFNAMSIZ - 1 characters.
    static constexpr std::size_t kMaxNameLength = 15;

    // TUNSETOFFLOAD flags (values of TUN_F_*). They say what the tap may hand *to us*, i.e. to
    // the guest's receive queue, so enable only what the guest negotiated:
    //   kOffloadCsum   <- VIRTIO_NET_F_GUEST_CSUM (frames with kNeedsCsum, partial checksum)
    //   kOffloadTso4   <- VIRTIO_NET_F_GUEST_TSO4,  kOffloadTso6 <- VIRTIO_NET_F_GUEST_TSO6
    //   kOffloadTsoEcn <- VIRTIO_NET_F_GUEST_ECN,   kOffloadUfo  <- VIRTIO_NET_F_GUEST_UFO
    // Frames the guest sends may use checksum/GSO offloads (VIRTIO_NET_F_HOST_*, CSUM)
    // regardless: the tap always honours the header on write.
    static constexpr unsigned kOffloadCsum = 0x01;
    static constexpr unsigned kOffloadTso4 = 0x02;
    static constexpr unsigned kOffloadTso6 = 0x04;
    static constexpr unsigned kOffloadTsoEcn = 0x08;
    static constexpr unsigned kOffloadUfo = 0x10;
    static constexpr unsigned kOffloadAll =
        kOffloadCsum | kOffloadTso4 | kOffloadTso6 | kOffloadTsoEcn | kOffloadUfo;

    // Attaches to the tap `name` if it exists, else creates it. An empty name lets the kernel
    // pick one (tapN). Errors name the problem: no /dev/net/tun, permission (creating needs
    // CAP_NET_ADMIN), name too long or invalid, the interface exists but is not a tap (or is a
    // tun, or a multi-queue tap), the tap is in use by another process. Offloads start off.
    static Result<Tap> open(std::string_view name);

    Tap(Tap&&) = default;
    Tap& operator=(Tap&&) = default;
    Tap(const Tap&) = delete;
    Tap& operator=(const Tap&) = delete;
    ~Tap() = default;

    // The interface name (the kernel's choice when open() was given none).
    const std::string& name() const { return m_name; }
    int fd() const { return m_fd.get(); }
    bool created() const { return m_created; }

    // Sets IFF_UP (SIOCSIFFLAGS), so a tap vireo created carries traffic without an `ip link
    // set up`. Addresses and bridges stay the host administrator's business.
    Result<void> set_up();

    // Asks for `flags` (kOffload*); returns the subset the tap accepted, which is what the device
    // may then offer the guest. Consistent subsets only: TSO and UFO need CSUM, ECN needs TSO;
    // when the kernel refuses a combination, the flags are dropped newest first (UFO, ECN, TSO6,
    // TSO4, CSUM) until it accepts. Flags outside kOffloadAll are an error.
    Result<unsigned> set_offload(unsigned flags);
    // The flags in force.
    unsigned offload() const { return m_offload; }

    // One frame each, header first. Return the byte count (header included), or -errno:
    // -EAGAIN distinctly when no frame is waiting (readv) or the tap's queue is full (writev).
    // readv buffers should hold the largest frame: 12 + 65550 bytes with TSO/UFO offloads on,
    // 12 + 1514 (+4 with a VLAN tag) without; the kernel cuts a frame that does not fit.
    std::int64_t readv(std::span<const iovec> iov) const;
    std::int64_t writev(std::span<const iovec> iov) const;

private:
    Tap(UniqueFd fd, std::string name, bool created)
        : m_fd(std::move(fd)), m_name(std::move(name)), m_created(created) {}

    UniqueFd m_fd;
    std::string m_name;
    bool m_created = false;
    unsigned m_offload = 0;
};

}  // namespace vireo
