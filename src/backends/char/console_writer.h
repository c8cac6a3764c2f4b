// Guest console output towards a host fd that may stall: a terminal nobody reads, a pipe nobody
// drains. Guest output arrives on vCPU threads inside an I/O exit (the 16550 even calls its sink
// under its own lock), so it must never wait for the host: write() only copies into a bounded
// buffer, and a writer thread of its own drains the buffer into the fd. When the buffer is full
// the bytes that do not fit are dropped and counted (dropped_bytes()); the guest never notices.
//
// The writer thread polls the fd for POLLOUT and then writes at most PIPE_BUF bytes, which a pipe
// with room takes without blocking; it blocks SIGPIPE for itself, so a reader that went away is an
// EPIPE (all later output is dropped and counted), not the death of the VMM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace vireo {

class ConsoleWriter {
public:
    static constexpr std::size_t kDefaultCapacity = 1024 * 1024;

    // `fd` is not owned and must stay open while the writer lives.
    explicit ConsoleWriter(int fd, std::size_t capacity = kDefaultCapacity);
    // Gives the writer thread up to `kFlushTimeout` to write what is buffered, then stops it; a
    // writer stuck in write(2) on a stalled fd is left behind (detached), never waited for.
    ~ConsoleWriter();
    ConsoleWriter(const ConsoleWriter&) = delete;
    ConsoleWriter& operator=(const ConsoleWriter&) = delete;

    // What the destructor does; idempotent. Output written afterwards is dropped and counted.
    void stop();

    // Never blocks (beyond a short lock shared with the writer thread's bookkeeping).
    void write(std::span<const std::uint8_t> bytes);

    std::uint64_t dropped_bytes() const;
    std::uint64_t written_bytes() const;

    static constexpr int kFlushTimeoutMs = 500;

private:
    struct State;
    std::shared_ptr<State> m_state;  // shared with the writer thread, which may outlive us
};

}  // namespace vireo
