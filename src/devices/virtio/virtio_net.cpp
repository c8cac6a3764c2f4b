#include "devices/virtio/virtio_net.h"

#include "base/state_archive.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include <spdlog/spdlog.h>

#include "backends/net/vnet_header.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

namespace {

// §5.1.3 feature bits.
constexpr unsigned kCsum = 0;
constexpr unsigned kGuestCsum = 1;
constexpr unsigned kMac = 5;
constexpr unsigned kGuestTso4 = 7;
constexpr unsigned kGuestTso6 = 8;
constexpr unsigned kGuestEcn = 9;
constexpr unsigned kGuestUfo = 10;
constexpr unsigned kHostTso4 = 11;
constexpr unsigned kHostTso6 = 12;
constexpr unsigned kHostEcn = 13;
constexpr unsigned kHostUfo = 14;
constexpr unsigned kMrgRxbuf = 15;
constexpr unsigned kStatus = 16;

constexpr std::uint16_t kLinkUp = 1;  // §5.1.4 VIRTIO_NET_S_LINK_UP

constexpr std::size_t kRxQueue = 0;
constexpr std::size_t kTxQueue = 1;
// Largest frame a tap hands over with TSO/UFO on: a 64 KiB IP packet plus Ethernet/VLAN headers.
constexpr std::size_t kMaxFrame = Tap::kVnetHeaderSize + 65550;

}  // namespace

Result<std::unique_ptr<VirtioNet>> VirtioNet::create(Tap tap, MacAddress mac) {
    // Learn what the tap can do for the guest, then start with nothing until the driver says.
    auto accepted = tap.set_offload(Tap::kOffloadAll);
    const unsigned offloads = accepted ? *accepted : 0;
    if (auto r = tap.set_offload(0); !r) {
        return r.error();
    }
    return std::unique_ptr<VirtioNet>(new VirtioNet(std::move(tap), mac, offloads));
}

VirtioNet::VirtioNet(Tap tap, MacAddress mac, unsigned tap_offloads)
    : m_tap(std::move(tap)),
      m_mac(mac),
      m_tap_offloads(tap_offloads),
      m_queue_sizes{kMaxQueueSize, kMaxQueueSize},
      m_frame(kMaxFrame) {
    m_chain.buffers.reserve(kMaxQueueSize);
    m_iov.reserve(kMaxQueueSize);
}

VirtioNet::~VirtioNet() {
    reset();
}

Result<void> VirtioNet::announce() {
    // vnet header (all zero: no offloads), then Ethernet: broadcast destination, the guest's
    // MAC as source, EtherType 0x8035 (RARP); then RFC 903's reverse request (opcode 3) with
    // the guest's MAC as both sender and target hardware address and zero protocol addresses,
    // padded to the 60-byte minimum frame.
    std::array<std::uint8_t, Tap::kVnetHeaderSize + 60> frame{};
    std::uint8_t* eth = frame.data() + Tap::kVnetHeaderSize;
    const auto& mac = m_mac.bytes();
    std::fill_n(eth, 6, 0xff);
    std::copy(mac.begin(), mac.end(), eth + 6);
    eth[12] = 0x80;
    eth[13] = 0x35;
    std::uint8_t* rarp = eth + 14;
    rarp[1] = 1;     // hardware type: Ethernet
    rarp[2] = 0x08;  // protocol type: IPv4
    rarp[4] = 6;     // hardware address length
    rarp[5] = 4;     // protocol address length
    rarp[7] = 3;     // opcode: reverse request
    std::copy(mac.begin(), mac.end(), rarp + 8);
    std::copy(mac.begin(), mac.end(), rarp + 18);
    iovec v{frame.data(), frame.size()};
    const std::int64_t n = m_tap.writev(std::span(&v, 1));
    if (n < 0) {
        return Error::from_errno(fmt::format("{}: announcing the guest", name()),
                                 static_cast<int>(-n));
    }
    return ok();
}

std::uint16_t VirtioNet::device_type() const {
    return kDeviceNet;
}

std::uint64_t VirtioNet::device_features() const {
    // Transmit offloads: the tap honours the header on every write.
    std::uint64_t f = feature(kCsum) | feature(kHostTso4) | feature(kHostTso6) | feature(kHostEcn) |
                      feature(kHostUfo) | feature(kMac) | feature(kMrgRxbuf) | feature(kStatus);
    // Receive offloads only as far as the tap can produce them.
    if ((m_tap_offloads & Tap::kOffloadCsum) != 0) {
        f |= feature(kGuestCsum);
        if ((m_tap_offloads & Tap::kOffloadTso4) != 0) {
            f |= feature(kGuestTso4);
        }
        if ((m_tap_offloads & Tap::kOffloadTso6) != 0) {
            f |= feature(kGuestTso6);
        }
        if ((m_tap_offloads & Tap::kOffloadTsoEcn) != 0) {
            f |= feature(kGuestEcn);
        }
        if ((m_tap_offloads & Tap::kOffloadUfo) != 0) {
            f |= feature(kGuestUfo);
        }
    }
    return f;
}

std::span<const std::uint16_t> VirtioNet::queue_max_sizes() const {
    return m_queue_sizes;
}

void VirtioNet::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    // §5.1.4: u8 mac[6]; le16 status; le16 max_virtqueue_pairs; le16 mtu.
    std::array<std::uint8_t, 12> c{};
    std::copy(m_mac.bytes().begin(), m_mac.bytes().end(), c.begin());
    c[6] = m_link_up.load() ? kLinkUp : 0;
    c[8] = 1;
    copy_config(c, offset, data);
}

Result<void> VirtioNet::on_activate(EventLoop& loop) {
    unsigned want = 0;
    if (has_feature(kGuestCsum)) {
        want |= Tap::kOffloadCsum;
        want |= has_feature(kGuestTso4) ? Tap::kOffloadTso4 : 0U;
        want |= has_feature(kGuestTso6) ? Tap::kOffloadTso6 : 0U;
        want |= has_feature(kGuestEcn) ? Tap::kOffloadTsoEcn : 0U;
        want |= has_feature(kGuestUfo) ? Tap::kOffloadUfo : 0U;
    }
    if (auto r = m_tap.set_offload(want); !r) {
        return r.error();
    }
    m_frame_len = 0;
    m_frame_charged = false;
    m_tx_blocked = false;
    m_tx_limited = false;
    m_rx_limited = false;
    m_watch_in = true;
    m_watch_out = false;
    if (auto r = watch_rate_limiter(loop, m_tx_limiter.get(),
                                    [this] {
                                        m_tx_limited = false;
                                        transmit();
                                    });
        !r) {
        return r;
    }
    if (auto r = watch_rate_limiter(loop, m_rx_limiter.get(),
                                    [this] {
                                        m_rx_limited = false;
                                        receive();
                                    });
        !r) {
        return r;
    }
    if (!m_link_up) {
        return ok();  // the tap went away in an earlier activation: nothing to read
    }
    return loop.add(m_tap.fd(), EPOLLIN, [this](std::uint32_t events) {
        if (failed()) {
            return;
        }
        // A detached tap polls EPOLLERR forever, whatever events are asked for.
        if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
            tap_gone(-EBADFD);
            return;
        }
        if ((events & EPOLLOUT) != 0 && m_tx_blocked) {
            m_tx_blocked = false;
            watch_tap(m_watch_in, false);
            transmit();
        }
        if ((events & EPOLLIN) != 0) {
            receive();
        }
    });
}

void VirtioNet::on_reset() {
    m_frame_len = 0;
    m_frame_charged = false;
    static_cast<void>(m_tap.set_offload(0));
}

void VirtioNet::tap_gone(std::int64_t error) {
    if (!m_link_up) {
        return;
    }
    m_link_up = false;
    static_cast<void>(loop().remove(m_tap.fd()));
    counters().errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{}: the tap cannot be read ({}): receive stopped, link down", name(),
                 std::strerror(static_cast<int>(-error)));
    // §5.1.4: VIRTIO_NET_S_LINK_UP cleared, announced as a configuration change.
    signal_config();
}

void VirtioNet::watch_tap(bool readable, bool writable) {
    if (!m_link_up) {
        return;
    }
    if (readable == m_watch_in && writable == m_watch_out) {
        return;
    }
    m_watch_in = readable;
    m_watch_out = writable;
    static_cast<void>(
        loop().modify(m_tap.fd(), (readable ? EPOLLIN : 0U) | (writable ? EPOLLOUT : 0U)));
}

void VirtioNet::process_queue(std::size_t index) {
    if (index == kTxQueue) {
        transmit();
    } else if (index == kRxQueue) {
        receive();
    }
}

void VirtioNet::transmit() {
    if (m_tx_blocked || m_tx_limited || !queue(kTxQueue).active()) {
        return;
    }
    serve_queue(
        kTxQueue, m_chain, [this](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
            m_iov.clear();
            for (const auto& b : chain.buffers) {
                if (b.writable || b.len == 0) {
                    continue;
                }
                auto s = memory().slice(b.addr, b.len);
                if (s) {
                    m_iov.push_back(iovec{s->data(), s->size()});
                }
            }
            if (m_tx_limiter && !m_tx_limiter->consume(chain.readable_bytes, 1)) {
                queue(kTxQueue).undo_pop();  // sent when the limiter's timer fires
                m_tx_limited = true;
                return std::nullopt;
            }
            const std::int64_t n =
                chain.readable_bytes > Tap::kVnetHeaderSize ? m_tap.writev(m_iov) : -EINVAL;
            if (n == -EAGAIN) {
                // The tap's queue is full: retry this frame when it drains (charged again then).
                if (m_tx_limiter) {
                    m_tx_limiter->give_back(chain.readable_bytes, 1);
                }
                queue(kTxQueue).undo_pop();
                m_tx_blocked = true;
                watch_tap(m_watch_in, true);
                return std::nullopt;
            }
            if (n < 0) {
                counters().errors.fetch_add(1, std::memory_order_relaxed);  // dropped, like a wire
            } else {
                counters().requests.fetch_add(1, std::memory_order_relaxed);
                counters().bytes_written.fetch_add(static_cast<std::uint64_t>(n),
                                                   std::memory_order_relaxed);
            }
            return 0;
        });
}

void VirtioNet::receive() {
    if (!queue(kRxQueue).active() || !m_link_up || m_rx_limited) {
        return;
    }
    bool delivered = false;
    for (;;) {
        if (m_frame_len == 0) {
            iovec v{m_frame.data(), m_frame.size()};
            const std::int64_t n = m_tap.readv(std::span(&v, 1));
            if (n == -EAGAIN) {
                watch_tap(true, m_watch_out);
                break;
            }
            if (n < 0 && n != -EINTR) {
                // -EBADFD (the tap was deleted) and other lasting errors: reading again would
                // only spin on the same error.
                tap_gone(n);
                break;
            }
            if (n < 0 || static_cast<std::size_t>(n) <= Tap::kVnetHeaderSize) {
                counters().errors.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            m_frame_len = static_cast<std::size_t>(n);
        }
        if (m_rx_limiter && !m_frame_charged) {
            if (!m_rx_limiter->consume(m_frame_len, 1)) {
                // The frame stays pending and the tap unread until the limiter's timer.
                m_rx_limited = true;
                watch_tap(false, m_watch_out);
                break;
            }
            m_frame_charged = true;
        }
        if (!deliver_frame()) {
            // No buffers: stop reading the tap until the driver posts more (an rx kick).
            watch_tap(false, m_watch_out);
            break;
        }
        if (failed()) {
            return;
        }
        delivered = true;
    }
    if (delivered) {
        notify_used(kRxQueue);
    }
}

bool VirtioNet::deliver_frame() {
    auto& q = queue(kRxQueue);
    const bool mergeable = has_feature(kMrgRxbuf);
    std::size_t copied = 0;
    std::uint16_t chains = 0;
    // Heads and lengths of the chains used so far for this frame (at most the queue size).
    std::array<std::pair<std::uint16_t, std::uint32_t>, kMaxQueueSize> used{};
    std::array<std::optional<GuestAddress>, 2> num_buffers_at;
    while (copied < m_frame_len) {
        auto popped = q.pop(memory(), m_chain);
        if (!popped) {
            fail("receive queue: " + popped.error().message());
            return true;
        }
        if (!*popped) {
            if (q.enable_notification(memory())) {
                continue;
            }
            // Give back what this frame took; it is delivered whole or not at all.
            for (std::uint16_t i = 0; i < chains; ++i) {
                q.undo_pop();
            }
            return false;
        }
        std::uint32_t written = 0;
        for (const auto& b : m_chain.buffers) {
            if (!b.writable || copied == m_frame_len) {
                continue;
            }
            const auto n =
                static_cast<std::uint32_t>(std::min<std::size_t>(b.len, m_frame_len - copied));
            auto dst = memory().slice(b.addr, n);
            if (!dst) {
                continue;
            }
            std::memcpy(dst->data(), m_frame.data() + copied, n);
            memory().note_write(b.addr, n);
            for (std::size_t i = 0; i < 2; ++i) {
                const std::size_t at = offsetof(VirtioNetHeader, num_buffers) + i;
                if (at >= copied && at < copied + n) {
                    num_buffers_at[i] = GuestAddress{b.addr.value + (at - copied)};
                }
            }
            copied += n;
            written += n;
        }
        // chains < q.size() <= the queue's maximum <= used.size(): the validated size, which
        // the driver cannot change while the queue is active.
        used[chains++] = {m_chain.head, written};
        if (!mergeable && copied < m_frame_len) {
            // §5.1.6.3.1: without mergeable buffers each buffer must hold a whole frame; this one
            // does not, so the frame is dropped and the chain returned empty.
            counters().errors.fetch_add(1, std::memory_order_relaxed);
            m_frame_len = 0;
            m_frame_charged = false;
            if (auto r = q.add_used(memory(), m_chain.head, 0); !r) {
                fail(r.error().message());
            }
            return true;
        }
        if (chains >= q.size() && copied < m_frame_len) {
            counters().errors.fetch_add(1, std::memory_order_relaxed);
            break;  // a frame larger than the whole ring: deliver what fits
        }
    }
    // §5.1.6.4: num_buffers (frame bytes 10-11) tells the driver how many chains the frame
    // spans; it is only known now, so it is written where those two bytes landed.
    // Without MRG_RXBUF it is 1, the one chain used (§5.1.6.4.1).
    const std::array<std::uint8_t, 2> count{static_cast<std::uint8_t>(chains),
                                            static_cast<std::uint8_t>(chains >> 8)};
    for (std::size_t i = 0; i < 2; ++i) {
        if (num_buffers_at[i]) {
            static_cast<void>(memory().write_obj(*num_buffers_at[i], count[i]));
        }
    }
    for (std::uint16_t i = 0; i < chains; ++i) {
        if (auto r = q.add_used(memory(), used[i].first, used[i].second); !r) {
            fail(r.error().message());
            return true;
        }
    }
    counters().bytes_read.fetch_add(copied, std::memory_order_relaxed);
    m_frame_len = 0;
    m_frame_charged = false;
    return true;
}

namespace {

// The saved NIC: the MAC, then the limiters' buckets. A 6-byte state is the MAC alone (vireo
// before rate limiters).
struct NetSavedState {
    MacAddress::Bytes mac{};
    std::optional<RateLimiterState> rx;
    std::optional<RateLimiterState> tx;
};

template <typename Ar>
void persist(Ar& ar, NetSavedState& s) {
    ar(s.mac);
    ar.opt(s.rx);
    ar.opt(s.tx);
}

}  // namespace

std::vector<std::uint8_t> VirtioNet::save_device_state() const {
    NetSavedState s;
    s.mac = m_mac.bytes();
    if (m_rx_limiter) {
        s.rx = m_rx_limiter->state();
    }
    if (m_tx_limiter) {
        s.tx = m_tx_limiter->state();
    }
    return save_to_bytes(s);
}

Result<void> VirtioNet::restore_device_state(std::span<const std::uint8_t> state) {
    NetSavedState s;
    if (state.size() == s.mac.size()) {
        std::copy(state.begin(), state.end(), s.mac.begin());
    } else {
        auto loaded = load_from_bytes<NetSavedState>(state);
        if (!loaded) {
            return loaded.error().wrap("saved virtio-net state");
        }
        s = std::move(loaded).value();
    }
    if (s.rx && m_rx_limiter) {
        if (auto r = m_rx_limiter->restore(*s.rx); !r) {
            return r.error().wrap("rx_rate_limiter");
        }
    }
    if (s.tx && m_tx_limiter) {
        if (auto r = m_tx_limiter->restore(*s.tx); !r) {
            return r.error().wrap("tx_rate_limiter");
        }
    }
    m_mac = MacAddress(s.mac);
    return ok();
}

}  // namespace vireo::virtio
