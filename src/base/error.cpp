#include "base/error.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo {

Error Error::from_errno(std::string_view what) {
    return from_errno(what, errno);
}

namespace {

ErrorKind kind_of_errno(int e) {
    switch (e) {
        case ENOENT:
        case ENOTDIR:
        case EISDIR:
        case EACCES:
        case EPERM:
        case ELOOP:
        case ENAMETOOLONG:
        case EEXIST:
        case EROFS:
        case ETXTBSY:
            return ErrorKind::Invalid;
        default:
            return ErrorKind::Host;
    }
}

}  // namespace

Error Error::from_errno(std::string_view what, int sys_errno) {
    return Error(fmt::format("{}: {}", what, std::strerror(sys_errno)), sys_errno,
                 kind_of_errno(sys_errno));
}

Error Error::wrap(std::string_view context) const {
    return Error(fmt::format("{}: {}", context, m_message), m_errno, m_kind);
}

}  // namespace vireo
