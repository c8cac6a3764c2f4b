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

#include "api/api_client.h"
#include "base/command_queue.h"
#include "base/unique_fd.h"
#include "raw_http.h"

namespace vireo {
namespace {

using test::connect_to;
using test::HttpResponse;
using test::Json;
using test::raw_request;
using test::read_until_close;
using test::request;
using test::send_all;
using test::TestHandler;
using Clock = std::chrono::steady_clock;

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
    auto hinting = request(m_socket, "GET", "/balloon/hinting/status");
    EXPECT_EQ(hinting.status, 400);
    EXPECT_NE(hinting.fault().find("is not supported by vireo yet"), std::string::npos);

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

TEST_F(ApiServerTest, KeepAliveConnectionServesSeveralRequests) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    UniqueFd fd = connect_to(m_socket);
    ASSERT_TRUE(fd.valid());
    const std::string body = R"({"kernel_image_path":"/k"})";
    // Two requests in one write (pipelined), then a third: each answered in order.
    send_all(fd.get(),
             "PUT /boot-source HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body + "GET /version HTTP/1.1\r\n\r\n");
    // Both answers may arrive in one read: collect until the second one is complete.
    std::string both = read_until_close(fd.get(), std::chrono::seconds(10), true);
    for (int i = 0; i < 100; ++i) {
        const auto at = both.find("HTTP/1.1 ", 1);
        if (at != std::string::npos && test::complete_response(both.substr(at))) {
            break;
        }
        both += read_until_close(fd.get(), std::chrono::milliseconds(100), true);
    }
    const auto split = std::min(both.find("HTTP/1.1 ", 1), both.size());
    auto first = test::parse_response(both.substr(0, split));
    EXPECT_EQ(first.status, 204);
    auto second = test::parse_response(both.substr(split));
    EXPECT_EQ(second.status, 200);
    EXPECT_EQ(Json::parse(second.body, nullptr, false).value("firecracker_version", ""), "0.1.0");
    send_all(fd.get(), "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    auto third = test::parse_response(read_until_close(fd.get(), std::chrono::seconds(10)));
    EXPECT_EQ(third.status, 200);
    EXPECT_EQ(Json::parse(third.body, nullptr, false).value("id", ""), "test-vm");
}

TEST_F(ApiServerTest, InTreeClientTalksToTheServer) {
    ApiServer server;
    ASSERT_TRUE(server.start(m_socket, m_handler));
    auto info = api_call(m_socket, "GET", "/");
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->status, 200);
    auto put = api_call(m_socket, "PUT", "/boot-source", R"({"kernel_image_path":"/k"})");
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ(put->status, 204);
    auto patch = api_call(m_socket, "PATCH", "/vm", R"({"state":"Paused"})");
    ASSERT_TRUE(patch) << patch.error().message();
    EXPECT_EQ(patch->status, 204);
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
