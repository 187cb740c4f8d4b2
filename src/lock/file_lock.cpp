// Locks on one machine: flock(2) on one file per key. The kernel drops a lock when its holder dies, so
// no TTL is needed; the file's content records the owner for `tagwarden lock list`.
#include <tagwarden/http/url.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tagwarden::lock {

namespace {

namespace fs = std::filesystem;

std::string read_fd(int fd) {
    std::string out;
    char buffer[4096];
    off_t offset = 0;
    while (true) {
        auto n = ::pread(fd, buffer, sizeof buffer, offset);
        if (n <= 0)
            break;
        out.append(buffer, static_cast<std::size_t>(n));
        offset += n;
    }
    return out;
}

bool same_file(int fd, const std::string& path) {
    struct stat a{}, b{};
    if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0)
        return false;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

class FileLease final : public Lease {
public:
    FileLease(std::string key, std::string path, int fd) : m_key(std::move(key)), m_path(std::move(path)), m_fd(fd) {}
    ~FileLease() override { (void)release(); }

    [[nodiscard]] const std::string& key() const override { return m_key; }
    [[nodiscard]] std::chrono::steady_clock::time_point valid_until() const override {
        return std::chrono::steady_clock::time_point::max();  // flock lasts as long as this process
    }
    Status renew() override { return check(); }
    Status check() override {
        if (m_fd < 0)
            return fail(ErrorKind::lock_unavailable, m_key + " was released");
        if (!same_file(m_fd, m_path))
            return fail(ErrorKind::lock_unavailable, m_key + " was force-released by someone else");
        return {};
    }
    Status release() override {
        if (m_fd < 0)
            return {};
        if (same_file(m_fd, m_path))
            ::unlink(m_path.c_str());
        ::close(m_fd);  // drops the flock
        m_fd = -1;
        return {};
    }

private:
    std::string m_key, m_path;
    int m_fd;
};

class FileBackend final : public LockBackend {
public:
    explicit FileBackend(std::string dir) : m_dir(std::move(dir)) {}

    [[nodiscard]] std::string describe() const override { return "file://" + m_dir; }
    [[nodiscard]] bool spans_machines() const override { return false; }

    Result<std::unique_ptr<Lease>> try_acquire(const std::string& key, const LockOwner& owner,
                                               std::chrono::seconds ttl) override {
        std::error_code ec;
        fs::create_directories(m_dir, ec);
        if (ec)
            return fail(ErrorKind::lock_unavailable, "cannot create lock directory " + m_dir + ": " + ec.message());
        auto path = path_for(key);
        for (int attempt = 0; attempt < 5; ++attempt) {
            int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0)
                return fail(ErrorKind::lock_unavailable, "cannot open lock file " + path + ": " + std::strerror(errno));
            if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
                int err = errno;
                std::string holder = read_fd(fd);
                ::close(fd);
                if (err != EWOULDBLOCK)
                    return fail(ErrorKind::lock_unavailable, "flock " + path + ": " + std::strerror(err));
                return fail(ErrorKind::lock_unavailable, describe_holder(key, holder));
            }
            // The file may have been unlinked by its releaser between our open and flock: start over.
            if (!same_file(fd, path)) {
                ::close(fd);
                continue;
            }
            LockInfo info{key, owner, Clock::now(), ttl, true};
            auto text = to_json(info).dump();
            if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
                ::close(fd);
                return fail(ErrorKind::lock_unavailable, "cannot write lock file " + path);
            }
            return std::unique_ptr<Lease>(std::make_unique<FileLease>(key, path, fd));
        }
        return fail(ErrorKind::lock_unavailable, key + " is being taken and released too fast to acquire");
    }

    Result<std::vector<LockInfo>> list() override {
        std::vector<LockInfo> out;
        std::error_code ec;
        if (!fs::is_directory(m_dir, ec))
            return out;
        for (const auto& entry : fs::directory_iterator(m_dir, ec)) {
            if (entry.path().extension() != ".lock")
                continue;
            int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            auto text = read_fd(fd);
            bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
            ::close(fd);
            try {
                auto info = lock_info_from_json(nlohmann::json::parse(text));
                if (!info)
                    continue;
                info->held = held;
                out.push_back(*info);
            } catch (const nlohmann::json::exception&) {
                continue;  // a lock being written right now
            }
        }
        return out;
    }

    Status force_release(const std::string& key) override {
        auto path = path_for(key);
        if (::unlink(path.c_str()) != 0)
            return fail(ErrorKind::not_found, "no lock " + key + " in " + describe());
        return {};
    }

private:
    [[nodiscard]] std::string path_for(const std::string& key) const {
        return m_dir + "/" + http::url_encode(key) + ".lock";
    }

    static std::string describe_holder(const std::string& key, const std::string& record) {
        try {
            auto info = lock_info_from_json(nlohmann::json::parse(record));
            if (info)
                return info->describe();
        } catch (const nlohmann::json::exception&) {
        }
        return key + " is held by another process";
    }

    std::string m_dir;
};

} // namespace

std::unique_ptr<LockBackend> make_file_backend(std::string directory) {
    while (directory.size() > 1 && directory.back() == '/')
        directory.pop_back();
    return std::make_unique<FileBackend>(std::move(directory));
}

} // namespace tagwarden::lock
