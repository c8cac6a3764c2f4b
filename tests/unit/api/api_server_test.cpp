// The API server over a real Unix socket in a temporary directory, with a raw socket client so
// malformed and silent clients can be tested too.
#include "api/api_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/command_queue.h"
#include "base/unique_fd.h"

namespace vireo {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

UniqueFd connect_to(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        return UniqueFd();
    }
    return fd;
}

void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return;  // the server may close early (e.g. an oversized body)
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Whether `raw` holds a whole response (headers and Content-Length bytes of body).
bool complete_response(const std::string& raw) {
    auto split = raw.find("\r\n\r\n");
    if (split == std::string::npos) {
        return false;
    }
    auto length = raw.find("Content-Length: ");
    std::size_t body = length == std::string::npos || length > split
                           ? 0
                           : std::stoul(raw.substr(length + 16, split - length - 16));
    return raw.size() >= split + 4 + body;
}

// Everything the peer sends until it closes, or until `timeout` passes; with `one_response`,
// only until a whole response has arrived (the server may keep the connection open).
std::string read_until_close(int fd, std::chrono::milliseconds timeout, bool one_response = false) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (::poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) {
            break;
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (one_response && complete_response(out)) {
            break;
        }
    }
    return out;
}

struct HttpResponse {
    int status = 0;
    std::string headers;
    std::string body;
    std::string fault() const {
        auto j = Json::parse(body, nullptr, false);
        return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>()
                                                            : "<no fault_message>";
    }
};

HttpResponse parse_response(const std::string& raw) {
    HttpResponse r;
    if (raw.rfind("HTTP/1.1 ", 0) == 0) {
        r.status = std::stoi(raw.substr(9, 3));
    }
    auto split = raw.find("\r\n\r\n");
    if (split != std::string::npos) {
        r.headers = raw.substr(0, split);
        r.body = raw.substr(split + 4);
    }
    return r;
}

HttpResponse raw_request(const std::string& path, const std::string& request) {
    UniqueFd fd = connect_to(path);
    if (!fd.valid()) {
        return {};
    }
    send_all(fd.get(), request);
    return parse_response(read_until_close(fd.get(), std::chrono::seconds(10), true));
}

HttpResponse request(const std::string& path, const std::string& method, const std::string& url,
                     const std::string& body = "") {
    std::string req = method + " " + url + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    if (!body.empty() || method == "PUT" || method == "PATCH") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    }
    return raw_request(path, req + "\r\n" + body);
}

// Answers like a VMM would and remembers what it was asked.
class TestHandler final : public ApiHandler {
public:
    ApiResponse handle(ApiRequest request) override {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(request);
        if (std::holds_alternative<GetInstanceInfo>(request)) {
            return ApiResponse::ok(InstanceInfo{.id = "test-vm", .vmm_version = "0.1.0"});
        }
        if (std::holds_alternative<GetVersion>(request)) {
            return ApiResponse::ok(FirecrackerVersion{"0.1.0"});
        }
        if (std::holds_alternative<GetMachineConfig>(request)) {
            return ApiResponse::ok(MachineConfiguration{});
        }
        if (std::holds_alternative<GetVmConfig>(request)) {
            return ApiResponse::ok(VmConfig{});
        }
        if (auto* drive = std::get_if<Drive>(&request); drive && drive->drive_id == "refused") {
            return ApiResponse::bad_request("drive refused by the VMM");
        }
        if (auto* drive = std::get_if<Drive>(&request); drive && drive->drive_id == "bodiless") {
            return ApiResponse{400, {}};
        }
        return ApiResponse::no_content();
    }

    std::vector<ApiRequest> requests() {
        std::lock_guard lock(m_mutex);
        return m_requests;
    }

private:
    std::mutex m_mutex;
    std::vector<ApiRequest> m_requests;
};

class ApiServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("vireo-api-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(m_dir);
        std::filesystem::create_directories(m_dir);
        m_socket = (m_dir / "api.sock").string();
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
    std::string m_socket;
    TestHandler m_handler;
};

TEST_F(ApiServerTest, SocketIsCreated0600AndRemovedOnStop) {
    // Even with a permissive umask the socket is never reachable by other users.
    mode_t old_umask = ::umask(0);
    ApiServer server;
    auto started = server.start(m_socket, m_handler);
    ::umask(old_umask);
    ASSERT_TRUE(started) << started.error().message();
    EXPECT_TRUE(server.running());
    struct stat st {};
    ASSERT_EQ(::lstat(m_socket.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    server.stop();
    EXPECT_FALSE(server.running());
    EXPECT_FALSE(std::filesystem::exists(m_socket));
    server.stop();  // idempotent

    // Again on the same path, and the destructor cleans up too.
    {
        ApiServer again;
        ASSERT_TRUE(again.start(m_socket, m_handler));
        EXPECT_TRUE(std::filesystem::exists(m_socket));
    }
    EXPECT_FALSE(std::filesystem::exists(m_socket));
}

TEST_F(ApiServerTest, AnswersThroughTheHandler) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));

    auto info = request(m_socket, "GET", "/");
    EXPECT_EQ(info.status, 200);
    EXPECT_NE(info.headers.find("Content-Type: application/json"), std::string::npos);
    EXPECT_EQ(Json::parse(info.body)["id"], "test-vm");
    EXPECT_EQ(Json::parse(info.body)["state"], "Not started");
    EXPECT_EQ(Json::parse(request(m_socket, "GET", "/version").body)["firecracker_version"],
              "0.1.0");
    EXPECT_EQ(Json::parse(request(m_socket, "GET", "/machine-config").body)["vcpu_count"], 1);
    EXPECT_TRUE(Json::parse(request(m_socket, "GET", "/vm/config").body)["drives"].is_array());

    auto put = request(m_socket, "PUT", "/boot-source",
                       R"({"kernel_image_path":"/k","boot_args":"console=ttyS0"})");
    EXPECT_EQ(put.status, 204);
    EXPECT_TRUE(put.body.empty());
    auto requests = m_handler.requests();
    ASSERT_FALSE(requests.empty());
    ASSERT_TRUE(std::holds_alternative<BootSource>(requests.back()));
    EXPECT_EQ(std::get<BootSource>(requests.back()).boot_args, "console=ttyS0");

    EXPECT_EQ(request(m_socket, "PATCH", "/vm", R"({"state":"Paused"})").status, 204);
    EXPECT_EQ(request(m_socket, "PUT", "/actions", R"({"action_type":"InstanceStart"})").status,
              204);
    // URL-encoded ids are decoded before routing.
    auto drive = request(m_socket, "PUT", "/drives/%72oot",
                         R"({"drive_id":"root","path_on_host":"/r","is_root_device":true,)"
                         R"("is_read_only":false})");
    EXPECT_EQ(drive.status, 204) << drive.body;
}

TEST_F(ApiServerTest, ErrorsAre400WithAFaultMessage) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    const std::size_t handled_before = m_handler.requests().size();

    auto bad_body = request(m_socket, "PUT", "/machine-config", R"({"vcpu_count":0})");
    EXPECT_EQ(bad_body.status, 400);
    EXPECT_NE(bad_body.fault().find("vcpu_count"), std::string::npos) << bad_body.body;

    auto refused = request(m_socket, "PUT", "/drives/refused",
                           R"({"drive_id":"refused","path_on_host":"/r","is_root_device":false,)"
                           R"("is_read_only":false})");
    EXPECT_EQ(refused.status, 400);
    EXPECT_EQ(refused.fault(), "drive refused by the VMM");
    auto bodiless = request(m_socket, "PUT", "/drives/bodiless",
                            R"({"drive_id":"bodiless","path_on_host":"/r","is_root_device":false,)"
                            R"("is_read_only":false})");
    EXPECT_EQ(bodiless.status, 400);
    EXPECT_EQ(bodiless.fault(), "request failed (status 400)");

    auto unknown = request(m_socket, "GET", "/no/such/thing");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(unknown.fault().rfind("Invalid request method and/or path", 0), 0u) << unknown.body;
    EXPECT_EQ(request(m_socket, "DELETE", "/drives/x").status, 400);
    EXPECT_EQ(request(m_socket, "POST", "/actions", "{}").status, 400);

    auto snapshot = request(m_socket, "PUT", "/snapshot/create", R"({"mem_file_path":"/m"})");
    EXPECT_EQ(snapshot.status, 400);
    EXPECT_NE(snapshot.fault().find("snapshot_path"), std::string::npos) << snapshot.fault();
    auto balloon = request(m_socket, "GET", "/balloon");
    EXPECT_EQ(balloon.status, 400);
    EXPECT_NE(balloon.fault().find("is not supported by vireo yet"), std::string::npos);

    auto oversized = request(m_socket, "PUT", "/boot-source", std::string(60000, ' '));
    EXPECT_EQ(oversized.status, 400);
    EXPECT_NE(oversized.fault().find("51200"), std::string::npos) << oversized.body;

    auto garbage = raw_request(m_socket, "NONSENSE\r\n\r\n");
    EXPECT_EQ(garbage.status, 400);
    EXPECT_NE(garbage.fault(), "<no fault_message>");

    auto long_path = request(m_socket, "GET", "/" + std::string(5000, 'a'));
    EXPECT_EQ(long_path.status, 400);
    EXPECT_NE(long_path.fault().find("Invalid request method and/or path"), std::string::npos);

    // Only the drives the VMM refused reached the handler.
    EXPECT_EQ(m_handler.requests().size(), handled_before + 2);
}

TEST_F(ApiServerTest, CountsRequestsPerEndpoint) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    request(m_socket, "GET", "/");
    request(m_socket, "GET", "/");
    request(m_socket, "PUT", "/boot-source", R"({"kernel_image_path":"/k"})");
    request(m_socket, "PUT", "/boot-source", R"({"kernel_image_path":5})");
    request(m_socket, "GET", "/nope");
    request(m_socket, "PUT", "/vsock", "{}");
    const auto& m = server.metrics();
    EXPECT_EQ(m.requests(ApiEndpoint::GetInstanceInfo), 2u);
    EXPECT_EQ(m.fails(ApiEndpoint::GetInstanceInfo), 0u);
    EXPECT_EQ(m.requests(ApiEndpoint::PutBootSource), 2u);
    EXPECT_EQ(m.fails(ApiEndpoint::PutBootSource), 1u);
    EXPECT_EQ(m.fails(ApiEndpoint::Invalid), 1u);
    EXPECT_EQ(m.fails(ApiEndpoint::NotSupported), 1u);
    EXPECT_EQ(m.total_requests(), 6u);
}

TEST_F(ApiServerTest, StaleSocketIsReplaced) {
    {
        // A socket file whose listener is gone (a crashed VMM leaves this behind).
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        m_socket.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
        ASSERT_EQ(::listen(fd.get(), 1), 0);
    }
    ASSERT_TRUE(std::filesystem::is_socket(m_socket));
    ApiServer server;
    auto started = server.start(m_socket, m_handler);
    ASSERT_TRUE(started) << started.error().message();
    EXPECT_EQ(request(m_socket, "GET", "/").status, 200);
}

TEST_F(ApiServerTest, LiveSocketIsRefused) {
    ApiServer first;
    ASSERT_TRUE(first.start(m_socket, m_handler));
    ApiServer second;
    auto started = second.start(m_socket, m_handler);
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message().find(m_socket), std::string::npos);
    EXPECT_NE(started.error().message().find("in use"), std::string::npos);
    // The first server is untouched and still answers.
    EXPECT_EQ(request(m_socket, "GET", "/").status, 200);
    second.stop();
    EXPECT_TRUE(std::filesystem::exists(m_socket));
}

TEST_F(ApiServerTest, PathThatIsNotASocketIsRefused) {
    { std::ofstream(m_socket) << "precious"; }
    ApiServer server;
    auto started = server.start(m_socket, m_handler);
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message().find(m_socket), std::string::npos);
    EXPECT_NE(started.error().message().find("not a socket"), std::string::npos);
    std::ifstream in(m_socket);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "precious");

    auto too_long = server.start("/" + std::string(200, 'a'), m_handler);
    ASSERT_FALSE(too_long);
    auto no_dir = server.start((m_dir / "missing" / "api.sock").string(), m_handler);
    ASSERT_FALSE(no_dir);
    EXPECT_FALSE(server.running());
}

TEST_F(ApiServerTest, SilentClientDoesNotBlockOthers) {
    ApiServer server(ApiServer::Options{.read_timeout = std::chrono::milliseconds(1000)});
    ASSERT_TRUE(server.start(m_socket, m_handler));
    UniqueFd silent = connect_to(m_socket);
    ASSERT_TRUE(silent.valid());
    UniqueFd half = connect_to(m_socket);  // sends half a request, then stalls
    ASSERT_TRUE(half.valid());
    send_all(half.get(), "PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"kern");

    auto start = Clock::now();
    auto info = request(m_socket, "GET", "/");
    EXPECT_EQ(info.status, 200);
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(900));

    // And the silent ones are dropped after the timeout instead of holding a worker forever.
    auto closed = read_until_close(silent.get(), std::chrono::seconds(5));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
    read_until_close(half.get(), std::chrono::seconds(5));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(6));
}

TEST_F(ApiServerTest, ClientHangingUpBeforeTheAnswerIsHarmless) {
    class SlowHandler final : public ApiHandler {
    public:
        ApiResponse handle(ApiRequest) override {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            return ApiResponse::ok(VmConfig{});
        }
    } slow;
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, slow));
    for (int i = 0; i < 3; ++i) {
        UniqueFd fd = connect_to(m_socket);
        ASSERT_TRUE(fd.valid());
        send_all(fd.get(), "GET /vm/config HTTP/1.1\r\n\r\n");
    }  // closed before the answers are written
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_TRUE(server.running());
    EXPECT_EQ(request(m_socket, "GET", "/vm/config").status, 200);
}

// The intended wiring: the handler forwards each request through a CommandQueue to a VMM thread
// and blocks until it answers.
class QueueHandler final : public ApiHandler {
public:
    using Queue = CommandQueue<ApiRequest, ApiResponse>;
    explicit QueueHandler(Queue& queue) : m_queue(queue) {}
    ApiResponse handle(ApiRequest request) override {
        auto response = m_queue.call(std::move(request));
        return response ? std::move(*response) : ApiResponse::internal_error("the VMM is gone");
    }

private:
    Queue& m_queue;
};

TEST_F(ApiServerTest, HandlerBackedByACommandQueue) {
    auto queue = QueueHandler::Queue::create();
    ASSERT_TRUE(queue);
    QueueHandler handler(**queue);
    std::atomic<bool> stop{false};
    std::thread vmm([&] {
        while (!stop) {
            pollfd p{(*queue)->fd(), POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) {
                continue;
            }
            while (auto command = (*queue)->poll()) {
                if (std::holds_alternative<GetInstanceInfo>(command->request)) {
                    command->respond(
                        ApiResponse::ok(InstanceInfo{.id = "q", .state = InstanceState::Running}));
                } else {
                    command->respond(ApiResponse::no_content());
                }
            }
        }
    });
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, handler));
    EXPECT_EQ(Json::parse(request(m_socket, "GET", "/").body)["state"], "Running");
    EXPECT_EQ(request(m_socket, "PATCH", "/vm", R"({"state":"Resumed"})").status, 204);
    stop = true;
    vmm.join();
    (*queue)->close();
    auto gone = request(m_socket, "GET", "/");
    EXPECT_EQ(gone.status, 500);
    EXPECT_EQ(gone.fault(), "the VMM is gone");
    server.stop();
}

}  // namespace
}  // namespace vireo
