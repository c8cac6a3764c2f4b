#include "devices/virtio/virtio_balloon.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/state_archive.h"
#include "devices/virtio/virtio_spec.h"

namespace vireo::virtio {

namespace {

constexpr std::uint32_t kPagesPerMib = (1U << 20) / kPageSize;
// PFNs read from guest memory per step: a buffer of any length is walked in bounded pieces.
constexpr std::size_t kPfnChunk = 1024;
// One statistic on the stats queue: le16 tag, le64 value, packed (§5.5.6.3).
constexpr std::size_t kStatSize = 10;
// At most this many statistics are read from one buffer (Linux sends 10 to 16).
constexpr std::size_t kMaxStats = 64;

std::uint32_t le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

PfnRuns pfn_runs(std::span<const std::uint32_t> pfns, const GuestMemory& mem) {
    PfnRuns out;
    for (const std::uint32_t pfn : pfns) {
        const std::uint64_t gpa = static_cast<std::uint64_t>(pfn) * kPageSize;
        if (!mem.contains_range(GuestAddress{gpa}, kPageSize)) {
            ++out.invalid;
            continue;
        }
        ++out.valid;
        if (!out.runs.empty()) {
            PageRun& last = out.runs.back();
            // Joined only when the grown run still lies in one region (discard's contract).
            if (gpa == last.gpa + last.pages * kPageSize &&
                mem.contains_range(GuestAddress{last.gpa}, (last.pages + 1) * kPageSize)) {
                ++last.pages;
                continue;
            }
        }
        out.runs.push_back(PageRun{gpa, 1});
    }
    return out;
}

VirtioBalloon::VirtioBalloon(const BalloonConfig& config)
    : m_config(config),
      m_target_mib(config.amount_mib),
      m_stats_interval_s(config.stats_polling_interval_s) {
    m_queue_sizes.fill(kMaxQueueSize);
    m_queue_total =
        2 + (config.stats_polling_interval_s != 0 ? 1 : 0) + (config.free_page_reporting ? 1 : 0);
    m_chain.buffers.reserve(kMaxQueueSize);
    m_pfns.reserve(kPfnChunk);
    if (config.stats_polling_interval_s != 0) {
        m_stats_timer = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    }
}

VirtioBalloon::~VirtioBalloon() {
    reset();
}

std::uint16_t VirtioBalloon::device_type() const {
    return kDeviceBalloon;
}

std::uint64_t VirtioBalloon::device_features() const {
    std::uint64_t f = 0;
    if (m_config.stats_polling_interval_s != 0) {
        f |= 1ULL << kBalloonFeatureStatsVq;
    }
    if (m_config.deflate_on_oom) {
        f |= 1ULL << kBalloonFeatureDeflateOnOom;
    }
    if (m_config.free_page_reporting) {
        f |= 1ULL << kBalloonFeatureReporting;
    }
    return f;
}

std::span<const std::uint16_t> VirtioBalloon::queue_max_sizes() const {
    return std::span(m_queue_sizes).first(m_queue_total);
}

// struct virtio_balloon_config: le32 num_pages (the target, device-written), le32 actual (the
// driver's count of pages in the balloon).
void VirtioBalloon::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::array<std::uint8_t, 8> c{};
    const std::uint32_t target = m_target_mib.load() * kPagesPerMib;
    const std::uint32_t actual = m_actual.load();
    for (unsigned i = 0; i < 4; ++i) {
        c[i] = static_cast<std::uint8_t>(target >> (8 * i));
        c[4 + i] = static_cast<std::uint8_t>(actual >> (8 * i));
    }
    copy_config(c, offset, data);
}

void VirtioBalloon::write_config(std::uint64_t offset, std::span<const std::uint8_t> data) {
    // Only `actual` is the driver's to write; num_pages and bytes past the structure are
    // read-only (the write is ignored). A partial write changes the bytes it covers.
    std::uint32_t actual = m_actual.load();
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint64_t at = offset + i;
        if (at < 4 || at >= 8) {
            continue;
        }
        const unsigned shift = 8 * static_cast<unsigned>(at - 4);
        actual = (actual & ~(0xffU << shift)) | static_cast<std::uint32_t>(data[i]) << shift;
    }
    m_actual.store(actual);
}

BalloonConfig VirtioBalloon::config() const {
    BalloonConfig c = m_config;
    c.amount_mib = m_target_mib.load();
    c.stats_polling_interval_s = m_stats_interval_s.load();
    return c;
}

void VirtioBalloon::set_target_mib(std::uint32_t mib) {
    m_target_mib.store(mib);
    config_changed();
}

Result<void> VirtioBalloon::set_stats_interval(std::uint32_t seconds) {
    const bool on = m_config.stats_polling_interval_s != 0;
    if (on != (seconds != 0)) {
        return Error(on ? "the balloon's statistics cannot be switched off after boot (the "
                          "driver negotiated them)"
                        : "the balloon's statistics cannot be switched on after boot: they were "
                          "off when the device was created (stats_polling_interval_s 0)");
    }
    m_stats_interval_s.store(seconds);
    arm_stats_timer(seconds);
    return ok();
}

Result<BalloonStats> VirtioBalloon::stats() const {
    if (m_config.stats_polling_interval_s == 0) {
        return Error(
            "the balloon's statistics are off (PUT /balloon with stats_polling_interval_s > 0)");
    }
    BalloonStats s;
    s.target_mib = m_target_mib.load();
    s.target_pages = s.target_mib * kPagesPerMib;
    s.actual_pages = m_actual.load();
    s.actual_mib = s.actual_pages / kPagesPerMib;
    std::lock_guard lock(m_stats_mutex);
    for (std::size_t tag = 0; tag < m_stats.size(); ++tag) {
        if (m_stats[tag]) {
            s.guest.emplace_back(*balloon_stat_name(static_cast<std::uint16_t>(tag)),
                                 *m_stats[tag]);
        }
    }
    return s;
}

std::string VirtioBalloon::metrics_extra() const {
    return fmt::format(
        ",\"inflate_count\":{},\"deflate_count\":{},\"stats_updates_count\":{},"
        "\"free_page_report_count\":{},\"free_page_report_freed\":{},\"released_bytes\":{},"
        "\"released_runs\":{},\"invalid_pfns\":{}",
        m_inflated_pages.load(), m_deflated_pages.load(), m_stats_updates.load(), m_reports.load(),
        m_reported_bytes.load(), m_released_bytes.load(), m_released_runs.load(),
        m_invalid_pfns.load());
}

Result<void> VirtioBalloon::on_activate(EventLoop& loop) {
    // The driver numbers only the queues of the features it accepted (§5.5.2).
    std::size_t next = 2;
    m_stats_queue.reset();
    m_reporting_queue.reset();
    if (has_feature(kBalloonFeatureStatsVq)) {
        m_stats_queue = next++;
    }
    if (has_feature(kBalloonFeatureReporting)) {
        m_reporting_queue = next++;
    }
    if (next > queue_count()) {
        return Error(
            fmt::format("virtio-balloon: the driver accepted features needing {} queues, "
                        "the device has {}",
                        next, queue_count()));
    }
    if (!m_stats_queue) {
        return ok();
    }
    if (!m_stats_timer.valid()) {
        return Error("virtio-balloon: the statistics timer could not be created (timerfd_create)");
    }
    if (auto r =
            loop.add(m_stats_timer.get(), EPOLLIN, [this](std::uint32_t) { on_stats_timer(); });
        !r) {
        return r;
    }
    arm_stats_timer(m_stats_interval_s.load());
    return ok();
}

void VirtioBalloon::on_reset() {
    if (m_stats_timer.valid()) {
        arm_stats_timer(0);
    }
    m_stats_head.reset();
    m_stats_queue.reset();
    m_reporting_queue.reset();
    m_actual.store(0);
}

void VirtioBalloon::arm_stats_timer(std::uint32_t seconds) {
    if (!m_stats_timer.valid()) {
        return;  // not active yet: on_activate() arms it
    }
    // The first request at once (Firecracker's PATCH semantics), then every interval.
    itimerspec spec{};
    if (seconds != 0) {
        spec.it_value.tv_nsec = 1;
        spec.it_interval.tv_sec = seconds;
    }
    static_cast<void>(::timerfd_settime(m_stats_timer.get(), 0, &spec, nullptr));
}

void VirtioBalloon::process_queue(std::size_t index) {
    if (index == kInflate || index == kDeflate) {
        serve_pfn_queue(index, index == kInflate);
    } else if (m_stats_queue && index == *m_stats_queue) {
        serve_stats(index);
    } else if (m_reporting_queue && index == *m_reporting_queue) {
        serve_reporting(index);
    }
}

void VirtioBalloon::release(const PageRun& run) {
    auto released = memory().discard(GuestAddress{run.gpa}, run.pages * kPageSize);
    if (!released) {
        // Not the guest's doing (pfn_runs() checked the range): the host refused. The pages
        // stay mapped; the guest is not told, it has given them up either way.
        counters().errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("virtio-balloon: {}", released.error().message());
        return;
    }
    m_released_bytes.fetch_add(*released, std::memory_order_relaxed);
    m_released_runs.fetch_add(1, std::memory_order_relaxed);
}

void VirtioBalloon::serve_pfn_queue(std::size_t index, bool inflate) {
    // Inflated pages are released after their buffers are back on the used ring and the driver
    // is notified: the driver waits for each buffer before it allocates the next batch, so it
    // works on that while the host unmaps these (the guest gave them up when it queued them, and
    // a deflate of the same pages is served by this thread only after the release).
    VirtQueue& q = queue(index);
    bool used = false;
    m_pending.clear();
    while (next_chain(index, m_chain)) {
        counters().requests.fetch_add(1, std::memory_order_relaxed);
        for (const ChainBuffer& b : m_chain.buffers) {
            if (b.writable) {
                continue;  // §5.5.6: PFN lists are device-readable; nothing to write back
            }
            counters().bytes_written.fetch_add(b.len, std::memory_order_relaxed);
            // Whole PFNs only; a trailing partial one is ignored. Copied out of guest memory
            // in bounded pieces, then validated (the guest may change the buffer meanwhile).
            const std::uint64_t count = b.len / sizeof(std::uint32_t);
            for (std::uint64_t done = 0; done < count;) {
                const std::size_t n = std::min<std::uint64_t>(kPfnChunk, count - done);
                m_pfns.resize(n);
                auto bytes = std::as_writable_bytes(std::span(m_pfns));
                if (!memory().read(
                        GuestAddress{b.addr.value + done * sizeof(std::uint32_t)},
                        std::span(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()))) {
                    break;  // pop() checked the range; unreachable
                }
                for (auto& pfn : m_pfns) {
                    pfn = le32(reinterpret_cast<const std::uint8_t*>(&pfn));
                }
                if (inflate) {
                    // In ascending order neighbours join one run: one madvise() for many
                    // pages (Linux hands over its 256 pages per buffer in allocation order).
                    std::sort(m_pfns.begin(), m_pfns.end());
                }
                const PfnRuns runs = pfn_runs(m_pfns, memory());
                m_invalid_pfns.fetch_add(runs.invalid, std::memory_order_relaxed);
                if (inflate) {
                    m_inflated_pages.fetch_add(runs.valid, std::memory_order_relaxed);
                    m_pending.insert(m_pending.end(), runs.runs.begin(), runs.runs.end());
                    if (m_pending.size() >= kMaxPendingRuns) {
                        release_pending();  // a huge list: bounded host memory first
                    }
                } else {
                    // A deflated page is the guest's again; its next touch maps a zero page.
                    m_deflated_pages.fetch_add(runs.valid, std::memory_order_relaxed);
                }
                done += n;
            }
        }
        if (auto r = q.add_used(memory(), m_chain.head, 0); !r) {
            fail(r.error().message());
            break;
        }
        used = true;
    }
    if (used && !failed()) {
        notify_used(index);
    }
    release_pending();
}

void VirtioBalloon::release_pending() {
    for (const PageRun& run : m_pending) {
        release(run);
    }
    m_pending.clear();
}

void VirtioBalloon::serve_reporting(std::size_t index) {
    // Each buffer is a range of free guest memory (Linux adds them device-writable, §5.5.6.5);
    // pop() checked that it lies in guest RAM. Only the whole pages inside it go; the used
    // length is 0 (nothing written).
    serve_queue(index, m_chain, [&](const DescriptorChain& chain) -> std::optional<std::uint32_t> {
        counters().requests.fetch_add(1, std::memory_order_relaxed);
        m_reports.fetch_add(1, std::memory_order_relaxed);
        for (const ChainBuffer& b : chain.buffers) {
            const std::uint64_t begin = (b.addr.value + kPageSize - 1) & ~(kPageSize - 1);
            const std::uint64_t end = (b.addr.value + b.len) & ~(kPageSize - 1);
            if (end <= begin) {
                continue;
            }
            m_reported_bytes.fetch_add(end - begin, std::memory_order_relaxed);
            release(PageRun{begin, (end - begin) / kPageSize});
        }
        return 0U;
    });
}

void VirtioBalloon::serve_stats(std::size_t index) {
    // The driver keeps one buffer on this queue: read it, then hold it until the next poll
    // hands it back for fresh figures (§5.5.6.3).
    while (next_chain(index, m_chain)) {
        if (m_stats_head) {
            // A second buffer while one is held: the driver's mistake. The old one goes back.
            if (auto r = queue(index).add_used(memory(), *m_stats_head, 0); !r) {
                fail(r.error().message());
                return;
            }
            notify_used(index);
        }
        m_stats_head = m_chain.head;
        std::array<std::uint8_t, kMaxStats * kStatSize> raw{};
        std::size_t have = 0;
        for (const ChainBuffer& b : m_chain.buffers) {
            if (b.writable || have == raw.size()) {
                continue;
            }
            const std::size_t n = std::min<std::size_t>(b.len, raw.size() - have);
            if (!memory().read(b.addr, std::span(raw).subspan(have, n))) {
                break;
            }
            have += n;
        }
        std::lock_guard lock(m_stats_mutex);
        for (std::size_t at = 0; at + kStatSize <= have; at += kStatSize) {
            const auto tag = static_cast<std::uint16_t>(raw[at] | raw[at + 1] << 8);
            std::uint64_t value = 0;
            for (unsigned i = 0; i < 8; ++i) {
                value |= static_cast<std::uint64_t>(raw[at + 2 + i]) << (8 * i);
            }
            if (tag < m_stats.size()) {
                m_stats[tag] = value;  // unknown tags are ignored (§5.5.6.3)
            }
        }
        m_stats_updates.fetch_add(1, std::memory_order_relaxed);
    }
}

void VirtioBalloon::on_stats_timer() {
    std::uint64_t expirations = 0;
    if (::read(m_stats_timer.get(), &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
        spdlog::warn("virtio-balloon: reading the statistics timer: {}", std::strerror(errno));
    }
    if (!m_stats_head || !m_stats_queue || failed()) {
        return;  // the driver has not given its buffer back yet
    }
    const std::uint16_t head = *m_stats_head;
    m_stats_head.reset();
    if (auto r = queue(*m_stats_queue).add_used(memory(), head, 0); !r) {
        fail(r.error().message());
        return;
    }
    notify_used(*m_stats_queue);
}

namespace {

// The device's state beyond its queues: the target, the driver's `actual`, the polling interval
// and the statistics buffer the device holds (its head: it left the available ring already).
struct BalloonSavedState {
    std::uint32_t target_mib = 0;
    std::uint32_t actual = 0;
    std::uint32_t stats_interval_s = 0;
    std::optional<std::uint16_t> stats_head;
};

template <typename Ar>
void persist(Ar& ar, BalloonSavedState& s) {
    ar(s.target_mib, s.actual, s.stats_interval_s);
    ar.opt(s.stats_head);
}

}  // namespace

std::vector<std::uint8_t> VirtioBalloon::save_device_state() const {
    BalloonSavedState s{m_target_mib.load(), m_actual.load(), m_stats_interval_s.load(),
                        m_stats_head};
    return save_to_bytes(s);
}

Result<void> VirtioBalloon::restore_device_state(std::span<const std::uint8_t> state) {
    auto loaded = load_from_bytes<BalloonSavedState>(state);
    if (!loaded) {
        return loaded.error().wrap("saved virtio-balloon state");
    }
    const BalloonSavedState& s = *loaded;
    if (s.target_mib > kMaxBalloonMib) {
        return Error(fmt::format("saved virtio-balloon state: a target of {} MiB", s.target_mib));
    }
    if ((s.stats_interval_s != 0) != (m_config.stats_polling_interval_s != 0)) {
        return Error("saved virtio-balloon state: statistics on/off differ from the device's");
    }
    if (s.stats_head && *s.stats_head >= kMaxQueueSize) {
        return Error(
            fmt::format("saved virtio-balloon state: a held statistics buffer {}", *s.stats_head));
    }
    m_target_mib.store(s.target_mib);
    m_actual.store(s.actual);
    m_stats_interval_s.store(s.stats_interval_s);
    m_stats_head = s.stats_head;
    return ok();
}

}  // namespace vireo::virtio
