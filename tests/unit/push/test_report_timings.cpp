// The phase timings of a push report: PhaseTimer adds up, and the JSON is seconds in whole milliseconds,
// rounded down, so the phases never add up to more than the run's durationSeconds.

#include <tagwarden/push/report.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

using namespace tagwarden;
using namespace tagwarden::push;
using namespace std::chrono_literals;

TEST_CASE("PhaseTimer adds the time of each scope to its phase", "[unit][push][timings]") {
    PhaseTimings t;
    {
        PhaseTimer timer(t.upload);
        std::this_thread::sleep_for(5ms);
    }
    auto first = t.upload;
    CHECK(first >= 5ms);
    {
        PhaseTimer timer(t.upload);
        std::this_thread::sleep_for(2ms);
    }
    CHECK(t.upload >= first + 2ms);
    CHECK(t.guards == PhaseTimings::Duration::zero());
}

TEST_CASE("timings JSON: the five phases in seconds, whole milliseconds rounded down", "[unit][push][timings]") {
    PhaseTimings t;
    t.guards = 1999us;        // 1.999 ms -> 0.001 s
    t.lock_wait = 0ns;
    t.upload = 2'500'700us;   // 2500.7 ms -> 2.5 s
    t.manifests = 999us;      // under a millisecond -> 0
    t.verify = 12ms;
    auto j = to_json(t);
    CHECK(j == nlohmann::json{{"guards", 0.001}, {"lockWait", 0.0}, {"upload", 2.5}, {"manifests", 0.0}, {"verify", 0.012}});

    PushReport report;
    report.timings = t;
    CHECK(to_json(report).at("timings") == j);
}
