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

// "stdio" (raw mode while stdin is a terminal, restored on exit) or "file:PATH" (output only,
// truncated on open).
Result<std::unique_ptr<Console>> open_console(std::string_view spec);

}  // namespace vireo
