#include "machine/panic_detector.h"

namespace vireo {

void PanicDetector::feed(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    for (std::uint8_t c : bytes) {
        if (c == '\n' || c == '\r') {
            end_line();
        } else if (m_line.size() < kMaxLine) {
            m_line.push_back(static_cast<char>(c));
        }
    }
}

void PanicDetector::end_line() {
    static constexpr std::string_view kPanic = "Kernel panic - not syncing: ";
    static constexpr std::string_view kEnd = "---[ end Kernel panic";
    if (m_line.empty()) {
        return;
    }
    if (!m_panic) {
        if (auto pos = m_line.find(kPanic); pos != std::string::npos) {
            m_panic = Panic{m_line.substr(pos + kPanic.size()), std::chrono::steady_clock::now()};
        }
    } else if (m_line.find(kEnd) != std::string::npos) {
        m_panic->report_complete = true;
    }
    m_line.clear();
}

std::optional<PanicDetector::Panic> PanicDetector::panic() const {
    std::lock_guard lock(m_mutex);
    return m_panic;
}

}  // namespace vireo
