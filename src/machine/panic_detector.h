// Watches the guest console for a Linux kernel panic. Linux announces one with the line
// "Kernel panic - not syncing: <reason>" and ends the report with "---[ end Kernel panic"; with
// panic=-1 it then reboots at once, which without this would look like an ordinary reboot.
// (A pvpanic device would tell us directly, but Debian builds its driver as a module, which is not
// loaded when early boot panics.) A guest can fake this line; it only fakes its own crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace vireo {

class PanicDetector {
public:
    struct Panic {
        std::string reason;  // text after "not syncing: "
        std::chrono::steady_clock::time_point seen;
        bool report_complete = false;  // the "---[ end Kernel panic" line was seen
    };

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<Panic> panic() const;

private:
    void end_line();
    static constexpr std::size_t kMaxLine = 512;
    mutable std::mutex m_mutex;
    std::string m_line;
    std::optional<Panic> m_panic;
};

}  // namespace vireo
