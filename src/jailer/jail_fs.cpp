#include "jailer/jail_fs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace vireo::jailer {

Result<int> make_dirs_at(int dir_fd, const std::string& relative, mode_t mode) {
    UniqueFd current(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
    if (!current.valid()) {
        return Error::from_errno("dup");
    }
    size_t start = 0;
    while (start < relative.size()) {
        size_t end = relative.find('/', start);
        if (end == std::string::npos) {
            end = relative.size();
        }
        const std::string part = relative.substr(start, end - start);
        start = end + 1;
        if (part.empty() || part == ".") {
            continue;
        }
        if (part == "..") {
            return Error(fmt::format("'{}': '..' is not allowed", relative));
        }
        if (::mkdirat(current.get(), part.c_str(), mode) != 0 && errno != EEXIST) {
            return Error::from_errno(fmt::format("creating {}", relative));
        }
        UniqueFd next(
            ::openat(current.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid()) {
            return Error::from_errno(fmt::format("opening {} (in {})", part, relative));
        }
        current = std::move(next);
    }
    return current.release();
}

Result<void> copy_file_at(int src_fd, int dir_fd, const std::string& name, mode_t mode) {
    struct stat st;
    if (::fstat(src_fd, &st) != 0) {
        return Error::from_errno("fstat");
    }
    UniqueFd dst(
        ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!dst.valid()) {
        return Error::from_errno(fmt::format("creating {}", name));
    }
    off_t offset = 0;
    while (offset < st.st_size) {
        const ssize_t n =
            ::sendfile(dst.get(), src_fd, &offset, static_cast<size_t>(st.st_size - offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error::from_errno(fmt::format("copying to {}", name));
        }
        if (n == 0) {
            return Error(fmt::format("copying to {}: the source shrank", name));
        }
    }
    // The umask may have taken bits off `mode`.
    if (::fchmod(dst.get(), mode) != 0) {
        return Error::from_errno(fmt::format("chmod {}", name));
    }
    return ok();
}

Result<void> enter_jail(const std::string& root) {
    if (::unshare(CLONE_NEWNS) != 0) {
        return Error::from_errno("unshare(CLONE_NEWNS)");
    }
    // Private: nothing mounted or unmounted here propagates back to the host's namespace (and
    // pivot_root refuses a shared parent mount).
    if (::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) {
        return Error::from_errno("making / private");
    }
    // pivot_root needs the new root to be a mount point.
    if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return Error::from_errno(fmt::format("bind-mounting {} onto itself", root));
    }
    if (::chdir(root.c_str()) != 0) {
        return Error::from_errno(fmt::format("chdir {}", root));
    }
    if (::mkdir("old_root", 0700) != 0) {
        return Error::from_errno(fmt::format("creating {}/old_root", root));
    }
    if (::syscall(SYS_pivot_root, ".", "old_root") != 0) {
        if (errno != EINVAL) {
            return Error::from_errno("pivot_root");
        }
        // The current root has no parent mount: "/" is the initramfs's rootfs (a host booted
        // without switch_root), which pivot_root cannot move. A recursive bind of "/" onto the
        // instance's folder, chrooted into, is the same tree on a mount that has a parent; the
        // pivot then works and the old root (that bind) is detached below as usual.
        const std::string instance = root.substr(0, root.rfind('/'));
        if (::mount("/", instance.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
            return Error::from_errno(
                fmt::format("pivot_root failed (EINVAL); bind-mounting / onto {}", instance));
        }
        if (::chroot(instance.c_str()) != 0 || ::chdir(root.c_str()) != 0) {
            return Error::from_errno(fmt::format("chroot {}", instance));
        }
        if (::syscall(SYS_pivot_root, ".", "old_root") != 0) {
            return Error::from_errno("pivot_root (from a bind of the rootfs)");
        }
    }
    if (::chdir("/") != 0) {
        return Error::from_errno("chdir /");
    }
    if (::umount2("/old_root", MNT_DETACH) != 0) {
        return Error::from_errno("unmounting the old root");
    }
    if (::rmdir("/old_root") != 0) {
        return Error::from_errno("removing /old_root");
    }
    if (::chroot(".") != 0) {
        return Error::from_errno("chroot");
    }
    return ok();
}

Result<void> make_device_node(const std::string& path, dev_t dev, uid_t uid, gid_t gid) {
    if (::mknod(path.c_str(), S_IFCHR | S_IRUSR | S_IWUSR, dev) != 0) {
        return Error::from_errno(fmt::format("mknod {}", path));
    }
    if (::chown(path.c_str(), uid, gid) != 0) {
        return Error::from_errno(fmt::format("chown {}", path));
    }
    return ok();
}

}  // namespace vireo::jailer
