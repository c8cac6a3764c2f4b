// The migration stream: frames, page runs and the receiver's state machine, fed the worst a
// hostile or broken sender can send (issue 14): truncation at every offset, flipped bits, frames
// out of order, oversized lengths, page runs outside RAM.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "migration/migration_channel.h"
#include "migration/migration_frame.h"
#include "migration/migration_pages.h"
#include "migration/migration_receiver.h"

namespace vireo::migration {
namespace {

constexpr std::uint64_t kRam = 64 * kPageSize;

GuestMemory small_ram() {
    const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
    return std::move(GuestMemory::create(spec).value());
}

// A target that builds nothing: RAM of kRam bytes, and a record of what finish() got.
struct FakeTarget final : MigrationTarget {
    Result<GuestMemory*> prepare(const MigrationConfig& config, bool local) override {
        prepared = config;
        if (refuse_config) {
            return Error("this host lacks a CPU feature");
        }
        return local ? nullptr : &memory;
    }
    // A local migration's RAM: adopted as GuestMemory::adopt_memfd checks it.
    Result<GuestMemory*> adopt(UniqueFd fd, std::uint64_t size) override {
        if (size != kRam) {
            return Error("wrong size");
        }
        const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
        auto m = GuestMemory::adopt_memfd(spec, std::move(fd));
        if (!m) {
            return m.error();
        }
        memory = std::move(m).value();
        return &memory;
    }
    Result<void> finish(const SnapshotContents& state) override {
        finished = state.config;
        if (refuse_finish) {
            return Error("no such tap");
        }
        return ok();
    }
    GuestMemory memory = small_ram();
    std::optional<MigrationConfig> prepared;
    std::optional<std::string> finished;
    bool refuse_config = false;
    bool refuse_finish = false;
};

Frame frame(MigrationCommand c, std::vector<std::uint8_t> payload = {}) {
    return Frame{c, std::move(payload)};
}

std::vector<std::uint8_t> state_bytes() {
    SnapshotContents s;
    s.vireo_version = "vireo test";
    s.config = R"({"machine-config":{}})";
    s.add("platform", {1, 2, 3});
    return encode_snapshot(s);
}

std::vector<std::uint8_t> one_page_run(std::uint64_t gpa, std::uint8_t fill) {
    GuestMemory src = small_ram();
    std::vector<std::uint8_t> page(kPageSize, fill);
    EXPECT_TRUE(src.write(GuestAddress{gpa % kRam}, page));
    PageRunStats stats;
    auto p = encode_page_run(src, GuestAddress{gpa % kRam}, 1, false, stats).value();
    std::memcpy(p.data(), &gpa, 8);  // the address the test wants, in or out of RAM
    return p;
}

TEST(MigrationFrame, RoundTripsEveryCommand) {
    for (std::uint16_t c = 1; c <= 10; ++c) {
        const auto cmd = static_cast<MigrationCommand>(c);
        std::vector<std::uint8_t> payload(std::min<std::size_t>(max_payload(c), 5), 0xab);
        const auto bytes = encode_frame(cmd, payload);
        auto f = decode_frame(bytes);
        ASSERT_TRUE(f) << command_name(cmd) << ": " << f.error().message();
        EXPECT_EQ(f->command, cmd);
        EXPECT_EQ(f->payload, payload);
    }
}

TEST(MigrationFrame, EveryTruncationIsRefused) {
    const std::vector<std::uint8_t> payload = {1, 0, 0, 0, 0, 0, 0, 0};
    const auto bytes = encode_frame(MigrationCommand::Start, payload);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        auto f = decode_frame(std::span(bytes).first(n));
        EXPECT_FALSE(f) << "truncated to " << n << " bytes";
    }
}

TEST(MigrationFrame, EveryFlippedBitIsRefused) {
    const auto bytes = encode_frame(MigrationCommand::Config, state_bytes());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto copy = bytes;
            copy[i] ^= static_cast<std::uint8_t>(1U << bit);
            auto f = decode_frame(copy);
            ASSERT_FALSE(f) << "byte " << i << " bit " << bit << " went unnoticed";
        }
    }
}

TEST(MigrationFrame, HeaderChecksNameTheProblem) {
    auto bytes = encode_frame(MigrationCommand::Complete, {});
    auto header = [&] { return std::span<const std::uint8_t, kFrameHeaderSize>(bytes.data(), 12); };
    bytes[0] = 'X';
    EXPECT_NE(check_frame_header(header()).error().message().find("magic"), std::string::npos);
    bytes = encode_frame(MigrationCommand::Complete, {});
    bytes[4] = 77;
    EXPECT_NE(check_frame_header(header()).error().message().find("unknown migration command 77"),
              std::string::npos);
    bytes = encode_frame(MigrationCommand::Complete, {});
    bytes[6] = 1;
    EXPECT_NE(check_frame_header(header()).error().message().find("flags"), std::string::npos);
    // An oversized length is refused from the header alone, before anything is allocated.
    bytes = encode_frame(MigrationCommand::Memory, {});
    const std::uint32_t huge = 0xffffffff;
    std::memcpy(bytes.data() + 8, &huge, 4);
    auto r = check_frame_header(header());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("Memory frame of 4294967295 bytes"), std::string::npos);
}

TEST(MigrationPages, ZeroPagesTravelAsMarkers) {
    GuestMemory src = small_ram();
    std::vector<std::uint8_t> page(kPageSize, 0x5a);
    ASSERT_TRUE(src.write(GuestAddress{2 * kPageSize}, page));
    PageRunStats stats;
    auto p = encode_page_run(src, GuestAddress{0}, 4, false, stats);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->size(), kPagesHeaderSize + 4 + kPageSize);  // one data page, three markers
    EXPECT_EQ(stats.zero_pages, 3U);
    // A run of zeros alone needs no frame in the first pass.
    PageRunStats skipped;
    EXPECT_TRUE(encode_page_run(src, GuestAddress{8 * kPageSize}, 8, true, skipped)->empty());

    GuestMemory dst = small_ram();
    std::vector<std::uint8_t> junk(4 * kPageSize, 0xff);
    ASSERT_TRUE(dst.write(GuestAddress{0}, junk));  // a zero marker must clear what was there
    auto applied = apply_page_run(dst, *p);
    ASSERT_TRUE(applied) << applied.error().message();
    std::vector<std::uint8_t> got(4 * kPageSize);
    ASSERT_TRUE(dst.read(GuestAddress{0}, got));
    std::vector<std::uint8_t> want(4 * kPageSize, 0);
    std::memset(want.data() + 2 * kPageSize, 0x5a, kPageSize);
    EXPECT_EQ(got, want);
}

// With WrittenPages (as the receiver applies runs), a zero page never written is not touched at
// all: not even read, which would map the zero page (and split a huge one under a later write).
// One that was written is cleared.
TEST(MigrationPages, UnwrittenZeroPagesAreNotTouched) {
    GuestMemory dst = small_ram();
    auto host = dst.slice(GuestAddress{0}, kRam);
    ASSERT_TRUE(host);
    // 4 KiB pages here, so residency is per page (the RAM asks for huge ones).
    ASSERT_EQ(::madvise(host->data(), kRam, MADV_NOHUGEPAGE), 0);
    const auto resident = [&](std::uint64_t page) {
        unsigned char v = 0;
        EXPECT_EQ(::mincore(host->data() + page * kPageSize, kPageSize, &v), 0);
        return (v & 1) != 0;
    };
    WrittenPages written(dst);
    GuestMemory src = small_ram();
    std::vector<std::uint8_t> page(kPageSize, 0x5a);
    ASSERT_TRUE(src.write(GuestAddress{2 * kPageSize}, page));
    PageRunStats stats;
    auto run = encode_page_run(src, GuestAddress{0}, 4, false, stats);
    ASSERT_TRUE(run);
    ASSERT_TRUE(apply_page_run(dst, *run, &written));
    EXPECT_FALSE(resident(0));
    EXPECT_FALSE(resident(1));
    EXPECT_TRUE(resident(2));
    EXPECT_FALSE(resident(3));
    // A later pass: page 2 is zero now and must read as zeros at the destination.
    GuestMemory src2 = small_ram();
    ASSERT_TRUE(src2.write(GuestAddress{3 * kPageSize}, page));
    auto run2 = encode_page_run(src2, GuestAddress{0}, 4, false, stats);
    ASSERT_TRUE(run2);
    ASSERT_TRUE(apply_page_run(dst, *run2, &written));
    std::vector<std::uint8_t> got(4 * kPageSize);
    ASSERT_TRUE(dst.read(GuestAddress{0}, got));
    std::vector<std::uint8_t> want(4 * kPageSize, 0);
    std::memset(want.data() + 3 * kPageSize, 0x5a, kPageSize);
    EXPECT_EQ(got, want);
}

TEST(MigrationPages, HostileRunsChangeNothing) {
    GuestMemory dst = small_ram();
    const auto good = one_page_run(kPageSize, 0x11);
    struct Case {
        const char* name;
        std::vector<std::uint8_t> payload;
        const char* expect;
    };
    std::vector<Case> cases;
    auto outside = one_page_run(kRam, 0x11);  // the page after RAM
    cases.push_back({"outside RAM", outside, "not guest RAM"});
    auto wrap = one_page_run(0xfffffffffffff000ULL, 0x11);
    cases.push_back({"wrapping address", wrap, "not guest RAM"});
    auto unaligned = good;
    unaligned[0] = 1;
    cases.push_back({"unaligned", unaligned, "aligned"});
    auto many = good;
    const std::uint32_t n = kMaxPagesPerFrame + 1;
    std::memcpy(many.data() + 8, &n, 4);
    cases.push_back({"too many pages", many, "pages (1 to 256)"});
    auto zero = good;
    std::memset(zero.data() + 8, 0, 4);
    cases.push_back({"no pages", zero, "pages (1 to 256)"});
    auto kind = good;
    kind[kPagesHeaderSize] = 7;
    cases.push_back({"bad kind", kind, "unknown kind 7"});
    auto short_data = good;
    short_data.pop_back();
    cases.push_back({"short data", short_data, "need"});
    auto long_data = good;
    long_data.push_back(0);
    cases.push_back({"trailing byte", long_data, "need"});
    auto marker_with_data = good;
    marker_with_data[kPagesHeaderSize] = kPageZero;  // a zero page followed by 4096 bytes
    cases.push_back({"marker with data", marker_with_data, "need"});
    cases.push_back({"no header", std::vector<std::uint8_t>(5), "no page run header"});
    for (const auto& c : cases) {
        auto r = apply_page_run(dst, c.payload);
        ASSERT_FALSE(r) << c.name;
        EXPECT_NE(r.error().message().find(c.expect), std::string::npos)
            << c.name << ": " << r.error().message();
    }
    std::vector<std::uint8_t> got(kRam);
    ASSERT_TRUE(dst.read(GuestAddress{0}, got));
    EXPECT_EQ(got, std::vector<std::uint8_t>(kRam, 0));  // nothing was written
}

// The whole conversation, in order.
std::vector<Frame> good_conversation() {
    MigrationConfig config{
        R"({"machine-config":{"vcpu_count":1}})", {{1, 0, 0, 1, 2, 3, 4}}, 2000000};
    return {
        frame(MigrationCommand::Start, encode_start(kMigrationProtocolVersion)),
        frame(MigrationCommand::Config, encode_config(config)),
        frame(MigrationCommand::Memory, one_page_run(3 * kPageSize, 0x33)),
        frame(MigrationCommand::Iteration, encode_iteration(1, 1)),
        frame(MigrationCommand::Memory, one_page_run(4 * kPageSize, 0x44)),
        frame(MigrationCommand::Iteration, encode_iteration(2, 1)),
        frame(MigrationCommand::State, state_bytes()),
        frame(MigrationCommand::Memory, one_page_run(5 * kPageSize, 0x55)),
        frame(MigrationCommand::Complete),
    };
}

TEST(MigrationReceiver, AcceptsTheConversationInOrder) {
    FakeTarget target;
    MigrationReceiver rx(target);
    for (const auto& f : good_conversation()) {
        auto r = rx.on_frame(f);
        ASSERT_TRUE(r) << command_name(f.command) << ": " << r.error().message();
    }
    EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::Done);
    ASSERT_TRUE(target.prepared);
    EXPECT_EQ(target.prepared->tsc_khz, 2000000U);
    ASSERT_EQ(target.prepared->cpuid.size(), 1U);
    EXPECT_EQ(target.prepared->cpuid[0].ebx, 2U);
    EXPECT_EQ(target.finished, R"({"machine-config":{}})");
    EXPECT_EQ(rx.iterations(), 2U);
    EXPECT_EQ(rx.pages(), 3U);
    EXPECT_EQ(target.memory.read_obj<std::uint8_t>(GuestAddress{5 * kPageSize}).value(), 0x55);
}

TEST(MigrationReceiver, EveryFrameOutOfOrderFailsTheMigration) {
    const auto conversation = good_conversation();
    // Skip frame k (dropping it puts the next one out of order), for every k that matters.
    // Memory frames are optional, and so is the last Iteration marker: the switch-over's pass
    // has none (State follows the pages), so a missing last marker cannot be told from that.
    for (std::size_t skip = 0; skip < conversation.size(); ++skip) {
        const auto c = conversation[skip].command;
        if (c == MigrationCommand::Memory || skip == 5) {
            continue;
        }
        FakeTarget target;
        MigrationReceiver rx(target);
        bool failed = false;
        for (std::size_t i = 0; i < conversation.size() && !failed; ++i) {
            if (i != skip) {
                failed = !rx.on_frame(conversation[i]);
            }
        }
        if (c == MigrationCommand::Complete) {
            EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::AwaitComplete);
            continue;
        }
        EXPECT_TRUE(failed) << "skipping " << command_name(c) << " went unnoticed";
        EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::Failed);
        EXPECT_FALSE(target.finished) << "built after skipping " << command_name(c);
        // Once failed, nothing more is taken.
        EXPECT_FALSE(rx.on_frame(conversation.back()));
    }
}

TEST(MigrationReceiver, RefusalsNameTheProblem) {
    struct Case {
        const char* name;
        std::vector<Frame> frames;
        const char* expect;
    };
    const auto start = frame(MigrationCommand::Start, encode_start(kMigrationProtocolVersion));
    const auto config = frame(MigrationCommand::Config, encode_config({"{}", {}, 0}));
    std::vector<Case> cases = {
        {"version", {frame(MigrationCommand::Start, encode_start(99))}, "protocol version 99"},
        {"two starts", {start, start}, "unexpected Start frame while awaiting Config"},
        {"memory first",
         {start, frame(MigrationCommand::Memory, one_page_run(0, 1))},
         "unexpected Memory frame while awaiting Config"},
        {"iteration gap",
         {start, config, frame(MigrationCommand::Iteration, encode_iteration(2, 0))},
         "Iteration frame 2 after iteration 0"},
        {"bad config", {start, frame(MigrationCommand::Config, {1, 2, 3})}, "Config frame"},
        {"bad state", {start, config, frame(MigrationCommand::State, {1, 2, 3})}, "State frame"},
        {"ack from sender",
         {start, frame(MigrationCommand::Ack, encode_ack(true, ""))},
         "unexpected Ack"},
        {"abandon",
         {start, frame(MigrationCommand::Abandon, encode_reason("disk full\n\x1b[2J"))},
         "abandoned the migration: disk full??[2J"},
        {"trailing start bytes",
         {frame(MigrationCommand::Start, {1, 0, 0, 0, 0, 0, 0, 0, 0})},
         "Start frame"},
    };
    for (const auto& c : cases) {
        FakeTarget target;
        MigrationReceiver rx(target);
        Result<void> last = ok();
        for (const auto& f : c.frames) {
            last = rx.on_frame(f);
            if (!last) {
                break;
            }
        }
        ASSERT_FALSE(last) << c.name;
        EXPECT_NE(last.error().message().find(c.expect), std::string::npos)
            << c.name << ": " << last.error().message();
    }
}

TEST(MigrationReceiver, TargetRefusalsFailTheMigration) {
    FakeTarget target;
    target.refuse_config = true;
    MigrationReceiver rx(target);
    ASSERT_TRUE(rx.on_frame(good_conversation()[0]));
    auto r = rx.on_frame(good_conversation()[1]);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("lacks a CPU feature"), std::string::npos);
    EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::Failed);
}

GuestMemory memfd_ram() {
    const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
    return std::move(GuestMemory::create(spec, MemoryOptions{.memfd = true}).value());
}

UniqueFd dup_of(int fd) {
    return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

std::vector<Frame> local_conversation() {
    MigrationConfig config{R"({"machine-config":{"vcpu_count":1}})", {}, 2000000};
    return {
        frame(MigrationCommand::Start, encode_start(kMigrationProtocolVersion, kStartLocal)),
        frame(MigrationCommand::Config, encode_config(config)),
        frame(MigrationCommand::MemoryFd, encode_memory_fd(kRam)),
        frame(MigrationCommand::State, state_bytes()),
        frame(MigrationCommand::Complete),
    };
}

// A local migration: RAM arrives as the source's memfd, shared, never as pages.
TEST(MigrationReceiver, LocalMigrationAdoptsTheMemfd) {
    GuestMemory source = memfd_ram();
    ASSERT_TRUE(source.write_obj<std::uint32_t>(GuestAddress{3 * kPageSize}, 0xfeedf00d));
    FakeTarget target;
    MigrationReceiver rx(target, /*local_only=*/true);
    for (const auto& f : local_conversation()) {
        UniqueFd fd = f.command == MigrationCommand::MemoryFd ? dup_of(source.fd()) : UniqueFd();
        auto r = rx.on_frame(f, std::move(fd));
        ASSERT_TRUE(r) << command_name(f.command) << ": " << r.error().message();
    }
    EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::Done);
    EXPECT_EQ(rx.pages(), 0U);
    EXPECT_EQ(target.memory.read_obj<std::uint32_t>(GuestAddress{3 * kPageSize}).value(),
              0xfeedf00dU);
    // One RAM, two mappings: a write on either side is seen on the other.
    ASSERT_TRUE(target.memory.write_obj<std::uint32_t>(GuestAddress{5 * kPageSize}, 7));
    EXPECT_EQ(source.read_obj<std::uint32_t>(GuestAddress{5 * kPageSize}).value(), 7U);
}

TEST(MigrationReceiver, LocalMigrationRefusals) {
    GuestMemory source = memfd_ram();
    const auto local = local_conversation();
    const auto copy = good_conversation();
    struct Case {
        const char* name;
        std::vector<std::pair<Frame, bool>> frames;  // a frame, and whether the memfd rides on it
        bool local_only;
        const char* expect;
    };
    std::vector<Case> cases = {
        {"memfd missing",
         {{local[0], false}, {local[1], false}, {local[2], false}},
         false,
         "without its file descriptor"},
        {"fd on another frame", {{local[0], true}}, false, "a file descriptor came with a Start"},
        {"pages in a local migration",
         {{local[0], false}, {local[1], false}, {copy[2], false}},
         false,
         "unexpected Memory frame"},
        {"state before the memfd",
         {{local[0], false}, {local[1], false}, {local[3], false}},
         false,
         "unexpected State frame"},
        {"two memfds",
         {{local[0], false}, {local[1], false}, {local[2], true}, {local[2], true}},
         false,
         "unexpected MemoryFd frame"},
        {"memfd in a copying migration",
         {{copy[0], false}, {copy[1], false}, {local[2], true}},
         false,
         "unexpected MemoryFd frame"},
        {"a copy where only local is taken", {{copy[0], false}}, true, "takes only a local"},
        {"wrong size",
         {{local[0], false},
          {local[1], false},
          {frame(MigrationCommand::MemoryFd, encode_memory_fd(kRam * 2)), true}},
         false,
         "wrong size"},
        {"unknown start flags",
         {{frame(MigrationCommand::Start, encode_start(kMigrationProtocolVersion, 6)), false}},
         false,
         "unknown flags 0x6"},
    };
    for (const auto& c : cases) {
        FakeTarget target;
        MigrationReceiver rx(target, c.local_only);
        Result<void> last = ok();
        for (const auto& [f, with_fd] : c.frames) {
            last = rx.on_frame(f, with_fd ? dup_of(source.fd()) : UniqueFd());
            if (!last) {
                break;
            }
        }
        ASSERT_FALSE(last) << c.name;
        EXPECT_NE(last.error().message().find(c.expect), std::string::npos)
            << c.name << ": " << last.error().message();
        EXPECT_EQ(rx.phase(), MigrationReceiver::Phase::Failed) << c.name;
    }
}

// What adopt_memfd takes: only a memfd of the right size that can never shrink under it.
TEST(MigrationReceiver, AdoptMemfdRefusesWhatCouldFaultLater) {
    const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
    GuestMemory sealed = memfd_ram();
    EXPECT_TRUE(GuestMemory::adopt_memfd(spec, dup_of(sealed.fd())));
    const MemoryRegionSpec bigger[] = {{GuestAddress{0}, 2 * kRam}};
    auto wrong = GuestMemory::adopt_memfd(bigger, dup_of(sealed.fd()));
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("is 262144 bytes"), std::string::npos)
        << wrong.error().message();

    UniqueFd unsealed(::memfd_create("test", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(unsealed.get(), kRam), 0);
    auto shrinkable = GuestMemory::adopt_memfd(spec, std::move(unsealed));
    ASSERT_FALSE(shrinkable);
    EXPECT_NE(shrinkable.error().message().find("sealed against shrinking"), std::string::npos);

    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ::close(p[1]);
    auto pipe = GuestMemory::adopt_memfd(spec, UniqueFd(p[0]));
    ASSERT_FALSE(pipe);
    EXPECT_NE(pipe.error().message().find("not a memfd"), std::string::npos);
    // The sealed memfd cannot be shrunk by its creator either.
    EXPECT_NE(::ftruncate(sealed.fd(), kPageSize), 0);
}

}  // namespace
}  // namespace vireo::migration
