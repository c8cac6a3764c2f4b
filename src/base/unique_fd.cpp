#include "base/unique_fd.h"

#include <unistd.h>

namespace vireo {

void UniqueFd::reset(int fd) {
    if (m_fd >= 0) {
        // close() errors on a descriptor we own carry no recoverable information.
        static_cast<void>(::close(m_fd));
    }
    m_fd = fd;
}

}  // namespace vireo
