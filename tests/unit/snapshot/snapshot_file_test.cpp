#include "snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/crc64.h"
#include "base/state_archive.h"

#include "base/test_files.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

SnapshotContents sample() {
    SnapshotContents c;
    c.vireo_version = "vireo 0.1.0";
    c.config = R"({"machine-config":{"vcpu_count":2,"mem_size_mib":256}})";
    c.add("serial0", {1, 2, 3, 4});
    c.add("empty", {});
    c.add("virtio-blk0", std::vector<std::uint8_t>(300, 0xa5));
    return c;
}

void expect_same(const SnapshotContents& a, const SnapshotContents& b) {
    EXPECT_EQ(a.vireo_version, b.vireo_version);
    EXPECT_EQ(a.config, b.config);
    ASSERT_EQ(a.sections.size(), b.sections.size());
    for (std::size_t i = 0; i < a.sections.size(); ++i) {
        EXPECT_EQ(a.sections[i].name, b.sections[i].name);
        EXPECT_EQ(a.sections[i].data, b.sections[i].data);
    }
}

// Recomputes the trailing CRC after a deliberate edit, so a test reaches the check behind it.
void fix_crc(std::vector<std::uint8_t>& file) {
    const std::uint64_t crc = Crc64::of(std::span(file).first(file.size() - 8));
    std::memcpy(file.data() + file.size() - 8, &crc, sizeof(crc));
}

std::string error_of(std::span<const std::uint8_t> file) {
    auto r = decode_snapshot(file);
    return r.ok() ? std::string("(accepted)") : r.error().message();
}

bool has(const std::string& message, const std::string& what) {
    return message.find(what) != std::string::npos;
}

TEST(SnapshotFile, RoundTrip) {
    const auto in = sample();
    const auto bytes = encode_snapshot(in);
    auto out = decode_snapshot(bytes);
    ASSERT_TRUE(out.ok()) << out.error().message();
    expect_same(in, *out);
    ASSERT_NE(out->find("serial0"), nullptr);
    EXPECT_EQ(out->find("serial0")->data, (std::vector<std::uint8_t>{1, 2, 3, 4}));
    EXPECT_EQ(out->find("nope"), nullptr);
    // Re-encoding what was decoded gives the same bytes.
    EXPECT_EQ(encode_snapshot(*out), bytes);
}

TEST(SnapshotFile, HeaderLayout) {
    const auto bytes = encode_snapshot(sample());
    EXPECT_EQ(std::memcmp(bytes.data(), "VIREOSNP", 8), 0);
    std::uint32_t version = 0;
    std::uint64_t total = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    std::memcpy(&total, bytes.data() + 12, 8);
    EXPECT_EQ(version, kSnapshotFormatVersion);
    EXPECT_EQ(total, bytes.size());
}

TEST(SnapshotFile, RejectsBadMagic) {
    auto bytes = encode_snapshot(sample());
    bytes[3] = 'X';
    EXPECT_TRUE(has(error_of(bytes), "bad magic")) << error_of(bytes);
    const std::vector<std::uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
    EXPECT_TRUE(has(error_of(text), "bad magic")) << error_of(text);
}

TEST(SnapshotFile, RejectsAnotherFormatVersion) {
    for (const std::uint32_t other : {kSnapshotFormatVersion + 1, 0U, 0xffffffffU}) {
        auto bytes = encode_snapshot(sample());
        std::memcpy(bytes.data() + 8, &other, sizeof(other));
        fix_crc(bytes);
        const auto msg = error_of(bytes);
        EXPECT_TRUE(has(msg, "format version " + std::to_string(other))) << msg;
        EXPECT_TRUE(has(msg, "reads versions 1 to")) << msg;
    }
}

// A file as formats 1 and 2 laid it out: sections without a version of their own.
std::vector<std::uint8_t> unversioned_file(std::uint32_t format, SnapshotContents c) {
    StateWriter body;
    body.str(c.vireo_version, 0);
    body.str(c.config, 0);
    auto n = static_cast<std::uint32_t>(c.sections.size());
    body(n);
    for (auto& sec : c.sections) {
        body.str(sec.name, 0);
        body.vec(sec.data, 0);
    }
    auto file = encode_snapshot(SnapshotContents{});
    const std::uint64_t total = 20 + body.bytes().size() + 8;
    file.resize(20);
    std::memcpy(file.data() + 8, &format, sizeof(format));
    std::memcpy(file.data() + 12, &total, sizeof(total));
    file.insert(file.end(), body.bytes().begin(), body.bytes().end());
    file.resize(total);
    fix_crc(file);
    return file;
}

TEST(SnapshotFile, ReadsTheOlderFormatVersionsAndSaysWhichItWas) {
    for (std::uint32_t old = kOldestSnapshotFormatVersion; old < kFirstVersionedSectionsFormat;
         ++old) {
        auto c = decode_snapshot(unversioned_file(old, sample()));
        ASSERT_TRUE(c) << c.error().message();
        EXPECT_EQ(c->format_version, old);
        EXPECT_EQ(c->config, sample().config);
        expect_same(*c, sample());
        for (const auto& sec : c->sections) {
            EXPECT_EQ(sec.version, 1U) << sec.name;
        }
    }
    auto current = decode_snapshot(encode_snapshot(sample()));
    ASSERT_TRUE(current);
    EXPECT_EQ(current->format_version, kSnapshotFormatVersion);
}

TEST(SnapshotFile, RejectsTruncationAtEveryLength) {
    const auto bytes = encode_snapshot(sample());
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        const auto msg = error_of(std::span(bytes).first(len));
        EXPECT_TRUE(has(msg, "truncated")) << len << ": " << msg;
    }
}

TEST(SnapshotFile, RejectsAFlippedBitAnywhere) {
    const auto good = encode_snapshot(sample());
    for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
        auto bytes = good;
        const std::size_t at = bit / 8;
        bytes[at] ^= static_cast<std::uint8_t>(1U << (bit % 8));
        const auto msg = error_of(bytes);
        if (at < 8) {
            EXPECT_TRUE(has(msg, "bad magic")) << bit << ": " << msg;
        } else if (at < 12) {
            // Another version this vireo reads (3 -> 1 or 2) gets as far as the checksum.
            EXPECT_TRUE(has(msg, "format version") || has(msg, "CRC")) << bit << ": " << msg;
        } else if (at < 20) {
            EXPECT_TRUE(has(msg, "truncated") || has(msg, "after its end")) << bit << ": " << msg;
        } else {
            EXPECT_TRUE(has(msg, "corrupted") && has(msg, "CRC")) << bit << ": " << msg;
        }
    }
}

TEST(SnapshotFile, KeepsEachSectionsVersion) {
    auto in = sample();
    in.add("newer", {9}, 7);
    auto out = decode_snapshot(encode_snapshot(in));
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(out->find("serial0")->version, 1U);
    EXPECT_EQ(out->find("newer")->version, 7U);
}

TEST(SnapshotFile, RejectsTrailingBytes) {
    auto bytes = encode_snapshot(sample());
    bytes.push_back(0);
    bytes.push_back(0);
    const auto msg = error_of(bytes);
    EXPECT_TRUE(has(msg, "2 bytes after its end")) << msg;
}

TEST(SnapshotFile, ChecksTheBodyBehindAValidChecksum) {
    // A section name longer than its cap, in a file whose CRC is right.
    SnapshotContents c;
    c.add(std::string(kSnapshotMaxNameSize + 1, 'n'), {});
    auto bytes = encode_snapshot(c);
    auto msg = error_of(bytes);
    EXPECT_TRUE(has(msg, "body") && has(msg, "exceeds the limit")) << msg;
    // A section count with nothing behind it.
    bytes = encode_snapshot(SnapshotContents{});
    const std::uint32_t sections = 5;
    std::memcpy(bytes.data() + bytes.size() - 12, &sections, sizeof(sections));
    fix_crc(bytes);
    msg = error_of(bytes);
    EXPECT_TRUE(has(msg, "body") && has(msg, "truncated")) << msg;
}

TEST(SnapshotFile, RejectsAFileOverTheSizeCap) {
    std::vector<std::uint8_t> big(kSnapshotMaxFileSize + 1);
    std::memcpy(big.data(), "VIREOSNP", 8);
    EXPECT_TRUE(has(error_of(big), "more than the limit")) << error_of(big);

    TempDir dir;
    const auto path = dir.file("big.state");
    {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kSnapshotMaxFileSize + 1)), 0);  // sparse
        ::close(fd);
    }
    auto r = read_snapshot_file(path);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "more than the limit")) << r.error().message();
    EXPECT_TRUE(has(r.error().message(), path.c_str()));
}

TEST(SnapshotFile, WritesAndReadsAFile) {
    TempDir dir;
    const auto path = dir.file("vm.state");
    ASSERT_TRUE(write_snapshot_file(path, sample()).ok());
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    auto r = read_snapshot_file(path);
    ASSERT_TRUE(r.ok()) << r.error().message();
    expect_same(sample(), *r);
    // Replacing it works too.
    SnapshotContents other;
    other.vireo_version = "later";
    ASSERT_TRUE(write_snapshot_file(path, other).ok());
    r = read_snapshot_file(path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->vireo_version, "later");
}

TEST(SnapshotFile, FileErrorsNameThePath) {
    TempDir dir;
    auto r = read_snapshot_file(dir.file("missing.state"));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "missing.state")) << r.error().message();
    EXPECT_TRUE(has(r.error().message(), "No such file")) << r.error().message();

    fs::create_directory(dir.file("a-dir"));
    r = read_snapshot_file(dir.file("a-dir"));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "not a regular file")) << r.error().message();

    // A damaged file on disk: the message names the file and the problem.
    auto bytes = encode_snapshot(sample());
    bytes[bytes.size() / 2] ^= 0x10;
    const auto path = dir.file("damaged.state");
    {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        ::close(fd);
    }
    r = read_snapshot_file(path);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(has(r.error().message(), "damaged.state") && has(r.error().message(), "corrupted"))
        << r.error().message();

    // Writing into a directory that does not exist.
    auto w = write_snapshot_file(dir.file("no/such/dir/vm.state"), sample());
    ASSERT_FALSE(w.ok());
    EXPECT_TRUE(has(w.error().message(), "no/such/dir")) << w.error().message();
}

}  // namespace
}  // namespace vireo
