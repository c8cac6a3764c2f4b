// The snapshot state file: everything about a VM except its RAM (that is the memory file).
//
//   offset 0   "VIREOSNP"                magic
//          8   u32 format version        kSnapshotFormatVersion, or an older one this vireo still
//                                        reads (kOldestSnapshotFormatVersion); others are refused
//         12   u64 total length          of the whole file, checksum included
//         20   body (state_archive encoding):
//                string vireo version    informational ("vireo 0.6.0")
//                string config           the VM configuration, Firecracker config-file JSON
//                u32 n, n x { string name, [u32 version,] bytes data }
//                                        one section per component; the section's own version
//                                        (format 3 on; 1 in older files) says how its component
//                                        encoded `data`
//   length-8   u64 CRC-64/XZ             over every byte before it
//
// Reading checks, in this order, so each broken file gets the message that names its problem:
// size cap, magic, format version, length (truncated or trailing bytes), checksum, then the body
// with a cap on every count. Sections are decoded later by their components.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace vireo {

// Format versions. The layout is the same; what changed is the meaning of what it holds:
//   1  every disk offered VIRTIO_BLK_F_FLUSH and chose its block engine itself, whatever the
//      drive's cache_type and io_engine said (they were written as "Unsafe" and "Sync").
//   2  cache_type and io_engine are acted on (Firecracker's meaning).
//   3  each section carries its own version (the component registry's: a component may change
//      its encoding and still read the older one); files 1 and 2 hold version 1 of every section.
// A version-1 file is read as what that vireo did: Writeback, engine not given.
inline constexpr std::uint32_t kSnapshotFormatVersion = 3;
inline constexpr std::uint32_t kFirstVersionedSectionsFormat = 3;
inline constexpr std::uint32_t kOldestSnapshotFormatVersion = 1;
// Caps applied when reading: a state file is input.
inline constexpr std::size_t kSnapshotMaxFileSize = 64ULL << 20;
inline constexpr std::size_t kSnapshotMaxSections = 4096;
inline constexpr std::size_t kSnapshotMaxSectionSize = 16ULL << 20;
inline constexpr std::size_t kSnapshotMaxConfigSize = 1ULL << 20;
inline constexpr std::size_t kSnapshotMaxNameSize = 128;

struct SnapshotSection {
    std::string name;
    std::vector<std::uint8_t> data;
    std::uint32_t version = 1;  // of the encoding of `data`, chosen by its component
};

struct SnapshotContents {
    std::uint32_t format_version = kSnapshotFormatVersion;  // read from the file; written: current
    std::string vireo_version;
    std::string config;
    std::vector<SnapshotSection> sections;

    void add(std::string name, std::vector<std::uint8_t> data, std::uint32_t version = 1) {
        sections.push_back({std::move(name), std::move(data), version});
    }
    // The section called `name`, or nullptr.
    const SnapshotSection* find(std::string_view name) const;
};

std::vector<std::uint8_t> encode_snapshot(const SnapshotContents& contents);
Result<SnapshotContents> decode_snapshot(std::span<const std::uint8_t> file);

// Writes to `path` atomically (a temporary file beside it, fsync, rename): an interrupted create
// never leaves a half-written file under the final name.
Result<void> write_snapshot_file(const std::string& path, const SnapshotContents& contents);
Result<SnapshotContents> read_snapshot_file(const std::string& path);

}  // namespace vireo
