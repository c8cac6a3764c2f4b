// Where a guest console goes: the VMM's stdin/stdout or a file. A console is a byte sink for guest
// output and, for stdio, a source of guest input delivered from its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "base/result.h"

namespace vireo {

class Console {
public:
    // Offered input bytes; returns how many the device took (it may be full).
    using InputSink = std::function<std::size_t(std::span<const std::uint8_t>)>;

    virtual ~Console() = default;
    // Guest output. Called on vCPU threads; must not block for long.
    virtual void write(std::span<const std::uint8_t> bytes) = 0;
    // Starts delivering host input to `sink`; `on_quit` runs when the user types the escape
    // sequence (Ctrl-A x). Consoles without input ignore this.
    virtual void start_input(InputSink /*sink*/, std::function<void()> /*on_quit*/) {}
    // Stops the input thread (idempotent); the destructor calls it too.
    virtual void stop_input() {}
    // Guest output bytes dropped because the host side did not take them (metrics).
    virtual std::uint64_t dropped_output_bytes() const { return 0; }
};

// The file console's default cap: a guest printing in a loop must not fill the host's disk.
inline constexpr std::uint64_t kDefaultConsoleFileLimit = 64ULL << 20;

// "stdio" (raw mode while stdin is a terminal, restored on exit) or "file:PATH" (output only,
// truncated on open). PATH must not be a symbolic link (a planted link would make vireo write
// guest output into any file it can open) and must be a regular file (created 0644 when absent)
// or a character device such as /dev/null; a FIFO is refused (redirect stdio instead). The file
// takes at most `file_limit` bytes; what the guest prints beyond is dropped and counted (logged
// when the cap is reached and when the console closes).
Result<std::unique_ptr<Console>> open_console(std::string_view spec,
                                              std::uint64_t file_limit = kDefaultConsoleFileLimit);

}  // namespace vireo
