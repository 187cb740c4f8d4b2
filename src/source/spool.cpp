#include "archive.hpp"

#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tagwarden::source {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_spool_prefix = "tagwarden-spool-";

// This machine's name as it appears in spool names ([A-Za-z0-9], at most 24): a /tmp shared between
// machines or PID namespaces holds spools whose pid means nothing here, and those are never swept.
std::string host_tag() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0)
        name[0] = '\0';
    std::string tag;
    for (const char* c = name; *c && tag.size() < 24; ++c)
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))
            tag += *c;
    return tag.empty() ? "host" : tag;
}

fs::path temp_root() {
    const char* tmpdir = std::getenv("TMPDIR");
    return fs::path(tmpdir && *tmpdir ? tmpdir : "/tmp");
}

// Spool directories of processes that no longer exist (a SIGKILLed run cannot clean up after itself).
void remove_stale_spools(const fs::path& root, const std::string& host) {
    std::error_code ec;
    fs::directory_iterator it(root, ec);
    if (ec)
        return;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec)
            return;
        auto name = it->path().filename().string();
        if (!name.starts_with(k_spool_prefix))
            continue;
        // tagwarden-spool-<pid>-<host>-XXXXXX
        auto rest = std::string_view(name).substr(k_spool_prefix.size());
        auto dash = rest.find('-');
        if (dash == std::string_view::npos || dash == 0)
            continue;
        auto host_end = rest.find('-', dash + 1);
        if (host_end == std::string_view::npos || rest.substr(dash + 1, host_end - dash - 1) != host)
            continue;
        pid_t pid = 0;
        bool numeric = true;
        for (char c : rest.substr(0, dash)) {
            if (c < '0' || c > '9' || pid > 100'000'000) {
                numeric = false;
                break;
            }
            pid = pid * 10 + (c - '0');
        }
        struct stat st {};
        if (!numeric || pid <= 0 || pid == ::getpid() || ::lstat(it->path().c_str(), &st) != 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
            continue;
        if (::kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        std::error_code rm;
        fs::remove_all(it->path(), rm);
        if (!rm)
            log::debug("removed " + it->path().string() + ", left by process " + std::to_string(pid) + " which no longer runs");
    }
}

class FdReader final : public image::BlobReader {
public:
    FdReader(int fd, bool owned) : m_fd(fd), m_owned(owned) {}
    ~FdReader() override {
        if (m_owned)
            ::close(m_fd);
    }
    FdReader(const FdReader&) = delete;
    FdReader& operator=(const FdReader&) = delete;

    Result<std::size_t> read(char* buffer, std::size_t size) override {
        while (true) {
            if (cancel::should_stop())
                return fail(cancel::cancelled_error("reading the archive"));
            auto n = ::read(m_fd, buffer, size);
            if (n >= 0)
                return static_cast<std::size_t>(n);
            if (errno == EINTR)
                continue;
            return fail(ErrorKind::invalid_input, std::string("read error: ") + std::strerror(errno));
        }
    }

private:
    int m_fd;
    bool m_owned;
};

} // namespace

Result<std::shared_ptr<SpoolDir>> SpoolDir::create() {
    auto root = temp_root();
    auto host = host_tag();
    remove_stale_spools(root, host);
    auto pattern =
        (root / (std::string(k_spool_prefix) + std::to_string(::getpid()) + "-" + host + "-XXXXXX")).string();
    // mkdtemp creates the directory with mode 0700.
    if (::mkdtemp(pattern.data()) == nullptr)
        return fail(ErrorKind::internal, "cannot create a temporary directory in " + root.string() + ": " +
                                             std::strerror(errno) + " (set TMPDIR to a writable directory)");
    return std::shared_ptr<SpoolDir>(new SpoolDir(fs::path(pattern)));
}

SpoolDir::~SpoolDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
    if (ec)
        log::warn("could not remove the temporary directory " + m_path.string() + ": " + ec.message());
}

fs::path SpoolDir::new_file(std::string_view prefix) { return m_path / (std::string(prefix) + std::to_string(m_next++)); }

std::unique_ptr<image::BlobReader> make_fd_reader(int fd, bool owned) { return std::make_unique<FdReader>(fd, owned); }

} // namespace tagwarden::source
