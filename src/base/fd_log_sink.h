// The log (--log-path, PUT /logger) written to a descriptor from open_output_stream(): a regular
// file or a FIFO, written without ever blocking. spdlog's own file sink opens with fopen(),
// which blocks forever on a FIFO without a reader and, on a full pipe, blocks every thread that
// logs (vCPUs and device threads among them). Here a line that does not fit is dropped and
// counted (Firecracker's logger.missed_log_count). A line up to PIPE_BUF (4096) bytes reaches a
// pipe whole or not at all; a longer one may be cut.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vireo {

class FdLogSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    // open_output_stream(path), wrapped: "log path X: is a FIFO ... that nobody reads".
    static Result<std::shared_ptr<FdLogSink>> open(const std::string& path);

    explicit FdLogSink(UniqueFd fd) : m_fd(std::move(fd)) {}
    // Lines dropped (or cut) because the destination did not take them.
    std::uint64_t missed() const { return m_missed.load(std::memory_order_relaxed); }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

private:
    UniqueFd m_fd;
    std::atomic<std::uint64_t> m_missed{0};
};

// The missed lines of the default logger's FdLogSink, 0 when it has none.
std::uint64_t missed_log_lines();

}  // namespace vireo
