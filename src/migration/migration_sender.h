// The source's side of a live, pre-copy migration (issue 14), run on its own thread.
//
//   connect, Start, Config           the destination checks its CPU before any memory moves
//   dirty log on, pass 1             every page that is not zero (all-zero runs are skipped:
//                                    the destination's RAM starts zeroed)
//   passes 2, 3, ...                 the pages dirtied during the previous pass, until the
//                                    estimated downtime (dirty bytes / measured bandwidth) is at
//                                    most the limit; auto-converge throttles the vCPUs step by
//                                    step when the guest dirties more than half of what a pass
//                                    sends; at the time limit, cancel or switch over anyway. Once
//                                    the estimate fits, up to 4 more passes while each halves
//                                    what is dirty: the pause carries what no pass can shrink
//   switch-over                      stop the VM (I/O drained), the last dirty pages, the device
//                                    state, the pages saving it touched, Complete
//   Ack                              the commit point: ok = the VM is the destination's now;
//                                    Commit tells it to run
//
// A local migration (SendOptions::local, a Unix socket, RAM in a memfd) sends no memory: after the
// Ack to Config, one MemoryFd frame hands the memfd over (SCM_RIGHTS) and the switch-over follows
// at once, with no pages to send; both processes map the same RAM. It is a live upgrade of vireo
// on one host: the downtime is the device state and the destination's restore.
//
// Before the Ack, any failure (connection lost, destination gone, a refused frame, cancel, time
// limit) leaves the source as it was: resumed if it was running, the vCPUs unthrottled, the dirty
// log off again (or as track_dirty_pages keeps it), and an Abandon sent when the link still works.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "memory/guest_memory.h"
#include "migration/migration_channel.h"
#include "migration/migration_receiver.h"

namespace vireo::migration {

enum class MigrationState : std::uint8_t { None, Active, Completed, Failed, Cancelled };
const char* migration_state_name(MigrationState state);

// What GET /migration reports, on either side.
struct MigrationProgress {
    MigrationState state = MigrationState::None;
    std::string role;                   // "send" or "receive"
    std::string peer;                   // the URL
    std::uint32_t iteration = 0;        // passes over memory finished
    std::uint64_t bytes = 0;            // sent (source) or received (destination)
    std::uint64_t pages = 0;            // pages sent or received, zero markers included
    std::uint64_t remaining_pages = 0;  // dirty at the last count
    double dirty_rate_pages_s = 0;      // in the last pass
    double bandwidth_mib_s = 0;         // average while sending memory
    double expected_downtime_ms = 0;
    double downtime_ms = 0;  // the switch-over: VM stopped until the destination acknowledged
    double total_ms = 0;
    unsigned throttle_percent = 0;
    std::string error;
};

struct SendOptions {
    MigrationUrl destination;
    std::chrono::milliseconds downtime{300};
    std::chrono::seconds timeout{3600};
    bool cancel_on_timeout = true;    // timeout_strategy "Cancel"; false: "Ignore" (switch over)
    std::uint64_t max_bandwidth = 0;  // bytes per second; 0: as fast as the link goes
    bool auto_converge = true;
    bool local = false;  // hand the memfd over instead of copying RAM (unix: only)
};

// What the sender needs of the VM (the VMM controller provides it; each call may run on the VMM's
// own thread and wait for it).
class MigrationSource {
public:
    virtual const GuestMemory& memory() = 0;
    virtual Result<MigrationConfig> config() = 0;
    virtual Result<void> set_dirty_log(bool on) = 0;
    // Pages dirtied since the last call, one bitmap per RAM region.
    virtual Result<std::vector<std::vector<std::uint64_t>>> take_dirty() = 0;
    // Stops the vCPUs and devices (a paused VM stays paused); resume_vm() undoes exactly that.
    virtual Result<void> stop_vm() = 0;
    virtual Result<void> resume_vm() = 0;
    // Shared storage: the images' locks let go once the VM is stopped (the destination takes
    // them at Complete), and taken back if the migration fails before the commit point.
    virtual Result<void> release_storage() = 0;
    virtual Result<void> retake_storage() = 0;
    // Every component's state, encoded as a snapshot state file (VM stopped).
    virtual Result<std::vector<std::uint8_t>> save_state() = 0;
    // The share of time the vCPUs are held back (0 to 99).
    virtual void set_throttle(unsigned percent) = 0;

protected:
    ~MigrationSource() = default;
};

class MigrationSender {
public:
    // `stop` is signalled by cancel(); the sender waits on it wherever it blocks.
    static Result<std::unique_ptr<MigrationSender>> create(MigrationSource& source,
                                                           SendOptions options);

    // The whole migration. Ok: the destination acknowledged (the VM is its own now; Commit was
    // sent). An error: the source is back as it was (see above).
    Result<void> run();
    // Any thread: run() ends as cancelled at its next step, unless past the commit point.
    void cancel();
    MigrationProgress progress() const;

private:
    MigrationSender(MigrationSource& source, SendOptions options, EventFd stop)
        : m_source(source), m_options(std::move(options)), m_stop(std::move(stop)) {}
    Result<void> migrate();
    // Sends the pages whose bits are set (all pages when `all`), in runs of up to 256.
    Result<void> send_pages(const std::vector<std::vector<std::uint64_t>>* dirty, bool all);
    Result<void> send_frame(MigrationCommand command, std::span<const std::uint8_t> payload);
    Result<void> send_encoded(std::span<const std::uint8_t> frame);
    Result<void> check_cancel() const;
    // The destination's Ack to Config or Complete; its Abandon or a negative Ack as an error.
    Result<void> await_ack(const char* after);
    Result<void> switch_over(std::vector<std::vector<std::uint64_t>> pending);
    void update(const std::function<void(MigrationProgress&)>& change);

    MigrationSource& m_source;
    SendOptions m_options;
    EventFd m_stop;
    std::unique_ptr<FrameChannel> m_channel;
    std::vector<std::uint8_t> m_frame;  // the Memory frame being built (send_pages)
    std::atomic<bool> m_cancelled{false};
    std::atomic<bool> m_committed{false};
    bool m_stopped_vm = false;
    bool m_released_storage = false;
    std::chrono::steady_clock::time_point m_start;
    // Bytes of memory frames and the time spent sending them, for the bandwidth estimate.
    std::uint64_t m_memory_bytes = 0;
    std::chrono::steady_clock::duration m_memory_time{};
    // Where the last send_pages() spent its time: reading RAM into frames (zero checks and the
    // copy), their checksums, and the socket (which waits whenever the receiver is behind).
    std::chrono::nanoseconds m_read_time{0};
    std::chrono::nanoseconds m_checksum_time{0};
    std::chrono::nanoseconds m_socket_time{0};
    std::chrono::steady_clock::time_point m_rate_start;
    std::uint64_t m_rate_bytes = 0;
    mutable std::mutex m_mutex;
    MigrationProgress m_progress;  // guarded by m_mutex
};

// Counts the set bits of per-region bitmaps.
std::uint64_t count_pages(const std::vector<std::vector<std::uint64_t>>& bitmaps);

}  // namespace vireo::migration
