// In-process VMMs for the unit tests (vmm_lifecycle_test, vmm_migration_test): a controller on
// a given accelerator with its console in a file, run() on its own thread as main() runs it,
// and the probe kernels (tests/lib/make-probe-kernel) it boots.
#pragma once

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "backends/char/console.h"
#include "vmm/vmm_controller.h"

namespace vireo::test {

using namespace std::chrono_literals;

inline std::string kernel(const char* name) {
    return std::string(VIREO_PROBE_KERNEL_DIR) + "/" + name;
}

inline std::uint64_t size_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// One VMM process's worth: a controller on the soft accelerator, its console a file, run() on
// its own thread as main() runs it.
class Vmm {
public:
    Vmm(Accelerator& accel, const std::string& console_path, VmmOptions options = {}) {
        auto console = open_console("file:" + console_path);
        EXPECT_TRUE(console) << console.error().message();
        m_console = std::move(console).value();
        auto c = VmmController::create(accel, *m_console, std::move(options));
        EXPECT_TRUE(c) << c.error().message();
        m_controller = std::move(c).value();
        m_thread = std::thread([this] { m_status = m_controller->run(); });
    }
    ~Vmm() { stop(); }
    // stop() and the exit status run() returned.
    int stop() {
        if (m_thread.joinable()) {
            m_controller->stop("test");
            m_thread.join();
        }
        return m_status;
    }
    // Waits (bounded) for run() to return by itself.
    bool ended_within(std::chrono::seconds limit) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < until) {
            if (m_status >= 0) {
                m_thread.join();
                return true;
            }
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    ApiResponse send(ApiRequest r) { return m_controller->handle(std::move(r)); }
    InstanceState state() {
        auto r = send(GetInstanceInfo{});
        EXPECT_EQ(r.status, 200);
        return r.status == 200 ? std::get<InstanceInfo>(r.body).state : InstanceState::NotStarted;
    }
    int status() const { return m_status; }

private:
    std::unique_ptr<Console> m_console;
    std::unique_ptr<VmmController> m_controller;
    std::thread m_thread;
    std::atomic<int> m_status{-1};
};

inline std::string fault(const ApiResponse& r) {
    const auto* f = std::get_if<Fault>(&r.body);
    return f != nullptr ? f->fault_message : std::string();
}

// Waits (bounded) until the file has grown past `size`.
inline bool grows_past(const std::string& path, std::uint64_t size,
                       std::chrono::seconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (size_of(path) > size) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

}  // namespace vireo::test
