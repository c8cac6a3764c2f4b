// The snapshot memory file: guest RAM, the regions back to back in region order (region i at the
// sum of the sizes of the regions before it), the layout GuestMemory::create_from_file() maps.
//
// Full file: the whole of RAM. All-zero pages are left as holes, so pages the guest never touched
// cost no disk (the apparent size is the RAM size, st_blocks counts what was written).
//
// Diff file: the pages dirtied since the previous snapshot, at the same offsets, in a file of the
// same size; everything else is a hole. A dirty page is written even when it is all zero. A diff
// is no use alone: merge_memory_diff() copies it onto the previous full file, which then holds
// the later state.
//
// Which pages a diff holds is recorded in a page list beside it (page_list_path(): "<diff>.pages"),
// and the merge copies the listed pages, not the diff's data extents (SEEK_DATA/SEEK_HOLE). An
// extent-based merge would copy every byte the file system calls data, and a zero page that was
// never written is then indistinguishable from a page the guest zeroed: both overwrite the base.
// Measured with 4 KiB pages written at pages 0, 2, 5, 511, 513, 1000, 1001, 2047 of an 8 MiB file
// (Linux 6.18):
//  - ext4 (4 KiB blocks, 1 KiB blocks, bigalloc with 64 KiB clusters; loop images and the root
//    file system) and tmpfs with huge=never: extents exactly at the pages written.
//  - tmpfs with huge=always or huge=within_size (also what shmem_enabled=force gives /dev/shm):
//    one 4 KiB write allocates a 2 MiB folio, the extents are [0, 4 MiB) and [6 MiB, 8 MiB):
//    1528 unwritten pages of zeros that an extent merge would copy over the base's data.
//  - Any copy that drops holes (cp --sparse=never, a pipe, most network transfers) and any file
//    system without SEEK_DATA support (the generic lseek calls the whole file data) turn every
//    page into data, and an extent merge into a wipe of the base.
// Only the writer knows which pages it wrote, so it says so. The list is one bit per page (32 KiB
// per GiB of RAM) and checksummed. The merge reads the listed pages with pread, so it does not
// care how the diff's holes survived: a hole reads as zeros, which is also what a dirty zero page
// holds.
//
// Page list ("<diff>.pages"), little-endian:
//   offset 0   "VIREOPGL"   magic
//          8   u32          format version, kPageListFormatVersion
//         12   u64          memory size in bytes (the diff's size, a multiple of 4 KiB)
//         20   u64          number of pages listed (bits set)
//         28   u64 x words  bitmap, words = ceil(pages / 64): bit i of word i / 64 is page i of
//                           the file (per region the layout of GuestMemory::take_dirty)
//   end - 8    u64          CRC-64/XZ over every byte before it
//
// Every file is written under a temporary name beside the final one, fsynced, then renamed, so an
// interrupted write never leaves a half-written file under the final name (and a memory file that
// a lazily restored VM still maps is replaced, not truncated under it). A diff's old page list is
// removed before the new diff is renamed into place and the new list follows it, so a list never
// describes another diff. The memory must not change while it is written: vCPUs paused, devices
// quiet.
//
// The merge is not atomic: a failure part way leaves the base with some of the diff's pages. It
// is idempotent, so running it again completes it. Nobody may be using the base meanwhile (a VM
// restored lazily from it would see pages change under it).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo {

inline constexpr std::uint32_t kPageListFormatVersion = 1;

struct MemoryFileStats {
    std::uint64_t apparent_size = 0;  // the file's size: the guest's RAM size
    std::uint64_t bytes_written = 0;  // data written (the rest is holes)
    std::uint64_t pages_written = 0;
};

struct MergeStats {
    std::uint64_t bytes_copied = 0;
    std::uint64_t pages_copied = 0;
    std::uint64_t runs = 0;  // runs of consecutive pages, one read and write each (in chunks)
};

// Where write_memory_diff() puts the page list of the diff at `diff_path`.
std::string page_list_path(const std::string& diff_path);

// The full memory file of `mem` at `path` (replacing what is there). A page list left at
// page_list_path(path) by an earlier diff under the same name is removed.
Result<MemoryFileStats> write_memory_file(const std::string& path, const GuestMemory& mem);

// The diff memory file at `path` and its page list. `dirty` holds one bitmap per region in the
// layout of GuestMemory::take_dirty() (dirty_bitmap_words(region.pages()) words, no bit past the
// region's last page), typically that OR-ed with the accelerator's dirty log. Nothing is written
// when the bitmaps do not fit the memory.
Result<MemoryFileStats> write_memory_diff(const std::string& path, const GuestMemory& mem,
                                          std::span<const std::vector<std::uint64_t>> dirty);

// Copies the pages listed for the diff at `diff_path` onto the full file at `base_path`, at the
// same offsets, and fsyncs the base. The base is not touched when the two differ in size or the
// page list is missing, damaged or for another size.
Result<MergeStats> merge_memory_diff(const std::string& base_path, const std::string& diff_path);

// Restoring maps the memory file MAP_PRIVATE: a page the guest has not touched yet is read from
// the file on first access, so a file that shrinks after the load raises SIGBUS in whichever
// thread touches such a page (a vCPU, a device thread). A file that someone other than vireo's
// user could truncate (owned by another uid, or writable by its group or others) is therefore
// copied into anonymous memory at load instead. Returns why, or "" when mapping it is safe.
// (The file's size against the RAM layout is checked by GuestMemory::create_from_file.)
std::string memory_file_copy_reason(const struct stat& st, uid_t self);

}  // namespace vireo
