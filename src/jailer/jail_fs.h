// File-system steps of building a jail: folders, copies, device nodes, and entering it
// (mount namespace + pivot_root). Paths given to the *_at functions are relative to a folder
// descriptor and never follow a symbolic link, so nothing placed in the jail can redirect a
// write (as root) outside it.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"

namespace vireo::jailer {

// mkdir -p of `relative` under `dir_fd` (each component created with `mode` when missing; an
// existing component must be a real folder, not a link). Returns the last folder, opened.
Result<int> make_dirs_at(int dir_fd, const std::string& relative, mode_t mode);

// Copies the regular file open at `src_fd` to a new file `name` in `dir_fd` (O_EXCL: never over
// an existing one) with `mode`.
Result<void> copy_file_at(int src_fd, int dir_fd, const std::string& name, mode_t mode);

// unshare(CLONE_NEWNS), every mount private, `root` bind-mounted onto itself, pivot_root into
// it, the old root detached and removed, chroot("."): afterwards "/" is `root` and nothing of the
// host's tree is reachable.
// `root` is <instance folder>/root: where "/" is the initramfs's rootfs (which pivot_root cannot
// move), "/" is first bind-mounted onto the instance folder and chrooted into.
Result<void> enter_jail(const std::string& root);

// In the jail: a character device node at `path` (mode 0600) owned by uid:gid.
Result<void> make_device_node(const std::string& path, dev_t dev, uid_t uid, gid_t gid);

}  // namespace vireo::jailer
