#include <tagwarden/lock/lock.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

using namespace tagwarden;
using namespace tagwarden::lock;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("tw-locks-" + std::to_string(rd()));
    }
    ~TempDir() { fs::remove_all(path); }
};

LockOwner owner(const std::string& run) {
    LockOwner o = LockOwner::current();
    o.run_id = run;
    return o;
}
} // namespace

TEST_CASE("file locks: one holder at a time, named in the refusal", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    auto first = backend->try_acquire("r/app:1.0-dev", owner("a"), std::chrono::seconds(30));
    REQUIRE(first);
    REQUIRE((*first)->check());

    // flock is per open file description, so a second acquisition in the same process conflicts too.
    auto second = backend->try_acquire("r/app:1.0-dev", owner("b"), std::chrono::seconds(30));
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::lock_unavailable);
    CHECK_THAT(second.error().message, Catch::Contains("pid " + std::to_string(getpid())));

    auto other_key = backend->try_acquire("r/app:1.0-prod", owner("b"), std::chrono::seconds(30));
    CHECK(other_key);

    auto listed = backend->list();
    REQUIRE(listed);
    CHECK(listed->size() == 2);
    for (const auto& info : *listed)
        CHECK(info.held);

    REQUIRE((*first)->release());
    CHECK_FALSE((*first)->check());
    auto again = backend->try_acquire("r/app:1.0-dev", owner("c"), std::chrono::seconds(30));
    CHECK(again);
}

TEST_CASE("file locks: force release fences the holder", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    auto lease = backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30));
    REQUIRE(lease);
    REQUIRE(backend->force_release("r/app:v1"));
    auto check = (*lease)->check();
    REQUIRE_FALSE(check);
    CHECK_THAT(check.error().message, Catch::Contains("force-released"));
    // The next acquirer gets a fresh file; the old holder's release must not remove it.
    auto next = backend->try_acquire("r/app:v1", owner("b"), std::chrono::seconds(30));
    REQUIRE(next);
    (void)(*lease)->release();
    CHECK((*next)->check());
    CHECK(backend->force_release("r/app:nope").error().kind == ErrorKind::not_found);
}

TEST_CASE("file locks: a dead holder's lock is free at once", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    pid_t child = fork();
    if (child == 0) {
        auto lease = backend->try_acquire("r/app:v1", owner("child"), std::chrono::seconds(30));
        _exit(lease ? 0 : 1);  // dies holding the lock (no release)
    }
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WEXITSTATUS(status) == 0);
    auto listed = backend->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK_FALSE(listed->front().held);
    CHECK(backend->try_acquire("r/app:v1", owner("me"), std::chrono::seconds(30)));
}

TEST_CASE("lock sets: sorted acquisition, timeout names the holder, release", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    auto blocker = backend->try_acquire("r/app:b", owner("x"), std::chrono::seconds(30));
    REQUIRE(blocker);

    LockSet set(*backend, owner("set"), std::chrono::seconds(30));
    auto r = set.acquire({"r/app:c", "r/app:b", "r/app:a"}, std::chrono::seconds(1));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::lock_unavailable);
    CHECK_THAT(r.error().message, Catch::Contains("r/app:b"));
    CHECK_THAT(r.error().message, Catch::Contains("--force"));
    // "a" was taken first (sorted order) and must have been given back.
    CHECK(backend->try_acquire("r/app:a", owner("y"), std::chrono::seconds(30)));

    REQUIRE((*blocker)->release());
    LockSet set2(*backend, owner("set2"), std::chrono::seconds(30));
    REQUIRE(set2.acquire({"r/app:c", "r/app:b"}, std::chrono::seconds(1)));
    CHECK(set2.check());
    REQUIRE(backend->force_release("r/app:c"));
    CHECK_FALSE(set2.check());
    REQUIRE(set2.release());
    CHECK(backend->try_acquire("r/app:b", owner("z"), std::chrono::seconds(30)));
}

TEST_CASE("lock URLs choose the backend", "[unit][lock]") {
    CHECK(make_lock_backend("file:///tmp/x", nullptr));
    CHECK(make_lock_backend("etcd://127.0.0.1:2379,127.0.0.1:22379", nullptr));
    CHECK_FALSE(make_lock_backend("file://relative", nullptr));
    CHECK_FALSE(make_lock_backend("etcd://nohostport", nullptr));
    auto unknown = make_lock_backend("redis://x", nullptr);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().kind == ErrorKind::invalid_input);
    CHECK(tag_lock_key("127.0.0.1:5000", "app", "1.0-dev") == "127.0.0.1:5000/app:1.0-dev");
}

TEST_CASE("file locks: a key longer than a file name acquires at once and lists by its key", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    // A valid repository name of 239 characters: its encoded key exceeds NAME_MAX (255).
    std::string repo(239, 'a');
    auto key = tag_lock_key("registry.example.com", repo, "1.0-dev");
    auto lease = backend->try_acquire(key, owner("long"), std::chrono::seconds(30));
    REQUIRE(lease);
    auto listed = backend->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].key == key);
    auto other = backend->try_acquire(key, owner("other"), std::chrono::seconds(30));
    REQUIRE_FALSE(other);
    CHECK(other.error().kind == ErrorKind::lock_unavailable);
    REQUIRE(backend->force_release(key));
}

TEST_CASE("file locks: symbolic links and shared directories are refused", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    REQUIRE(backend->init());
    CHECK((fs::status(dir.path).permissions() & fs::perms::all) == fs::perms::owner_all);
    // A symlink planted under a lock's file name is not followed.
    auto victim = dir.path.string() + "-victim";
    fs::create_symlink(victim, dir.path / "r%2Fapp%3A1.lock");
    auto planted = backend->try_acquire("r/app:1", owner("a"), std::chrono::seconds(30));
    REQUIRE_FALSE(planted);
    CHECK(planted.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(planted.error().message, Catch::Contains("symbolic link"));
    CHECK_FALSE(fs::exists(victim));
    // A directory others can write is refused, naming the fix.
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::group_all | fs::perms::others_all);
    auto shared = backend->try_acquire("r/app:2", owner("a"), std::chrono::seconds(30));
    REQUIRE_FALSE(shared);
    CHECK_THAT(shared.error().message, Catch::Contains("writable by others"));
}
