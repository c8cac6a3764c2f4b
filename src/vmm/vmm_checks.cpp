#include "vmm/vmm_checks.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "base/file_open.h"

namespace vireo {

const char* state_name(InstanceState s) {
    switch (s) {
        case InstanceState::NotStarted:
            return "Not started";
        case InstanceState::Running:
            return "Running";
        case InstanceState::Paused:
            return "Paused";
    }
    return "?";
}

std::string not_allowed(const char* what, InstanceState s) {
    return fmt::format("{} is not allowed while the VM is '{}'", what, state_name(s));
}

bool regular_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

// Why `path` cannot be read as a kernel or initrd (a regular file, or a block device when
// `block_ok`); nullopt when it can. stat() only: nothing is opened.
std::optional<std::string> not_a_file(const std::string& path, bool block_ok) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return std::string("no such file");
    }
    if (S_ISREG(st.st_mode) || (block_ok && S_ISBLK(st.st_mode))) {
        return std::nullopt;
    }
    return fmt::format("is {}, not a regular file", file_type_name(st.st_mode));
}

}  // namespace vireo
