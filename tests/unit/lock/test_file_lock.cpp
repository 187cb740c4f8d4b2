#include <tagwarden/core/digest.hpp>
#include <tagwarden/lock/lock.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
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

TEST_CASE("file locks: the directory is created 0700, and init says so", "[unit][lock]") {
    TempDir dir;
    auto locks = dir.path / "nested" / "locks";
    auto backend = make_file_backend(locks.string());
    auto made = backend->init();
    REQUIRE(made);
    CHECK_THAT(*made, Catch::Contains("created") && Catch::Contains(locks.string()));
    struct stat st{};
    REQUIRE(::stat(locks.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    auto again = backend->init();
    REQUIRE(again);
    CHECK_THAT(*again, Catch::Contains("exists"));
    CHECK(backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30)));
}

TEST_CASE("file locks: a directory others may write is refused with the fix", "[unit][lock]") {
    TempDir dir;
    fs::create_directories(dir.path);
    REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);
    auto backend = make_file_backend(dir.path.string());
    auto lease = backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::invalid_input);  // not contention: no waiting for --lock-timeout
    CHECK_THAT(lease.error().message, Catch::Contains("writable by group or others") && Catch::Contains("0777") &&
                                          Catch::Contains("chmod 700 " + dir.path.string()));
    CHECK_FALSE(backend->init());
    REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
    CHECK(backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30)));
}

TEST_CASE("file locks: a directory of another user is refused", "[unit][lock]") {
    if (::geteuid() != 0) {
        WARN("needs root to chown a directory to another user; skipped");
        return;
    }
    TempDir dir;
    fs::create_directories(dir.path);
    REQUIRE(::chown(dir.path.c_str(), 65534, 65534) == 0);
    REQUIRE(::chmod(dir.path.c_str(), 0755) == 0);
    auto backend = make_file_backend(dir.path.string());
    auto lease = backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(lease.error().message, Catch::Contains("belongs to uid 65534") && Catch::Contains("--lock file://"));
}

TEST_CASE("file locks: a symbolic link planted as the lock file is not followed", "[unit][lock]") {
    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    REQUIRE(backend->init());
    auto victim = dir.path.parent_path() / (dir.path.filename().string() + "-victim");
    { std::ofstream(victim) << "precious"; }
    auto link = dir.path / file_lock_name("r/app:v1");
    fs::create_symlink(victim, link);
    auto lease = backend->try_acquire("r/app:v1", owner("a"), std::chrono::seconds(30));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(lease.error().message, Catch::Contains("symbolic link") && Catch::Contains(link.string()));
    std::ifstream in(victim);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text == "precious");
    fs::remove(victim);
}

TEST_CASE("file locks: long keys fit NAME_MAX and are still listed and released by key", "[unit][lock]") {
    // A valid repository name of 239 characters: the percent-encoded key alone exceeds NAME_MAX (255).
    std::string repo = "team/" + std::string(234, 'a');
    auto key = tag_lock_key("registry.example.com:5000", repo, "1.0.0-dev");
    auto name = file_lock_name(key);
    CHECK(name.size() <= 200);
    CHECK(name.ends_with(".lock"));
    CHECK(name.starts_with("registry.example.com%3A5000%2Fteam%2Faaaa"));
    CHECK(name.find(std::string(Digest::of(key).hex())) != std::string::npos);
    CHECK(file_lock_name(key + "x") != name);
    // Short keys keep the readable name of earlier versions.
    CHECK(file_lock_name("r.io/app:1.0") == "r.io%2Fapp%3A1.0.lock");
    // The cut never splits a %XX escape.
    for (std::size_t n = 100; n < 130; ++n) {
        auto cut = file_lock_name(std::string(n, 'b') + std::string(100, '/'));
        auto prefix = cut.substr(0, cut.size() - 64 - 6);
        auto percent = prefix.rfind('%');
        CHECK((percent == std::string::npos || percent + 3 <= prefix.size()));
    }

    TempDir dir;
    auto backend = make_file_backend(dir.path.string());
    auto start = std::chrono::steady_clock::now();
    LockSet set(*backend, owner("long"), std::chrono::seconds(30));
    REQUIRE(set.acquire({key}, std::chrono::seconds(5)));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));  // at once, not after the timeout
    auto second = backend->try_acquire(key, owner("b"), std::chrono::seconds(30));
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::lock_unavailable);
    auto listed = backend->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().key == key);
    REQUIRE(backend->force_release(key));
    CHECK_FALSE(set.check());
}
