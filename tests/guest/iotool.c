// vireo-iotool: a small load generator for the I/O benchmarks and scenarios (tests/bench/io-bench.sh).
// Built with `gcc -static` by tests/guest/build and put in the guest initramfs (fio with its shared
// libraries is ~80 MB in Debian 12) and in the outer test host. Block I/O uses O_DIRECT and Linux
// native AIO through raw syscalls (no libaio), so queue depth is real; TCP uses large buffers so the
// tool is not what limits the link.
//
//   vireo-iotool seqread  DEV [-b BS] [-q QD] [-s BYTES]     sequential O_DIRECT reads from offset 0
//   vireo-iotool seqwrite DEV [-b BS] [-q QD] [-s BYTES]     sequential O_DIRECT writes (then fsync)
//   vireo-iotool randread DEV [-b BS] [-q QD] [-t SECONDS]   random aligned O_DIRECT reads
//   vireo-iotool randverify DEV [-b BS] [-q QD] [-t SECONDS] the same, checking stamped data
//   vireo-iotool stamp FILE SIZE                             a file for randverify
//   vireo-iotool tcp-send HOST PORT BYTES    connect, send BYTES, half-close, wait for the peer's close
//   vireo-iotool tcp-fetch HOST PORT         connect, read until EOF
//   vireo-iotool tcp-sink PORT               accept one connection, read until EOF, close
//   vireo-iotool tcp-serve PORT BYTES        accept one connection, send BYTES, close
//   vireo-iotool dirty SIZE RATE             rewrite a SIZE buffer forever, RATE bytes/s (0: flat out)
//
// Each prints one line: `RESULT <mode> bytes=N ops=N seconds=S.sss mbps=M.m iops=N`
// (MB/s = 10^6 bytes per second); errors go to stderr with exit status 1.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char* g_mode = "";

static void die(const char* what) {
    fprintf(stderr, "vireo-iotool %s: %s: %s\n", g_mode, what, strerror(errno));
    exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: vireo-iotool seqread|seqwrite|randread DEV [-b BS] [-q QD] [-s BYTES] [-t SECONDS]\n"
            "       vireo-iotool tcp-send HOST PORT BYTES | tcp-fetch HOST PORT\n"
            "       vireo-iotool tcp-sink PORT | tcp-serve PORT BYTES\n"
            "       vireo-iotool cpuid LEAF [SUBLEAF]   (prints eax ebx ecx edx in hex)\n"
            "       vireo-iotool dirty SIZE RATE   (RATE bytes/s with K/M/G, 0: as fast as it can)\n"
            "       vireo-iotool alloc SIZE SECONDS   (touches SIZE, holds it SECONDS, frees it)\n");
    exit(2);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Sizes: a number with an optional K/M/G suffix (powers of two).
static uint64_t parse_size(const char* s) {
    char* end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        fprintf(stderr, "vireo-iotool: bad size '%s'\n", s);
        exit(2);
    }
    switch (*end) {
        case 'k': case 'K': v <<= 10; end++; break;
        case 'm': case 'M': v <<= 20; end++; break;
        case 'g': case 'G': v <<= 30; end++; break;
        default: break;
    }
    if (*end != '\0') {
        fprintf(stderr, "vireo-iotool: bad size '%s'\n", s);
        exit(2);
    }
    return v;
}

static void result(const char* mode, uint64_t bytes, uint64_t ops, double secs) {
    if (secs <= 0) secs = 1e-9;
    printf("RESULT %s bytes=%llu ops=%llu seconds=%.3f mbps=%.1f iops=%.0f\n", mode,
           (unsigned long long)bytes, (unsigned long long)ops, secs, (double)bytes / secs / 1e6,
           (double)ops / secs);
    fflush(stdout);
}

// xorshift64*: cheap reproducible offsets and buffer contents.
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dULL;
}

static void fill(unsigned char* buf, size_t len) {
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t v = rnd();
        memcpy(buf + i, &v, 8);
    }
}

// ---- block I/O through native AIO ----

static long io_setup_(unsigned nr, aio_context_t* ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_submit_(aio_context_t ctx, long n, struct iocb** iocbs) {
    return syscall(SYS_io_submit, ctx, n, iocbs);
}
static long io_getevents_(aio_context_t ctx, long min, long max, struct io_event* ev) {
    return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

struct job {
    int fd;
    int is_write, is_rand, verify;
    uint64_t bs, size, blocks, next;
    unsigned char* buf;
    struct iocb* cbs;
};

// Aims slot i at the next block (sequential) or a random aligned block; 0 when the run is done.
static int prep(struct job* j, unsigned i) {
    uint64_t off;
    if (j->is_rand) {
        off = (rnd() % j->blocks) * j->bs;
    } else if (j->next + j->bs <= j->size) {
        off = j->next;
        j->next += j->bs;
    } else {
        return 0;
    }
    struct iocb* cb = &j->cbs[i];
    memset(cb, 0, sizeof(*cb));
    cb->aio_fildes = (uint32_t)j->fd;
    cb->aio_lio_opcode = j->is_write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
    cb->aio_buf = (uint64_t)(uintptr_t)(j->buf + (size_t)i * j->bs);
    cb->aio_nbytes = j->bs;
    cb->aio_offset = (int64_t)off;
    cb->aio_data = i;
    return 1;
}

static int block_mode(int argc, char** argv) {
    const char* mode = argv[1];
    if (argc < 3) usage();
    const char* dev = argv[2];
    struct job j;
    memset(&j, 0, sizeof(j));
    j.is_write = strcmp(mode, "seqwrite") == 0;
    j.verify = strcmp(mode, "randverify") == 0;
    j.is_rand = strcmp(mode, "randread") == 0 || j.verify;
    j.bs = j.is_rand ? 4096 : (1 << 20);
    j.size = 256ULL << 20;
    unsigned qd = 1;
    double seconds = 10;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "-b") == 0) j.bs = parse_size(argv[++i]);
        else if (strcmp(argv[i], "-q") == 0) qd = (unsigned)parse_size(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0) j.size = parse_size(argv[++i]);
        else if (strcmp(argv[i], "-t") == 0) seconds = atof(argv[++i]);
        else usage();
    }
    if (j.bs == 0 || j.bs % 512 != 0 || qd == 0 || qd > 256 || seconds <= 0) usage();

    j.fd = open(dev, (j.is_write ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (j.fd < 0) die(dev);
    uint64_t devsize = 0;
    struct stat st;
    if (fstat(j.fd, &st) != 0) die("fstat");
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(j.fd, BLKGETSIZE64, &devsize) != 0) die("BLKGETSIZE64");
    } else {
        devsize = (uint64_t)st.st_size;
    }
    // Reads stay inside the device; so do writes to a block device.
    if ((!j.is_write || S_ISBLK(st.st_mode)) && j.size > devsize) j.size = devsize - devsize % j.bs;
    j.blocks = devsize / j.bs;
    if (!j.is_write && j.blocks == 0) {
        errno = EINVAL;
        die("device smaller than one block");
    }

    if (posix_memalign((void**)&j.buf, 4096, (size_t)(j.bs * qd)) != 0) die("posix_memalign");
    fill(j.buf, (size_t)(j.bs * qd));
    aio_context_t ctx = 0;
    if (io_setup_(qd, &ctx) != 0) die("io_setup");
    j.cbs = calloc(qd, sizeof(*j.cbs));
    struct iocb** ptrs = calloc(qd, sizeof(*ptrs));
    struct io_event* ev = calloc(qd, sizeof(*ev));
    if (!j.cbs || !ptrs || !ev) die("calloc");

    uint64_t done_bytes = 0, ops = 0, inflight = 0;
    double start = now(), deadline = start + seconds;
    int stop = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < qd && prep(&j, i); i++) ptrs[n++] = &j.cbs[i];
    if (n > 0 && io_submit_(ctx, n, ptrs) != (long)n) die("io_submit");
    inflight = n;
    while (inflight > 0) {
        long got = io_getevents_(ctx, 1, qd, ev);
        if (got < 0) {
            if (errno == EINTR) continue;
            die("io_getevents");
        }
        if (j.is_rand && now() >= deadline) stop = 1;
        unsigned resubmit = 0;
        for (long k = 0; k < got; k++) {
            if (ev[k].res != (int64_t)j.bs) {
                errno = ev[k].res < 0 ? (int)-ev[k].res : EIO;
                die(j.is_write ? "write" : "read");
            }
            done_bytes += j.bs;
            ops++;
            inflight--;
            unsigned slot = (unsigned)ev[k].data;
            if (j.verify) {
                // Every 8 bytes of a stamped block hold its byte offset / 4096 (see stamp).
                const struct iocb* cb = &j.cbs[slot];
                const uint64_t* w = (const uint64_t*)(uintptr_t)cb->aio_buf;
                for (uint64_t b = 0; b < j.bs / 8; b++) {
                    uint64_t want = ((uint64_t)cb->aio_offset + b * 8) / 4096;
                    if (w[b] != want) {
                        fprintf(stderr, "vireo-iotool: randverify: block at %llu: word %llu is %llu, want %llu\n",
                                (unsigned long long)cb->aio_offset, (unsigned long long)b,
                                (unsigned long long)w[b], (unsigned long long)want);
                        exit(1);
                    }
                }
            }
            if (!stop && prep(&j, slot)) ptrs[resubmit++] = &j.cbs[slot];
        }
        if (resubmit > 0) {
            if (io_submit_(ctx, resubmit, ptrs) != (long)resubmit) die("io_submit");
            inflight += resubmit;
        }
    }
    if (j.is_write && fsync(j.fd) != 0) die("fsync");
    double secs = now() - start;
    close(j.fd);
    result(mode, done_bytes, ops, secs);
    return 0;
}

// ---- TCP ----

enum { kNetBuf = 1 << 20 };

static int tcp_connect(const char* host, const char* port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "vireo-iotool: '%s' is not an IPv4 address\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    // The peer may still be starting its listener: retry for up to 30 s.
    for (int i = 0;; i++) {
        if (connect(fd, (struct sockaddr*)&sa, sizeof(sa)) == 0) break;
        if (i >= 300 || (errno != ECONNREFUSED && errno != ENETUNREACH && errno != EHOSTUNREACH))
            die("connect");
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        usleep(100000);
    }
    return fd;
}

static int tcp_accept(const char* port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr*)&sa, sizeof(sa)) != 0) die("bind");
    if (listen(ls, 1) != 0) die("listen");
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) die("accept");
    close(ls);
    return fd;
}

static uint64_t send_bytes(int fd, uint64_t total) {
    static unsigned char buf[kNetBuf];
    fill(buf, sizeof(buf));
    uint64_t sent = 0;
    while (sent < total) {
        size_t chunk = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
        ssize_t w = send(fd, buf, chunk, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        sent += (uint64_t)w;
    }
    return sent;
}

static uint64_t recv_all(int fd) {
    static unsigned char buf[kNetBuf];
    uint64_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("recv");
        }
        if (r == 0) return got;
        got += (uint64_t)r;
    }
}

static int tcp_mode(int argc, char** argv) {
    const char* mode = argv[1];
    if (strcmp(mode, "tcp-send") == 0 && argc == 5) {
        uint64_t total = parse_size(argv[4]);
        int fd = tcp_connect(argv[2], argv[3]);
        double start = now();
        uint64_t sent = send_bytes(fd, total);
        // Half-close and wait for the receiver to close: every byte has reached its application.
        shutdown(fd, SHUT_WR);
        recv_all(fd);
        result(mode, sent, 0, now() - start);
        close(fd);
        return 0;
    }
    if (strcmp(mode, "tcp-fetch") == 0 && argc == 4) {
        int fd = tcp_connect(argv[2], argv[3]);
        double start = now();
        uint64_t got = recv_all(fd);
        result(mode, got, 0, now() - start);
        close(fd);
        return 0;
    }
    if (strcmp(mode, "tcp-sink") == 0 && argc == 3) {
        int fd = tcp_accept(argv[2]);
        double start = now();
        uint64_t got = recv_all(fd);
        result(mode, got, 0, now() - start);
        close(fd);
        return 0;
    }
    if (strcmp(mode, "tcp-serve") == 0 && argc == 4) {
        uint64_t total = parse_size(argv[3]);
        int fd = tcp_accept(argv[2]);
        double start = now();
        uint64_t sent = send_bytes(fd, total);
        shutdown(fd, SHUT_WR);
        result(mode, sent, 0, now() - start);
        close(fd);
        return 0;
    }
    usage();
    return 2;
}

// stamp FILE SIZE: every 8-byte word holds the index of its 4 KiB block (for randverify).
static int stamp_mode(int argc, char** argv) {
    if (argc != 4) usage();
    uint64_t size = parse_size(argv[3]);
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(argv[2]);
    uint64_t* block = malloc(4096);
    if (!block) die("malloc");
    for (uint64_t i = 0; i < size / 4096; i++) {
        for (int k = 0; k < 512; k++) block[k] = i;
        if (write(fd, block, 4096) != 4096) die("write");
    }
    if (fsync(fd) != 0) die("fsync");
    close(fd);
    return 0;
}

// cpuid LEAF [SUBLEAF]: what the VMM shows this vCPU (the topology checks of nested scenarios).
static int cpuid_mode(int argc, char** argv) {
    if (argc != 3 && argc != 4) usage();
    uint32_t leaf = (uint32_t)strtoul(argv[2], NULL, 0);
    uint32_t sub = argc == 4 ? (uint32_t)strtoul(argv[3], NULL, 0) : 0;
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
    printf("%#x %#x %#x %#x\n", a, b, c, d);
    return 0;
}

// dirty SIZE RATE: a memory load for live migration (tests/bench/migrate-bench.sh and the
// migration scenarios). Writes one word into each 4 KiB page of a SIZE buffer, page after page,
// round and round, so each write dirties a page; RATE is in bytes of pages dirtied per second,
// paced in 10 ms slices (0: no pacing). Runs until killed; prints nothing once started.
__attribute__((noreturn)) static void dirty_mode(int argc, char** argv) {
    if (argc != 4) usage();
    const uint64_t size = parse_size(argv[2]);
    const uint64_t rate = parse_size(argv[3]);
    if (size < 4096) usage();
    const uint64_t pages = size / 4096;
    volatile uint64_t* buf = malloc(pages * 4096);
    if (!buf) die("malloc");
    const uint64_t per_slice = rate == 0 ? pages : (rate / 4096 + 99) / 100;  // pages per 10 ms
    uint64_t page = 0, round = 0;
    double next = now();
    for (;;) {
        for (uint64_t i = 0; i < per_slice; i++) {
            buf[page * 512] = round;
            if (++page == pages) {
                page = 0;
                round++;
            }
        }
        if (rate == 0) continue;
        next += 0.01;
        const double wait = next - now();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        } else if (wait < -1.0) {
            next = now();  // starved of CPU for a second: do not race to catch up
        }
    }
}

// alloc SIZE SECONDS: the balloon scenarios' memory load. Allocates SIZE, writes every 4 KiB
// page (so the guest really backs it), prints "ALLOCATED SIZE", holds it SECONDS, frees it and
// prints "FREED". Under memory pressure the kernel may OOM-kill it: the missing "FREED" shows it.
static int alloc_mode(int argc, char** argv) {
    if (argc != 4) usage();
    const uint64_t size = parse_size(argv[2]);
    const int seconds = atoi(argv[3]);
    if (size < 4096 || seconds < 0) usage();
    char* buf = malloc(size);
    if (!buf) die("malloc");
    for (uint64_t at = 0; at < size; at += 4096) buf[at] = (char)(at >> 12 | 1);
    printf("ALLOCATED %llu\n", (unsigned long long)size);
    fflush(stdout);
    sleep((unsigned)seconds);
    free(buf);
    printf("FREED\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) usage();
    g_mode = argv[1];
    if (argc > 1 && strcmp(argv[1], "stamp") == 0) return stamp_mode(argc, argv);
    if (strcmp(argv[1], "cpuid") == 0) return cpuid_mode(argc, argv);
    if (strcmp(argv[1], "dirty") == 0) dirty_mode(argc, argv);
    if (strcmp(argv[1], "alloc") == 0) return alloc_mode(argc, argv);
    if (strcmp(argv[1], "seqread") == 0 || strcmp(argv[1], "seqwrite") == 0 ||
        strcmp(argv[1], "randread") == 0 || strcmp(argv[1], "randverify") == 0)
        return block_mode(argc, argv);
    if (strncmp(argv[1], "tcp-", 4) == 0) return tcp_mode(argc, argv);
    usage();
    return 2;
}
