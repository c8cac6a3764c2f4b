#include "jailer/shared_libraries.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace vireo::jailer {

namespace {

constexpr size_t kMaxInterpreterPath = 4096;
constexpr size_t kMaxLoaderOutput = 1 << 20;
constexpr uint16_t kMaxProgramHeaders = 256;

bool read_exact_at(int fd, void* buf, size_t len, off_t offset) {
    auto* p = static_cast<char*>(buf);
    while (len > 0) {
        const ssize_t n = ::pread(fd, p, len, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= static_cast<size_t>(n);
        offset += n;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// "/path (0x00007f...)" -> "/path".
std::string_view strip_address(std::string_view s) {
    const size_t paren = s.rfind(" (");
    return trim(paren == std::string_view::npos ? s : s.substr(0, paren));
}

}  // namespace

Result<std::optional<std::string>> elf_interpreter(int fd) {
    Elf64_Ehdr eh;
    if (!read_exact_at(fd, &eh, sizeof eh, 0) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        return Error("not an ELF file");
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
        return Error("not an x86-64 ELF file");
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > kMaxProgramHeaders) {
        return Error("malformed ELF program headers");
    }
    for (uint16_t i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        const uint64_t at = eh.e_phoff + uint64_t{i} * sizeof ph;
        if (at > INT64_MAX - sizeof ph ||
            !read_exact_at(fd, &ph, sizeof ph, static_cast<off_t>(at))) {
            return Error("malformed ELF program headers");
        }
        if (ph.p_type != PT_INTERP) {
            continue;
        }
        if (ph.p_filesz < 2 || ph.p_filesz > kMaxInterpreterPath || ph.p_offset > INT64_MAX) {
            return Error("malformed PT_INTERP");
        }
        std::string path(ph.p_filesz, '\0');
        if (!read_exact_at(fd, path.data(), path.size(), static_cast<off_t>(ph.p_offset))) {
            return Error("malformed PT_INTERP");
        }
        if (path.back() != '\0') {
            return Error("PT_INTERP is not NUL-terminated");
        }
        path.pop_back();
        if (path.front() != '/' || path.find('\0') != std::string::npos) {
            return Error(fmt::format("PT_INTERP '{}' is not an absolute path", path));
        }
        return std::optional<std::string>(std::move(path));
    }
    return std::optional<std::string>();
}

Result<std::vector<std::string>> parse_loader_list(std::string_view output) {
    std::vector<std::string> paths;
    std::istringstream in{std::string(output)};
    for (std::string raw; std::getline(in, raw);) {
        const std::string_view line = trim(raw);
        if (line.empty()) {
            continue;
        }
        const size_t arrow = line.find(" => ");
        std::string_view path;
        if (arrow != std::string_view::npos) {
            const std::string_view target = strip_address(line.substr(arrow + 4));
            if (target == "not found" || target.empty()) {
                return Error(
                    fmt::format("shared library {} not found", trim(line.substr(0, arrow))));
            }
            path = target;
        } else {
            path = strip_address(line);
        }
        if (path.empty() || path.front() != '/') {
            continue;  // linux-vdso.so.1: mapped by the kernel, no file
        }
        if (path.find("/../") != std::string_view::npos ||
            path.find("/./") != std::string_view::npos) {
            return Error(fmt::format("shared library path '{}' is not canonical", path));
        }
        std::string p(path);
        bool seen = false;
        for (const auto& q : paths) {
            seen = seen || q == p;
        }
        if (!seen) {
            paths.push_back(std::move(p));
        }
    }
    return paths;
}

Result<std::vector<std::string>> list_shared_libraries(const std::string& interpreter,
                                                       int exec_fd) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return Error::from_errno("pipe");
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    const std::string target = fmt::format("/proc/self/fd/{}", exec_fd);
    std::array<const char*, 4> argv{interpreter.c_str(), "--list", target.c_str(), nullptr};
    const char* envp[] = {nullptr};
    const pid_t pid = ::fork();
    if (pid < 0) {
        return Error::from_errno("fork");
    }
    if (pid == 0) {
        // Only async-signal-safe calls until exec. The exec file's descriptor stays open
        // (without FD_CLOEXEC) for the loader to open through /proc/self/fd.
        if (::dup2(write_end.get(), STDOUT_FILENO) < 0 || ::fcntl(exec_fd, F_SETFD, 0) != 0) {
            ::_exit(127);
        }
        ::execve(interpreter.c_str(), const_cast<char* const*>(argv.data()),
                 const_cast<char* const*>(envp));
        ::_exit(127);
    }
    write_end.reset();
    std::string output;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (output.size() < kMaxLoaderOutput) {
            output.append(buf, static_cast<size_t>(n));
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        // The loader prints "not found" lines and exits non-zero: name the library if it did.
        auto parsed = parse_loader_list(output);
        if (!parsed) {
            return parsed.error();
        }
        return Error(fmt::format("{} --list failed (status {})", interpreter, status));
    }
    return parse_loader_list(output);
}

bool in_default_search_path(std::string_view library) {
    const size_t slash = library.rfind('/');
    if (slash == std::string_view::npos) {
        return false;
    }
    const std::string_view dir = library.substr(0, slash);
    return dir == "/lib/x86_64-linux-gnu" || dir == "/usr/lib/x86_64-linux-gnu" || dir == "/lib" ||
           dir == "/usr/lib";
}

}  // namespace vireo::jailer
