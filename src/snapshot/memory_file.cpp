#include "snapshot/memory_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "base/crc64.h"
#include "base/file_open.h"
#include "base/unique_fd.h"

namespace vireo {

namespace {

constexpr char kPageListMagic[8] = {'V', 'I', 'R', 'E', 'O', 'P', 'G', 'L'};
constexpr std::size_t kPageListHeaderSize = 8 + 4 + 8 + 8;
constexpr std::size_t kCrcSize = 8;
// One pread/pwrite moves at most 0x7ffff000 bytes (Linux's MAX_RW_COUNT); stay well below.
constexpr std::uint64_t kMaxIo = 1ULL << 30;
// The merge's copy buffer.
constexpr std::uint64_t kCopyChunk = 1ULL << 20;

// True when the page holds only zeros. Eight words per test keeps the loop cheap; memcpy keeps
// the loads free of alignment and aliasing assumptions (it compiles to plain 8-byte loads).
bool page_is_zero(const std::uint8_t* p) {
    for (std::uint64_t i = 0; i < kPageSize; i += 64) {
        std::uint64_t acc = 0;
        for (std::uint64_t j = 0; j < 64; j += 8) {
            std::uint64_t w = 0;
            std::memcpy(&w, p + i + j, sizeof(w));
            acc |= w;
        }
        if (acc != 0) {
            return false;
        }
    }
    return true;
}

Result<void> pwrite_all(int fd, const std::uint8_t* src, std::uint64_t len, std::uint64_t offset,
                        const std::string& path) {
    while (len > 0) {
        const ssize_t n = ::pwrite(fd, src, std::min(len, kMaxIo), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return Error::from_errno(fmt::format("cannot write {} at offset {:#x}", path, offset),
                                     n < 0 ? errno : EIO);
        }
        const auto done = static_cast<std::uint64_t>(n);
        src += done;
        len -= done;
        offset += done;
    }
    return ok();
}

Result<void> pread_all(int fd, std::uint8_t* dst, std::uint64_t len, std::uint64_t offset,
                       const std::string& path) {
    while (len > 0) {
        const ssize_t n = ::pread(fd, dst, std::min(len, kMaxIo), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno(fmt::format("cannot read {} at offset {:#x}", path, offset));
        }
        if (n == 0) {
            return Error(fmt::format("{} ends early, at offset {:#x}", path, offset));
        }
        const auto done = static_cast<std::uint64_t>(n);
        dst += done;
        len -= done;
        offset += done;
    }
    return ok();
}

Result<void> unlink_if_present(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Error::from_errno("cannot remove " + path);
    }
    return ok();
}

// Makes renames in the directory of `path` durable. File systems that cannot fsync a directory
// (EINVAL) have nothing to flush.
Result<void> fsync_parent(const std::string& path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path.substr(0, slash);
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
        return Error::from_errno("cannot open the directory " + dir);
    }
    if (::fsync(fd.get()) != 0 && errno != EINVAL) {
        return Error::from_errno("cannot fsync the directory " + dir);
    }
    return ok();
}

// A file being written under "<path>.tmp", removed unless commit() renames it to `path`.
class PendingFile {
public:
    static Result<PendingFile> create(const std::string& path) {
        PendingFile f;
        f.m_path = path;
        f.m_tmp = path + ".tmp";
        auto fd = create_temporary(f.m_tmp);
        if (!fd) {
            f.m_tmp.clear();  // nothing of ours to remove
            return fd.error();
        }
        f.m_fd = std::move(fd).value();
        return f;
    }
    PendingFile(PendingFile&& other) noexcept
        : m_path(std::move(other.m_path)),
          m_tmp(std::exchange(other.m_tmp, std::string())),
          m_fd(std::move(other.m_fd)) {}
    PendingFile& operator=(PendingFile&&) = delete;
    PendingFile(const PendingFile&) = delete;
    PendingFile& operator=(const PendingFile&) = delete;
    ~PendingFile() {
        if (!m_tmp.empty()) {
            static_cast<void>(::unlink(m_tmp.c_str()));
        }
    }

    int fd() const { return m_fd.get(); }
    const std::string& tmp_path() const { return m_tmp; }

    Result<void> flush() {
        if (::fsync(m_fd.get()) != 0) {
            return Error::from_errno("cannot fsync " + m_tmp);
        }
        return ok();
    }
    // Renames the flushed file to its final name.
    Result<void> commit() {
        if (::rename(m_tmp.c_str(), m_path.c_str()) != 0) {
            return Error::from_errno(fmt::format("cannot rename {} to {}", m_tmp, m_path));
        }
        m_tmp.clear();
        m_fd.reset();
        return ok();
    }

private:
    PendingFile() = default;
    std::string m_path;
    std::string m_tmp;
    UniqueFd m_fd;
};

// Writes the pages of `mem` for which want(region, page) holds at their file offsets, each run of
// consecutive wanted pages of a region with one pwrite (regions are separate host mappings).
template <typename Want>
Result<MemoryFileStats> write_pages(PendingFile& file, const GuestMemory& mem, Want want) {
    MemoryFileStats stats;
    stats.apparent_size = mem.total_size();
    if (::ftruncate(file.fd(), static_cast<off_t>(stats.apparent_size)) != 0) {
        return Error::from_errno(
            fmt::format("cannot size {} to {} bytes", file.tmp_path(), stats.apparent_size));
    }
    std::uint64_t file_offset = 0;
    const auto regions = mem.regions();
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const auto& r = regions[i];
        const std::uint64_t pages = r.pages();
        std::uint64_t page = 0;
        while (page < pages) {
            if (!want(i, page)) {
                ++page;
                continue;
            }
            std::uint64_t end = page + 1;
            while (end < pages && want(i, end)) {
                ++end;
            }
            const std::uint64_t offset = page * kPageSize;
            const std::uint64_t len = (end - page) * kPageSize;
            if (auto w = pwrite_all(file.fd(), r.host + offset, len, file_offset + offset,
                                    file.tmp_path());
                !w) {
                return w.error();
            }
            stats.bytes_written += len;
            stats.pages_written += end - page;
            page = end;
        }
        file_offset += r.size;
    }
    if (auto f = file.flush(); !f) {
        return f.error();
    }
    return stats;
}

bool test_bit(std::span<const std::uint64_t> bitmap, std::uint64_t i) {
    return ((bitmap[i / 64] >> (i % 64)) & 1) != 0;
}

// Bits set at or past `bits` (the bitmap has dirty_bitmap_words(bits) words).
bool has_bits_past(std::span<const std::uint64_t> bitmap, std::uint64_t bits) {
    if (bits % 64 == 0) {
        return false;
    }
    return (bitmap.back() >> (bits % 64)) != 0;
}

std::size_t page_list_size(std::uint64_t memory_size) {
    return kPageListHeaderSize + dirty_bitmap_words(memory_size / kPageSize) * 8 + kCrcSize;
}

std::vector<std::uint8_t> encode_page_list(std::uint64_t memory_size,
                                           std::span<const std::uint64_t> bitmap,
                                           std::uint64_t count) {
    std::vector<std::uint8_t> out;
    out.reserve(page_list_size(memory_size));
    auto append = [&out](const void* p, std::size_t n) {
        const auto* bytes = static_cast<const std::uint8_t*>(p);
        out.insert(out.end(), bytes, bytes + n);
    };
    const std::uint32_t version = kPageListFormatVersion;
    append(kPageListMagic, sizeof(kPageListMagic));
    append(&version, sizeof(version));
    append(&memory_size, sizeof(memory_size));
    append(&count, sizeof(count));
    append(bitmap.data(), bitmap.size_bytes());  // x86-64: the words' bytes are little-endian
    const std::uint64_t crc = Crc64::of(out);
    append(&crc, sizeof(crc));
    return out;
}

// The page list for a diff of `memory_size` bytes: its bitmap, after every check.
Result<std::vector<std::uint64_t>> read_page_list(const std::string& path,
                                                  std::uint64_t memory_size) {
    struct stat st {};
    auto opened = open_regular_file(path, O_RDONLY, &st);
    if (!opened) {
        return opened.error().wrap("the diff's page list " + path);
    }
    const UniqueFd fd = std::move(opened).value();
    const std::size_t expected = page_list_size(memory_size);
    if (static_cast<std::uint64_t>(st.st_size) != expected) {
        return Error(fmt::format("{} is {} bytes; a page list for {} bytes of memory is {} bytes",
                                 path, st.st_size, memory_size, expected));
    }
    std::vector<std::uint8_t> bytes(expected);
    if (auto r = pread_all(fd.get(), bytes.data(), bytes.size(), 0, path); !r) {
        return r.error();
    }
    if (std::memcmp(bytes.data(), kPageListMagic, sizeof(kPageListMagic)) != 0) {
        return Error(path + " is not a vireo page list (bad magic)");
    }
    std::uint32_t version = 0;
    std::uint64_t size = 0;
    std::uint64_t count = 0;
    std::memcpy(&version, bytes.data() + 8, sizeof(version));
    std::memcpy(&size, bytes.data() + 12, sizeof(size));
    std::memcpy(&count, bytes.data() + 20, sizeof(count));
    std::uint64_t stored_crc = 0;
    std::memcpy(&stored_crc, bytes.data() + expected - kCrcSize, sizeof(stored_crc));
    if (version != kPageListFormatVersion) {
        return Error(fmt::format("{} has format version {}; this vireo reads version {}", path,
                                 version, kPageListFormatVersion));
    }
    if (Crc64::of(std::span(bytes).first(expected - kCrcSize)) != stored_crc) {
        return Error(path + " is corrupted (CRC-64 mismatch)");
    }
    if (size != memory_size) {
        return Error(fmt::format("{} lists pages of {} bytes of memory, the diff is {} bytes", path,
                                 size, memory_size));
    }
    std::vector<std::uint64_t> bitmap(dirty_bitmap_words(memory_size / kPageSize));
    std::memcpy(bitmap.data(), bytes.data() + kPageListHeaderSize, bitmap.size() * 8);
    std::uint64_t set = 0;
    for (auto w : bitmap) {
        set += static_cast<std::uint64_t>(std::popcount(w));
    }
    if (has_bits_past(bitmap, memory_size / kPageSize) || set != count) {
        return Error(path + " is inconsistent (its bitmap does not match its page count)");
    }
    return bitmap;
}

Result<UniqueFd> open_regular(const std::string& path, int flags, const char* what,
                              std::uint64_t& size) {
    struct stat st {};
    auto fd = open_regular_file(path, flags, &st);
    if (!fd) {
        return fd.error().wrap(fmt::format("the {} {}", what, path));
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return fd;
}

}  // namespace

std::string page_list_path(const std::string& diff_path) {
    return diff_path + ".pages";
}

Result<MemoryFileStats> write_memory_file(const std::string& path, const GuestMemory& mem) {
    auto file = PendingFile::create(path);
    if (!file) {
        return file.error();
    }
    const auto regions = mem.regions();
    auto stats = write_pages(*file, mem, [&](std::size_t region, std::uint64_t page) {
        return !page_is_zero(regions[region].host + page * kPageSize);
    });
    if (!stats) {
        return stats.error();
    }
    if (auto r = unlink_if_present(page_list_path(path)); !r) {
        return r.error();
    }
    if (auto r = file->commit(); !r) {
        return r.error();
    }
    if (auto r = fsync_parent(path); !r) {
        return r.error();
    }
    return stats;
}

Result<MemoryFileStats> write_memory_diff(const std::string& path, const GuestMemory& mem,
                                          std::span<const std::vector<std::uint64_t>> dirty) {
    const auto regions = mem.regions();
    if (dirty.size() != regions.size()) {
        return Error(fmt::format("memory diff: {} dirty bitmaps for {} memory regions",
                                 dirty.size(), regions.size()));
    }
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const std::uint64_t pages = regions[i].pages();
        if (dirty[i].size() != dirty_bitmap_words(pages)) {
            return Error(fmt::format(
                "memory diff: the dirty bitmap of region {} has {} words; its {} pages need {}", i,
                dirty[i].size(), pages, dirty_bitmap_words(pages)));
        }
        if (has_bits_past(dirty[i], pages)) {
            return Error(fmt::format(
                "memory diff: the dirty bitmap of region {} marks pages past its {} pages", i,
                pages));
        }
    }

    // The page list: the regions' bitmaps one after the other, at each region's first page.
    const std::uint64_t total = mem.total_size();
    std::vector<std::uint64_t> list(dirty_bitmap_words(total / kPageSize));
    std::uint64_t listed = 0;
    std::uint64_t first_page = 0;
    for (std::size_t i = 0; i < regions.size(); ++i) {
        for (std::uint64_t p = 0; p < regions[i].pages(); ++p) {
            if (test_bit(dirty[i], p)) {
                const std::uint64_t bit = first_page + p;
                list[bit / 64] |= 1ULL << (bit % 64);
                ++listed;
            }
        }
        first_page += regions[i].pages();
    }

    auto file = PendingFile::create(path);
    if (!file) {
        return file.error();
    }
    auto stats = write_pages(*file, mem, [&](std::size_t region, std::uint64_t page) {
        return test_bit(dirty[region], page);
    });
    if (!stats) {
        return stats.error();
    }
    const std::string list_path = page_list_path(path);
    auto list_file = PendingFile::create(list_path);
    if (!list_file) {
        return list_file.error();
    }
    const auto encoded = encode_page_list(total, list, listed);
    if (auto w =
            pwrite_all(list_file->fd(), encoded.data(), encoded.size(), 0, list_file->tmp_path());
        !w) {
        return w.error();
    }
    if (auto f = list_file->flush(); !f) {
        return f.error();
    }
    // The old list goes first and the new one comes last: whenever a list is there, it is the
    // list of the diff beside it.
    if (auto r = unlink_if_present(list_path); !r) {
        return r.error();
    }
    if (auto r = file->commit(); !r) {
        return r.error();
    }
    if (auto r = list_file->commit(); !r) {
        return r.error();
    }
    if (auto r = fsync_parent(path); !r) {
        return r.error();
    }
    return stats;
}

Result<MergeStats> merge_memory_diff(const std::string& base_path, const std::string& diff_path) {
    std::uint64_t base_size = 0;
    std::uint64_t diff_size = 0;
    auto base = open_regular(base_path, O_RDWR, "base memory file", base_size);
    if (!base) {
        return base.error();
    }
    auto diff = open_regular(diff_path, O_RDONLY, "diff memory file", diff_size);
    if (!diff) {
        return diff.error();
    }
    if (base_size != diff_size) {
        return Error(fmt::format("cannot merge {} ({} bytes) onto {} ({} bytes): the sizes differ",
                                 diff_path, diff_size, base_path, base_size));
    }
    if (base_size % kPageSize != 0) {
        return Error(
            fmt::format("{} is {} bytes, not a whole number of 4 KiB pages", base_path, base_size));
    }
    auto list = read_page_list(page_list_path(diff_path), diff_size);
    if (!list) {
        return list.error();
    }

    MergeStats stats;
    std::vector<std::uint8_t> buffer(kCopyChunk);
    const std::uint64_t pages = base_size / kPageSize;
    std::uint64_t page = 0;
    while (page < pages) {
        if ((*list)[page / 64] == 0 && page % 64 == 0) {
            page += 64;
            continue;
        }
        if (!test_bit(*list, page)) {
            ++page;
            continue;
        }
        std::uint64_t end = page + 1;
        while (end < pages && test_bit(*list, end)) {
            ++end;
        }
        for (std::uint64_t off = page * kPageSize; off < end * kPageSize; off += kCopyChunk) {
            const std::uint64_t len = std::min(kCopyChunk, end * kPageSize - off);
            if (auto r = pread_all(diff->get(), buffer.data(), len, off, diff_path); !r) {
                return r.error();
            }
            if (auto r = pwrite_all(base->get(), buffer.data(), len, off, base_path); !r) {
                return r.error();
            }
        }
        stats.pages_copied += end - page;
        stats.bytes_copied += (end - page) * kPageSize;
        ++stats.runs;
        page = end;
    }
    if (::fsync(base->get()) != 0) {
        return Error::from_errno("cannot fsync " + base_path);
    }
    return stats;
}

std::string memory_file_copy_reason(const struct stat& st, uid_t self) {
    if (st.st_uid != self) {
        return fmt::format("it belongs to uid {}, not to vireo's uid {}", st.st_uid, self);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return fmt::format("it is writable by its {} (mode {:o})",
                           (st.st_mode & S_IWOTH) != 0 ? "others" : "group", st.st_mode & 07777);
    }
    return "";
}

}  // namespace vireo
