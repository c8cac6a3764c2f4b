// Installing the filters: the loaded programs, the SIGSYS report (async-signal-safe formatting),
// the launcher thread that starts every other thread, and the report descriptors, which share
// this file's state. Which filters apply is filter_set.cpp's business.
#include "seccomp/seccomp.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>

#include <fmt/format.h>

#include "seccomp/filter_compiler.h"
#include "seccomp/filter_parser.h"

namespace vireo::seccomp {

namespace {

// ---- State set by init() on the main thread before any other thread exists; read-only after.

bool g_enabled = false;
bool g_initialized = false;
bool g_loaded = false;  // filters compiled, not disabled
std::array<BpfProgram, kThreadKindCount> g_programs;

// Names of x86-64 system calls by number, for the SIGSYS handler (which may not allocate).
constexpr int kSyscallNames = 512;
constexpr std::size_t kSyscallNameSize = 24;
char g_syscall_names[kSyscallNames][kSyscallNameSize];

// Where violations are reported besides stderr; -1 when nowhere.
std::atomic<int> g_log_fd{-1};
std::atomic<int> g_metrics_fd{-1};
std::atomic<std::uint64_t> g_num_faults{0};
std::atomic<bool> g_reporting{false};

// The kind of a thread confined with confine_thread(); the SIGSYS handler prefers the kind its
// filter tags the trap with (below), which threads that inherit a filter also carry.
thread_local ThreadKind t_kind __attribute__((tls_model("initial-exec"))) = ThreadKind::Launcher;
thread_local bool t_confined __attribute__((tls_model("initial-exec"))) = false;

const char* thread_name(ThreadKind kind) {
    switch (kind) {
        case ThreadKind::Vmm:
            return "vireo";
        case ThreadKind::Api:
            return "vireo-api";
        case ThreadKind::Vcpu:
            return "vireo-vcpu";
        case ThreadKind::Machine:
            return "vireo-machine";
        case ThreadKind::Signal:
            return "vireo-signal";
        case ThreadKind::ConsoleInput:
            return "vireo-stdin";
        case ThreadKind::ConsoleOutput:
            return "vireo-stdout";
        case ThreadKind::VirtioBlk:
            return "vireo-blk";
        case ThreadKind::VirtioNet:
            return "vireo-net";
        case ThreadKind::VirtioConsole:
            return "vireo-console";
        case ThreadKind::VirtioRng:
            return "vireo-rng";
        case ThreadKind::VirtioBalloon:
            return "vireo-balloon";
        case ThreadKind::BlockIo:
            return "vireo-blk-io";
        case ThreadKind::Migration:
            return "vireo-migrate";
        case ThreadKind::Launcher:
            return "vireo-launcher";
    }
    return "vireo";
}

// siginfo si_code of a seccomp trap (SYS_SECCOMP, which glibc's headers do not define).
constexpr int kSysSeccomp = 1;

// ---- The SIGSYS handler: async-signal-safe calls only (write, clock_gettime, _exit), each of
// which every filter allows, since the handler runs under the filter that trapped.

class LineBuffer {
public:
    void put(const char* s) {
        while (*s != '\0' && m_len < sizeof(m_data)) {
            m_data[m_len++] = *s++;
        }
    }
    void put(std::string_view s) {
        for (char c : s) {
            if (m_len < sizeof(m_data)) {
                m_data[m_len++] = c;
            }
        }
    }
    void put_dec(std::uint64_t v) {
        char digits[20];
        int n = 0;
        do {
            digits[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0 && m_len < sizeof(m_data)) {
            m_data[m_len++] = digits[--n];
        }
    }
    void put_hex(std::uint64_t v) {
        put("0x");
        char digits[16];
        int n = 0;
        do {
            digits[n++] = "0123456789abcdef"[v & 0xf];
            v >>= 4;
        } while (v != 0);
        while (n > 0 && m_len < sizeof(m_data)) {
            m_data[m_len++] = digits[--n];
        }
    }
    void write_to(int fd) const {
        std::size_t done = 0;
        while (fd >= 0 && done < m_len) {
            const ssize_t n = ::write(fd, m_data + done, m_len - done);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                return;
            }
            done += static_cast<std::size_t>(n);
        }
    }

private:
    char m_data[512];
    std::size_t m_len = 0;
};

// "the vcpu thread made a forbidden system call: 16 (ioctl) with arguments 0x..., ...".
void describe_fault(LineBuffer& out, const siginfo_t* info, const ucontext_t* uc) {
    // The trap's data (si_errno) is 1 + the kind whose filter trapped (see tag_traps()).
    ThreadKind kind = t_kind;
    bool known_kind = t_confined;
    if (info->si_errno > 0 && static_cast<std::size_t>(info->si_errno) <= kThreadKindCount) {
        kind = static_cast<ThreadKind>(info->si_errno - 1);
        known_kind = true;
    }
    const int nr = info->si_syscall;
    out.put("the ");
    out.put(known_kind ? name(kind) : std::string_view("unconfined"));
    out.put(" thread made a forbidden system call: ");
    out.put_dec(static_cast<std::uint32_t>(nr));
    if (info->si_arch != AUDIT_ARCH_X86_64) {
        out.put(" of a foreign ABI (audit arch ");
        out.put_hex(info->si_arch);
        out.put(")");
    } else if (nr >= 0 && nr < kSyscallNames && g_syscall_names[nr][0] != '\0') {
        out.put(" (");
        out.put(g_syscall_names[nr]);
        out.put(")");
    }
    if (uc != nullptr) {
        out.put(" with arguments ");
        constexpr int kArgRegs[] = {REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9};
        for (int i = 0; i < 6; ++i) {
            out.put(i == 0 ? "" : ", ");
            out.put_hex(static_cast<std::uint64_t>(uc->uc_mcontext.gregs[kArgRegs[i]]));
        }
    }
}

void sigsys_handler(int signo, siginfo_t* info, void* context) {
    if (signo != SIGSYS || info == nullptr || info->si_code != kSysSeccomp) {
        LineBuffer line;
        line.put("vireo: SIGSYS that no seccomp filter raised\n");
        line.write_to(STDERR_FILENO);
        ::_exit(1);
    }
    if (g_reporting.exchange(true)) {
        // Another thread is reporting and ends the process; do not cut its report short.
        for (;;) {
            __builtin_ia32_pause();
        }
    }
    const std::uint64_t faults = g_num_faults.fetch_add(1) + 1;
    const auto* uc = static_cast<const ucontext_t*>(context);

    LineBuffer err;  // after a raw-mode console's output: start a fresh line
    err.put("\r\nvireo: seccomp: ");
    describe_fault(err, info, uc);
    err.put("; exiting with status 148\r\n");
    err.write_to(STDERR_FILENO);

    if (const int fd = g_log_fd.load(); fd >= 0) {
        LineBuffer log;
        log.put("[vireo] [error] seccomp: ");
        describe_fault(log, info, uc);
        log.put("; exiting with status 148\n");
        log.write_to(fd);
    }
    if (const int fd = g_metrics_fd.load(); fd >= 0) {
        // One more metrics line, as Firecracker flushes its metrics before exiting.
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        LineBuffer metrics;
        metrics.put("{\"utc_timestamp_ms\":");
        metrics.put_dec(static_cast<std::uint64_t>(now.tv_sec) * 1000 +
                        static_cast<std::uint64_t>(now.tv_nsec) / 1'000'000);
        metrics.put(",\"reason\":\"seccomp\",\"seccomp\":{\"num_faults\":");
        metrics.put_dec(faults);
        metrics.put("}}\n");
        metrics.write_to(fd);
    }
    ::_exit(kExitBadSyscall);
}

// ---- Installing a compiled filter on the calling thread.

Result<void> install(ThreadKind kind) {
    const BpfProgram& program = g_programs[static_cast<std::size_t>(kind)];
    if (program.code.empty()) {
        return Error(fmt::format("seccomp: no filter for the {} thread", name(kind)));
    }
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(program.code.size());
    prog.filter = const_cast<sock_filter*>(program.code.data());
    // Without NO_NEW_PRIVS an unprivileged thread may not install a filter, and an exec could
    // gain privileges the filter's author did not foresee.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return Error::from_errno("seccomp: PR_SET_NO_NEW_PRIVS");
    }
    t_kind = kind;
    t_confined = true;
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        t_confined = false;
        return Error::from_errno(fmt::format("seccomp: installing the {} filter", name(kind)));
    }
    return ok();
}

// A thread that cannot confine itself must not run: it would run unfiltered.
void install_or_die(ThreadKind kind) {
    if (auto r = install(kind); !r) {
        LineBuffer line;
        line.put("vireo: ");
        line.put(r.error().message());
        line.put("\n");
        line.write_to(STDERR_FILENO);
        ::_exit(1);
    }
}

// Tags every trap of `kind`'s program with 1 + kind: the kernel hands a SECCOMP_RET_TRAP's data
// to the SIGSYS handler in si_errno, so a report names the filter that refused the call even for
// threads that inherited it. (libseccomp has no trap-with-data action, hence the patch.)
void tag_traps(BpfProgram& program, ThreadKind kind) {
    for (sock_filter& insn : program.code) {
        if (insn.code == (BPF_RET | BPF_K) && insn.k == SECCOMP_RET_TRAP) {
            insn.k |= static_cast<std::uint32_t>(kind) + 1;
        }
    }
}

// ---- The launcher: the one thread that starts the others (see seccomp.h).

class Launcher {
public:
    Launcher() : m_thread([this] { run(); }) {}
    // Never destroyed: it lives as long as the process (a joinable std::thread must not be).
    ~Launcher() = delete;

    // Waits until the launcher confined itself; its error if it could not.
    Result<void> started() {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [this] { return m_ready; });
        if (!m_start_error.empty()) {
            return Error(m_start_error);
        }
        return ok();
    }

    std::thread launch(ThreadKind kind, std::function<void()> body) {
        Request request{kind, std::move(body), {}, {}, false};
        {
            std::unique_lock lock(m_mutex);
            m_queue.push_back(&request);
            m_cv.notify_all();
            m_cv.wait(lock, [&] { return request.done; });
        }
        if (request.error) {
            std::rethrow_exception(request.error);
        }
        return std::move(request.thread);
    }

private:
    struct Request {
        ThreadKind kind;
        std::function<void()> body;
        std::thread thread;
        std::exception_ptr error;
        bool done;
    };

    void run() {
        static_cast<void>(::prctl(PR_SET_NAME, thread_name(ThreadKind::Launcher), 0, 0, 0));
        auto confined = install(ThreadKind::Launcher);
        {
            std::lock_guard lock(m_mutex);
            m_ready = true;
            m_start_error = confined ? std::string() : confined.error().message();
            m_cv.notify_all();
        }
        if (!confined) {
            return;
        }
        for (;;) {
            std::unique_lock lock(m_mutex);
            m_cv.wait(lock, [this] { return !m_queue.empty(); });
            Request* r = m_queue.front();
            m_queue.pop_front();
            lock.unlock();
            try {
                r->thread = std::thread([kind = r->kind, body = std::move(r->body)] {
                    static_cast<void>(::prctl(PR_SET_NAME, thread_name(kind), 0, 0, 0));
                    install_or_die(kind);
                    body();
                });
            } catch (...) {
                r->error = std::current_exception();
            }
            lock.lock();
            r->done = true;
            m_cv.notify_all();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Request*> m_queue;
    bool m_ready = false;
    std::string m_start_error;
    std::thread m_thread;  // last: starts once the members above exist
};

Launcher* g_launcher = nullptr;

}  // namespace

Result<void> load(const Options& options) {
    if (g_initialized) {
        return Error("seccomp: already set up");
    }
    g_initialized = true;
    if (!options.enabled) {
        return ok();
    }
    auto set = effective_filters(options);
    if (!set) {
        return set.error();
    }
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        const auto kind = static_cast<ThreadKind>(i);
        if (!set->filters[i]) {
            return Error(fmt::format("seccomp: no filter for the {} thread", name(kind)));
        }
        auto program = compile_filter(*set->filters[i]);
        if (!program) {
            const std::string where = options.filter_file.empty()
                                          ? std::string("built-in seccomp filter")
                                          : "seccomp filter " + options.filter_file;
            return program.error().wrap(fmt::format("{}: {}", where, name(kind)));
        }
        tag_traps(*program, kind);
        g_programs[i] = std::move(*program);
    }
    g_loaded = true;
    return ok();
}

Result<void> start() {
    if (!g_loaded || g_enabled) {
        return ok();
    }
    for (int nr = 0; nr < kSyscallNames; ++nr) {
        char* resolved = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (resolved != nullptr) {
            std::strncpy(g_syscall_names[nr], resolved, kSyscallNameSize - 1);
            std::free(resolved);
        }
    }
    // Lazy initializations that would open files under a filter that may forbid it: the time
    // zone (the log's timestamps), and malloc's arena limit, which glibc computes from
    // /sys/devices/system/cpu/online in whichever thread first needs a ninth arena; set here to
    // the value glibc would compute (8 per CPU).
    ::tzset();
    // stdout: glibc fstat()s the descriptor and allocates the buffer at the first output, which
    // happens on whichever thread prints first, under its filter. A static line buffer now.
    static char stdout_buffer[BUFSIZ];
    static_cast<void>(std::setvbuf(stdout, stdout_buffer, _IOLBF, sizeof stdout_buffer));
    static_cast<void>(::mallopt(M_ARENA_MAX, 8 * std::max(1, ::get_nprocs())));
    struct sigaction sa {};
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);  // nothing else runs on this thread during the report
    if (::sigaction(SIGSYS, &sa, nullptr) != 0) {
        return Error::from_errno("seccomp: SIGSYS handler");
    }
    g_enabled = true;
    g_launcher = new Launcher();
    return g_launcher->started();
}

bool enabled() {
    return g_enabled;
}

Result<void> confine_thread(ThreadKind kind) {
    if (!g_enabled) {
        return ok();
    }
    return install(kind);
}

std::thread spawn(ThreadKind kind, std::function<void()> body) {
    if (g_launcher == nullptr) {
        return std::thread([kind, body = std::move(body)] {
            static_cast<void>(::prctl(PR_SET_NAME, thread_name(kind), 0, 0, 0));
            body();
        });
    }
    return g_launcher->launch(kind, std::move(body));
}

namespace {

void replace_fd(std::atomic<int>& slot, const std::string& path) {
    int fd = -1;
    if (!path.empty()) {
        // O_NONBLOCK: a FIFO at the path must not hang the VMM (nor the report).
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                    0644);
    }
    const int old = slot.exchange(fd);
    if (old >= 0) {
        ::close(old);
    }
}

}  // namespace

void report_to_log_file(const std::string& path) {
    replace_fd(g_log_fd, path);
}

void report_to_metrics_file(const std::string& path) {
    replace_fd(g_metrics_fd, path);
}

std::uint64_t num_faults() {
    return g_num_faults.load();
}

}  // namespace vireo::seccomp
