// The migration channel: frames over real Unix and TCP sockets (a memfd riding along, one
// payload buffer reused, streams cut at every offset, a silent peer) and the URL parser (issue 14).
#include <fcntl.h>
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

GuestMemory memfd_ram() {
    const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
    return std::move(GuestMemory::create(spec, MemoryOptions{.memfd = true}).value());
}

// The memfd rides on a frame's bytes over a Unix socket and is kept for the frame it came with.
TEST(MigrationChannel, MemfdCrossesAUnixSocket) {
    GuestMemory ram = memfd_ram();
    ASSERT_TRUE(ram.write_obj<std::uint64_t>(GuestAddress{0}, 0x1122334455667788));
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    FrameChannel tx(UniqueFd(sv[0]), -1);
    FrameChannel rx(UniqueFd(sv[1]), -1);
    ASSERT_TRUE(tx.send(MigrationCommand::Complete, {}));
    ASSERT_TRUE(tx.send_with_fd(MigrationCommand::MemoryFd, encode_memory_fd(kRam), ram.fd()));
    auto first = rx.receive(std::chrono::seconds(5));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->command, MigrationCommand::Complete);
    auto f = rx.receive(std::chrono::seconds(5));
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(f->command, MigrationCommand::MemoryFd);
    UniqueFd got = rx.take_received_fd();
    ASSERT_TRUE(got.valid());
    EXPECT_FALSE(rx.take_received_fd().valid());  // taken once
    const MemoryRegionSpec spec[] = {{GuestAddress{0}, kRam}};
    auto adopted = GuestMemory::adopt_memfd(spec, std::move(got));
    ASSERT_TRUE(adopted) << adopted.error().message();
    EXPECT_EQ(adopted->read_obj<std::uint64_t>(GuestAddress{0}).value(), 0x1122334455667788U);
}

// One Frame reused for a stream (as the receiver does): each frame comes out whole and exact as
// the buffer shrinks and grows, with nothing of a longer earlier payload left behind.
TEST(MigrationChannel, ReceiveIntoReusesOneFrame) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    FrameChannel tx(UniqueFd(sv[0]), -1);
    FrameChannel rx(UniqueFd(sv[1]), -1);
    const std::vector<std::uint8_t> payloads[] = {std::vector<std::uint8_t>(3000, 0xaa),
                                                  std::vector<std::uint8_t>(10, 0xbb),
                                                  {},
                                                  std::vector<std::uint8_t>(5000, 0xcc)};
    for (const auto& p : payloads) {
        ASSERT_TRUE(tx.send(MigrationCommand::State, p));
    }
    Frame frame;
    for (const auto& p : payloads) {
        auto r = rx.receive_into(frame, std::chrono::seconds(5));
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(frame.command, MigrationCommand::State);
        EXPECT_EQ(frame.payload, p);
    }
}

// Over a real socket pair: a stream cut at every offset fails with a clear error, never hangs.
TEST(MigrationChannel, CutStreamsFailCleanly) {
    const auto bytes = encode_frame(MigrationCommand::Config, encode_config({"{}", {}, 0}));
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        FrameChannel rx(UniqueFd(sv[0]), -1);
        ASSERT_EQ(::write(sv[1], bytes.data(), cut), static_cast<ssize_t>(cut));
        ::close(sv[1]);
        auto f = rx.receive(std::chrono::seconds(5));
        ASSERT_FALSE(f) << "cut at " << cut;
        EXPECT_NE(f.error().message().find("closed the connection"), std::string::npos)
            << f.error().message();
    }
}

TEST(MigrationChannel, SilentPeerTimesOut) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    FrameChannel rx(UniqueFd(sv[0]), -1);
    const auto bytes = encode_frame(MigrationCommand::Complete, {});
    ASSERT_EQ(::write(sv[1], bytes.data(), 5), 5);  // half a header, then nothing
    auto f = rx.receive(std::chrono::milliseconds(200));
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message().find("nothing arrived"), std::string::npos);
    ::close(sv[1]);
}

TEST(MigrationChannel, FramesCrossTcpLoopback) {
    auto url = parse_migration_url("tcp:127.0.0.1:0");
    ASSERT_FALSE(url);  // port 0 is not a port a sender could name
    url = parse_migration_url("tcp:127.0.0.1:47931");
    ASSERT_TRUE(url) << url.error().message();
    auto listener = listen_migration(*url);
    ASSERT_TRUE(listener) << listener.error().message();
    std::thread sender([&] {
        auto fd = connect_migration(*url, -1, std::chrono::seconds(5));
        ASSERT_TRUE(fd) << fd.error().message();
        FrameChannel tx(std::move(fd).value(), -1);
        std::vector<std::uint8_t> big(kMaxPagesPayload, 0x42);
        ASSERT_TRUE(tx.send(MigrationCommand::Memory, big));
    });
    auto conn = accept_migration(listener->get(), -1);
    ASSERT_TRUE(conn);
    FrameChannel rx(std::move(conn).value(), -1);
    auto f = rx.receive(std::chrono::seconds(5));
    sender.join();
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(f->payload.size(), kMaxPagesPayload);
}

TEST(MigrationUrl, ParsesAndRefuses) {
    EXPECT_EQ(parse_migration_url("unix:/run/vireo.mig")->path, "/run/vireo.mig");
    EXPECT_EQ(parse_migration_url("tcp:[::1]:4444")->host, "::1");
    EXPECT_EQ(parse_migration_url("tcp:169.254.0.2:4444")->port, 4444);
    for (const char* bad :
         {"", "tcp:", "tcp:1.2.3.4", "tcp:1.2.3.4:0", "tcp:1.2.3.4:65536", "tcp:host.example:80",
          "tcp:1.2.3.4:80x", "udp:1.2.3.4:80", "unix:", "tcp:[::1:80"}) {
        EXPECT_FALSE(parse_migration_url(bad)) << bad;
    }
    const std::string long_path = "unix:/" + std::string(200, 'a');
    EXPECT_FALSE(parse_migration_url(long_path));
}

}  // namespace
}  // namespace vireo::migration
