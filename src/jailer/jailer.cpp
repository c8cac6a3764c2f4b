#include "jailer/jailer.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "jailer/cgroup_v2.h"
#include "jailer/jail_fs.h"
#include "jailer/shared_libraries.h"
#include "jailer/small_file.h"

namespace vireo::jailer {

namespace {

constexpr int kExitFailure = 1;
// Firecracker's default RLIMIT_NOFILE when no --resource-limit is given.
constexpr rlim_t kDefaultNoFile = 2048;
constexpr const char* kLdCache = "/etc/ld.so.cache";

struct DeviceNode {
    const char* path;
    unsigned major;  // the well-known numbers, used when the host has no such node
    unsigned minor;
    dev_t dev = 0;  // the host's
};

// Everything checked and opened before the first thing is created.
struct Prepared {
    UniqueFd exec_fd;
    mode_t exec_mode = 0;
    std::vector<std::string> libraries;  // absolute host paths, the loader included
    bool copy_ld_cache = false;
    UniqueFd netns_fd;
    std::optional<CgroupV2> cgroup;
    std::string original_cgroup;  // the jailer's, to move back to when the jail is rolled back
    UniqueFd dev_null;
    std::vector<DeviceNode> devices;
};

// What was created, for the roll-back.
struct Created {
    std::vector<std::string> dirs;  // in creation order
    std::string instance_dir;
    bool cgroup_attached = false;
};

void close_inherited_fds() {
    if (::close_range(3, ~0U, 0) == 0) {
        return;
    }
    // Kernels before 5.9: walk /proc/self/fd (the directory's own descriptor skipped).
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return;
    }
    std::vector<int> fds;
    while (const dirent* e = ::readdir(dir)) {
        const int fd = std::atoi(e->d_name);
        if (fd > 2 && fd != ::dirfd(dir)) {
            fds.push_back(fd);
        }
    }
    ::closedir(dir);
    for (int fd : fds) {
        ::close(fd);
    }
}

Result<void> check_not_link_or_file(const std::string& path, const char* what) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return ok();
        }
        return Error::from_errno(fmt::format("{} {}", what, path));
    }
    if (S_ISLNK(st.st_mode)) {
        return Error(fmt::format("{} {} is a symbolic link: give a real folder", what, path));
    }
    if (!S_ISDIR(st.st_mode)) {
        return Error(fmt::format("{} {} is not a folder", what, path));
    }
    return ok();
}

Result<Prepared> prepare(const JailerConfig& c) {
    Prepared p;
    // The exec file: the file itself, not a link to it (Firecracker canonicalizes instead;
    // refusing keeps what gets copied the file the caller named).
    p.exec_fd =
        UniqueFd(::open(c.exec_file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!p.exec_fd.valid()) {
        if (errno == ELOOP) {
            return Error(fmt::format(
                "--exec-file {} is a symbolic link: give the file it points to", c.exec_file));
        }
        return Error::from_errno(fmt::format("--exec-file {}", c.exec_file));
    }
    struct stat st;
    if (::fstat(p.exec_fd.get(), &st) != 0) {
        return Error::from_errno(fmt::format("--exec-file {}", c.exec_file));
    }
    if (!S_ISREG(st.st_mode)) {
        return Error(fmt::format("--exec-file {} is not a regular file", c.exec_file));
    }
    if ((st.st_mode & 0111) == 0) {
        return Error(fmt::format("--exec-file {} is not executable", c.exec_file));
    }
    // No set-id bits and nothing writable by others on the copy.
    p.exec_mode = st.st_mode & 0755;

    // The jail's place: the base and <base>/<exec> may exist (shared by every instance) but
    // must be real folders; the instance's own folder must not exist (ids are unique).
    if (auto r = check_not_link_or_file(c.chroot_base, "--chroot-base-dir"); !r) {
        return r.error();
    }
    if (auto r = check_not_link_or_file(c.chroot_base + "/" + c.exec_name, "jail folder"); !r) {
        return r.error();
    }
    struct stat ist;
    if (::lstat(c.instance_dir().c_str(), &ist) == 0) {
        return Error(
            fmt::format("jail {} already exists: ids must be unique (remove it to reuse the id)",
                        c.instance_dir()));
    }

    if (!c.netns_path.empty()) {
        p.netns_fd = UniqueFd(::open(c.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!p.netns_fd.valid()) {
            return Error::from_errno(fmt::format("--netns {}", c.netns_path));
        }
    }

    if (c.place_in_cgroup) {
        auto mounts = read_small_file("/proc/self/mounts");
        if (!mounts) {
            return mounts.error();
        }
        auto mount = CgroupV2::find_mount(*mounts);
        if (!mount) {
            return mount.error();
        }
        auto cg = CgroupV2::prepare(*mount, c);
        if (!cg) {
            return cg.error();
        }
        p.cgroup = std::move(*cg);
        // "0::/path" is the v2 line of /proc/self/cgroup.
        if (auto self = read_small_file("/proc/self/cgroup")) {
            const size_t at = self->find("0::");
            if (at != std::string::npos && (at == 0 || (*self)[at - 1] == '\n')) {
                const size_t end = self->find('\n', at);
                p.original_cgroup =
                    self->substr(at + 3, end == std::string::npos ? end : end - at - 3);
                p.original_cgroup = *mount + p.original_cgroup;
            }
        }
    }

    auto interpreter = elf_interpreter(p.exec_fd.get());
    if (!interpreter) {
        return interpreter.error().wrap(fmt::format("--exec-file {}", c.exec_file));
    }
    if (*interpreter) {
        auto libs = list_shared_libraries(**interpreter, p.exec_fd.get());
        if (!libs) {
            return libs.error().wrap(fmt::format("--exec-file {}", c.exec_file));
        }
        p.libraries = std::move(*libs);
        bool has_interpreter = false;
        for (const auto& lib : p.libraries) {
            if (lib == **interpreter) {
                has_interpreter = true;
            } else if (!in_default_search_path(lib)) {
                // Found through /etc/ld.so.cache (or RUNPATH): the loader in the jail needs
                // the cache to find it at the same path.
                p.copy_ld_cache = true;
            }
        }
        if (!has_interpreter) {
            p.libraries.push_back(**interpreter);
        }
    }

    if (c.daemonize) {
        p.dev_null = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!p.dev_null.valid()) {
            return Error::from_errno("/dev/null");
        }
    }

    // Device nodes with the host's numbers (Documentation/admin-guide/devices.txt otherwise).
    p.devices = {{"/dev/kvm", 10, 232}, {"/dev/net/tun", 10, 200}, {"/dev/urandom", 1, 9}};
    for (auto& d : p.devices) {
        struct stat dst;
        d.dev = ::stat(d.path, &dst) == 0 && S_ISCHR(dst.st_mode) ? dst.st_rdev
                                                                  : ::makedev(d.major, d.minor);
    }
    return p;
}

void roll_back(const Prepared& p, Created& created) {
    if (created.cgroup_attached && !p.original_cgroup.empty()) {
        const std::string procs = p.original_cgroup + "/cgroup.procs";
        UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
        const std::string pid = std::to_string(::getpid());
        // Best effort: if it fails, the instance's cgroup stays behind (rmdir gets EBUSY).
        if (fd.valid() && ::write(fd.get(), pid.data(), pid.size()) < 0) {
            fmt::print(stderr, "vireo-jailer: cannot move back to {}: {}\n", p.original_cgroup,
                       std::strerror(errno));
        }
    }
    if (!created.instance_dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(created.instance_dir, ec);
    }
    for (auto it = created.dirs.rbegin(); it != created.dirs.rend(); ++it) {
        static_cast<void>(::rmdir(it->c_str()));
    }
}

// <base>/<exec>/<id>/root with the exec file and its libraries in it; returns nothing: the jail
// is reached by path from here on.
Result<void> build_jail(const JailerConfig& c, const Prepared& p, Created& created) {
    // The base: made when missing (intermediate links are the administrator's choice).
    std::vector<std::string> missing;
    for (std::filesystem::path dir = c.chroot_base; !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
        struct stat st;
        if (::lstat(dir.c_str(), &st) == 0) {
            break;
        }
        missing.push_back(dir.string());
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0755) != 0) {
            return Error::from_errno(fmt::format("creating {}", *it));
        }
        created.dirs.push_back(*it);
    }
    UniqueFd base(::open(c.chroot_base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!base.valid()) {
        return Error::from_errno(fmt::format("--chroot-base-dir {}", c.chroot_base));
    }
    const std::string exec_dir = c.chroot_base + "/" + c.exec_name;
    if (::mkdirat(base.get(), c.exec_name.c_str(), 0755) == 0) {
        created.dirs.push_back(exec_dir);
    } else if (errno != EEXIST) {
        return Error::from_errno(fmt::format("creating {}", exec_dir));
    }
    UniqueFd exec_dir_fd(
        ::openat(base.get(), c.exec_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!exec_dir_fd.valid()) {
        return Error::from_errno(exec_dir);
    }
    // O_EXCL-like: mkdir fails on an existing folder, so two jailers with one id cannot share.
    if (::mkdirat(exec_dir_fd.get(), c.id.c_str(), 0755) != 0) {
        return errno == EEXIST ? Error(fmt::format("jail {} already exists: ids must be unique",
                                                   c.instance_dir()))
                               : Error::from_errno(fmt::format("creating {}", c.instance_dir()));
    }
    created.instance_dir = c.instance_dir();
    UniqueFd instance(
        ::openat(exec_dir_fd.get(), c.id.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!instance.valid()) {
        return Error::from_errno(c.instance_dir());
    }
    auto root = make_dirs_at(instance.get(), "root", 0755);
    if (!root) {
        return root.error();
    }
    UniqueFd root_fd(*root);

    if (auto r = copy_file_at(p.exec_fd.get(), root_fd.get(), c.exec_name, p.exec_mode); !r) {
        return r.error().wrap(fmt::format("copying --exec-file {} into the jail", c.exec_file));
    }
    std::vector<std::string> files = p.libraries;
    if (p.copy_ld_cache) {
        files.emplace_back(kLdCache);
    }
    for (const auto& file : files) {
        const size_t slash = file.rfind('/');
        auto dir = make_dirs_at(root_fd.get(), file.substr(1, slash), 0755);
        if (!dir) {
            return dir.error().wrap(fmt::format("jail folder for {}", file));
        }
        UniqueFd dir_fd(*dir);
        // The host's libraries are often links (libfmt.so.9 -> libfmt.so.9.1.0): the jail gets
        // the file's contents under the name the loader looks for.
        UniqueFd src(::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        struct stat st;
        if (!src.valid() || ::fstat(src.get(), &st) != 0) {
            return Error::from_errno(file);
        }
        if (!S_ISREG(st.st_mode)) {
            return Error(fmt::format("{} is not a regular file", file));
        }
        if (auto r =
                copy_file_at(src.get(), dir_fd.get(), file.substr(slash + 1), st.st_mode & 0755);
            !r) {
            return r.error().wrap(fmt::format("copying {} into the jail", file));
        }
    }
    return ok();
}

Result<void> set_resource_limits(const JailerConfig& c) {
    bool no_file_given = false;
    for (const auto& l : c.resource_limits) {
        const rlimit lim{l.value, l.value};
        if (::setrlimit(l.resource, &lim) != 0) {
            return Error::from_errno(fmt::format("--resource-limit {}={}", l.name, l.value));
        }
        no_file_given = no_file_given || l.resource == RLIMIT_NOFILE;
    }
    if (!no_file_given) {
        const rlimit lim{kDefaultNoFile, kDefaultNoFile};
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            return Error::from_errno("setting RLIMIT_NOFILE");
        }
    }
    return ok();
}

// Before exec, inside the jail: the folders the VMM writes to, owned by it.
Result<void> populate_jail(const JailerConfig& c, const Prepared& p) {
    for (const char* dir : {"/", "/dev", "/dev/net", "/run"}) {
        if (::mkdir(dir, 0700) != 0 && errno != EEXIST) {
            return Error::from_errno(fmt::format("creating {} in the jail", dir));
        }
        if (::chmod(dir, 0700) != 0 || ::chown(dir, c.uid, c.gid) != 0) {
            return Error::from_errno(fmt::format("chown {} in the jail", dir));
        }
    }
    for (const auto& d : p.devices) {
        if (auto r = make_device_node(d.path, d.dev, c.uid, c.gid); !r) {
            return r.error().wrap("in the jail");
        }
    }
    return ok();
}

Result<void> daemonize(const Prepared& p) {
    if (::setsid() < 0) {
        return Error::from_errno("--daemonize: setsid (is the jailer a process group leader?)");
    }
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
        if (::dup2(p.dev_null.get(), fd) < 0) {
            return Error::from_errno("--daemonize: dup2");
        }
    }
    return ok();
}

// Returns in the child (PID 1 of the new namespace); the parent writes the child's pid (as
// the jailer's namespace sees it) to /<exec>.pid and exits 0.
Result<void> fork_into_new_pid_namespace(const JailerConfig& c) {
    if (::unshare(CLONE_NEWPID) != 0) {
        return Error::from_errno("--new-pid-ns: unshare(CLONE_NEWPID)");
    }
    const pid_t child = ::fork();
    if (child < 0) {
        return Error::from_errno("--new-pid-ns: fork");
    }
    if (child == 0) {
        return ok();
    }
    const std::string path = "/" + c.exec_name + ".pid";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    const std::string text = std::to_string(child);
    if (!fd.valid() ||
        ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        fmt::print(stderr, "vireo-jailer: error: writing {} in the jail: {}\n", path,
                   std::strerror(errno));
        ::_exit(kExitFailure);
    }
    ::_exit(0);
}

Result<void> drop_privileges(const JailerConfig& c) {
    if (::setgroups(0, nullptr) != 0) {
        return Error::from_errno("setgroups");
    }
    if (::setresgid(c.gid, c.gid, c.gid) != 0) {
        return Error::from_errno(fmt::format("setresgid({})", c.gid));
    }
    if (::setresuid(c.uid, c.uid, c.uid) != 0) {
        return Error::from_errno(fmt::format("setresuid({})", c.uid));
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0 || ru != c.uid ||
        eu != c.uid || su != c.uid || rg != c.gid || eg != c.gid || sg != c.gid) {
        return Error("the uid/gid did not change");
    }
    // Nothing exec'd from here on gains privileges (set-id files, file capabilities).
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return Error::from_errno("PR_SET_NO_NEW_PRIVS");
    }
    return ok();
}

int fail(const Error& e) {
    fmt::print(stderr, "vireo-jailer: error: {}\n", e.message());
    return kExitFailure;
}

}  // namespace

int run_jailer(const JailerConfig& c) {
    close_inherited_fds();
    ::clearenv();

    auto prepared = prepare(c);
    if (!prepared) {
        return fail(prepared.error());
    }
    Prepared& p = *prepared;
    Created created;
    auto before_jail = [&]() -> Result<void> {
        if (auto r = build_jail(c, p, created); !r) {
            return r;
        }
        if (p.netns_fd.valid() && ::setns(p.netns_fd.get(), CLONE_NEWNET) != 0) {
            return Error::from_errno(fmt::format("--netns {}: setns", c.netns_path));
        }
        p.netns_fd.reset();
        if (auto r = set_resource_limits(c); !r) {
            return r;
        }
        if (p.cgroup) {
            if (auto r = p.cgroup->create(); !r) {
                return r;
            }
            if (auto r = p.cgroup->attach(::getpid()); !r) {
                p.cgroup->remove_created();
                return r;
            }
            created.cgroup_attached = true;
        }
        return enter_jail(c.root_dir());
    };
    if (auto r = before_jail(); !r) {
        roll_back(p, created);
        if (p.cgroup) {
            p.cgroup->remove_created();
        }
        return fail(r.error());
    }
    // Inside the jail: nothing of the host's tree is reachable to roll back from here.
    if (auto r = populate_jail(c, p); !r) {
        return fail(r.error());
    }
    if (c.daemonize) {
        if (auto r = daemonize(p); !r) {
            return fail(r.error());
        }
        p.dev_null.reset();
    }
    if (c.new_pid_ns) {
        if (auto r = fork_into_new_pid_namespace(c); !r) {
            return fail(r.error());
        }
    }
    if (auto r = drop_privileges(c); !r) {
        return fail(r.error());
    }
    const std::string exec_path = "/" + c.exec_name;
    std::vector<const char*> argv{exec_path.c_str(), "--id", c.id.c_str()};
    for (const auto& a : c.exec_args) {
        argv.push_back(a.c_str());
    }
    argv.push_back(nullptr);
    const char* envp[] = {nullptr};
    ::execve(exec_path.c_str(), const_cast<char* const*>(argv.data()),
             const_cast<char* const*>(envp));
    return fail(Error::from_errno(fmt::format("exec {} in the jail", exec_path)));
}

}  // namespace vireo::jailer
