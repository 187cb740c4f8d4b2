#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/http/transport.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace tagwarden;

namespace {

// Forgets any cancellation when a test ends, so the other tests run uncancelled.
struct CancelReset {
    CancelReset() { cancel::reset_for_tests(); }
    ~CancelReset() { cancel::reset_for_tests(); }
};

} // namespace

TEST_CASE("a cancellation stops waits and work, except inside a shield", "[unit][core][cancel]") {
    CancelReset reset;
    CHECK_FALSE(cancel::requested());
    CHECK(cancel::sleep_for(std::chrono::milliseconds(1)));
    cancel::request(SIGTERM);
    CHECK(cancel::requested());
    CHECK(cancel::should_stop());
    CHECK_FALSE(cancel::sleep_for(std::chrono::seconds(30)));
    CHECK(exit_code(ErrorKind::cancelled) == 143);
    CHECK_THAT(cancel::cancelled_error("pushing").message, Catch::Contains("cancelled by SIGTERM"));
    {
        cancel::Shield shield;
        CHECK_FALSE(cancel::should_stop());
        CHECK(cancel::requested());
        // parallel_for hands the shield on to its workers: undo work finishes after a signal.
        std::atomic<int> ran{0};
        auto r = parallel_for(8, 4, [&](std::size_t) -> Status {
            if (cancel::should_stop())
                return fail(ErrorKind::internal, "worker saw the cancellation through the shield");
            ++ran;
            return {};
        });
        CHECK(r);
        CHECK(ran == 8);
    }
    CHECK(cancel::should_stop());
    auto unshielded = parallel_for(8, 4, [](std::size_t) -> Status { return {}; });
    REQUIRE_FALSE(unshielded);
    CHECK(unshielded.error().kind == ErrorKind::cancelled);
}

TEST_CASE("SIGINT maps to exit 130", "[unit][core][cancel]") {
    CancelReset reset;
    cancel::request(SIGINT);
    CHECK(exit_code(ErrorKind::cancelled) == 130);
}

TEST_CASE("a cancelled transfer is aborted, and a cancelled retry wait ends", "[unit][http][cancel]") {
    CancelReset reset;
    // A server that accepts and never answers.
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    auto port = ntohs(addr.sin_port);

    auto transport = http::make_retry_transport(http::make_curl_transport({}), http::RetryPolicy{});
    http::Request request;
    request.url = "http://127.0.0.1:" + std::to_string(port) + "/v2/";
    std::thread canceller([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel::request(SIGTERM);
    });
    auto r = transport->send(request);
    canceller.join();
    ::close(listener);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cancelled);
    CHECK_FALSE(r.error().transient);

    // Nothing more is sent once cancelled.
    auto again = transport->send(request);
    REQUIRE_FALSE(again);
    CHECK(again.error().kind == ErrorKind::cancelled);
}

TEST_CASE("a request's fence runs before every send and can stop it unsent", "[unit][http][fence]") {
    CancelReset reset;
    auto transport = http::make_curl_transport({});
    http::Request request;
    request.url = "http://127.0.0.1:1/never";
    int checks = 0;
    request.before_send = [&]() -> Status {
        ++checks;
        return fail(ErrorKind::lock_unavailable, "lease lost");
    };
    auto r = transport->send(request);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::lock_unavailable);
    CHECK(checks == 1);
}
