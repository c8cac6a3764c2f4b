#include "snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/crc64.h"
#include "base/file_open.h"
#include "base/read_file.h"
#include "base/state_archive.h"
#include "base/unique_fd.h"

namespace vireo {

namespace {

constexpr char kMagic[8] = {'V', 'I', 'R', 'E', 'O', 'S', 'N', 'P'};
constexpr std::size_t kHeaderSize = 8 + 4 + 8;
constexpr std::size_t kCrcSize = 8;

template <typename T>
T load_le(const std::uint8_t* p) {
    T v{};
    std::memcpy(&v, p, sizeof(T));
    return v;
}

}  // namespace

// A section as format `format` lays it out (the version field from format 3 on).
struct VersionedSection {
    SnapshotSection& s;
    std::uint32_t format;
};

template <typename Ar>
void persist(Ar& ar, VersionedSection& v) {
    ar.str(v.s.name, kSnapshotMaxNameSize);
    if (v.format >= kFirstVersionedSectionsFormat) {
        ar(v.s.version);
    } else {
        v.s.version = 1;
    }
    ar.vec(v.s.data, kSnapshotMaxSectionSize);
}

namespace {

// The section list: a u32 count (at most kSnapshotMaxSections when reading), then each section.
template <typename Ar>
void persist_sections(Ar& ar, std::vector<SnapshotSection>& sections, std::uint32_t format) {
    auto count = static_cast<std::uint32_t>(sections.size());
    ar(count);
    if constexpr (Ar::kReading) {
        if (count > kSnapshotMaxSections) {
            ar.fail("the state file lists " + std::to_string(count) + " sections, more than " +
                    std::to_string(kSnapshotMaxSections));
            return;
        }
        sections.clear();
        for (std::uint32_t i = 0; i < count && !ar.failed(); ++i) {
            SnapshotSection s;
            VersionedSection v{s, format};
            ar(v);
            sections.push_back(std::move(s));
        }
    } else {
        for (auto& s : sections) {
            VersionedSection v{s, format};
            ar(v);
        }
    }
}

}  // namespace

const SnapshotSection* SnapshotContents::find(std::string_view name) const {
    for (const auto& s : sections) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

std::vector<std::uint8_t> encode_snapshot(const SnapshotContents& contents) {
    StateWriter body;
    auto copy = contents;
    body.str(copy.vireo_version, 0);
    body.str(copy.config, 0);
    persist_sections(body, copy.sections, kSnapshotFormatVersion);
    const auto& b = body.bytes();

    const std::uint32_t version = kSnapshotFormatVersion;
    const std::uint64_t total = kHeaderSize + b.size() + kCrcSize;
    std::vector<std::uint8_t> out;
    out.reserve(total);
    auto append = [&out](const void* p, std::size_t n) {
        const auto* bytes = static_cast<const std::uint8_t*>(p);
        out.insert(out.end(), bytes, bytes + n);
    };
    append(kMagic, sizeof(kMagic));
    append(&version, sizeof(version));
    append(&total, sizeof(total));
    append(b.data(), b.size());
    const std::uint64_t crc = Crc64::of(out);
    append(&crc, sizeof(crc));
    return out;
}

Result<SnapshotContents> decode_snapshot(std::span<const std::uint8_t> file) {
    if (file.size() > kSnapshotMaxFileSize) {
        return Error("the state file is " + std::to_string(file.size()) +
                     " bytes, more than the limit of " + std::to_string(kSnapshotMaxFileSize));
    }
    // A file shorter than the magic is truncated when what there is matches it.
    const std::size_t head = std::min(file.size(), sizeof(kMagic));
    if (head > 0 && std::memcmp(file.data(), kMagic, head) != 0) {
        return Error("not a vireo snapshot state file (bad magic)");
    }
    if (file.size() < kHeaderSize + kCrcSize) {
        return Error("the state file is truncated: " + std::to_string(file.size()) +
                     " bytes, shorter than its header");
    }
    const auto version = load_le<std::uint32_t>(file.data() + 8);
    if (version < kOldestSnapshotFormatVersion || version > kSnapshotFormatVersion) {
        return Error("the state file has format version " + std::to_string(version) +
                     "; this vireo reads versions " + std::to_string(kOldestSnapshotFormatVersion) +
                     " to " + std::to_string(kSnapshotFormatVersion));
    }
    const auto total = load_le<std::uint64_t>(file.data() + 12);
    if (total > file.size()) {
        return Error("the state file is truncated: " + std::to_string(file.size()) + " of " +
                     std::to_string(total) + " bytes");
    }
    if (total < file.size()) {
        return Error("the state file has " + std::to_string(file.size() - total) +
                     " bytes after its end");
    }
    const auto stored = load_le<std::uint64_t>(file.data() + file.size() - kCrcSize);
    const auto computed = Crc64::of(file.first(file.size() - kCrcSize));
    if (stored != computed) {
        char msg[128];
        std::snprintf(msg, sizeof(msg),
                      "the state file is corrupted: CRC-64 is %016llx, the file says %016llx",
                      static_cast<unsigned long long>(computed),
                      static_cast<unsigned long long>(stored));
        return Error(msg);
    }
    StateReader r(file.subspan(kHeaderSize, file.size() - kHeaderSize - kCrcSize));
    SnapshotContents c;
    c.format_version = version;
    r.str(c.vireo_version, kSnapshotMaxNameSize);
    r.str(c.config, kSnapshotMaxConfigSize);
    persist_sections(r, c.sections, version);
    if (auto done = r.finish(); !done) {
        return done.error().wrap("the state file's body");
    }
    return c;
}

Result<void> write_snapshot_file(const std::string& path, const SnapshotContents& contents) {
    const auto bytes = encode_snapshot(contents);
    const std::string tmp = path + ".tmp";
    auto created = create_temporary(tmp);
    if (!created) {
        return created.error();
    }
    const UniqueFd fd = std::move(created).value();
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            auto e = Error::from_errno("cannot write " + tmp);
            ::unlink(tmp.c_str());
            return e;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        auto e = Error::from_errno("cannot finish " + path);
        ::unlink(tmp.c_str());
        return e;
    }
    return ok();
}

Result<SnapshotContents> read_snapshot_file(const std::string& path) {
    auto bytes = read_whole_file(path, kSnapshotMaxFileSize);
    if (!bytes) {
        return bytes.error().wrap("the state file " + path);
    }
    auto c = decode_snapshot(*bytes);
    if (!c) {
        return c.error().wrap(path);
    }
    return c;
}

}  // namespace vireo
