// Locks on one machine: flock(2) on one file per key. The kernel drops a lock when its holder dies, so
// no TTL is needed; the file's content records the owner for `tagwarden lock list`.
#include <tagwarden/core/digest.hpp>
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
        TW_TRY(prepare_directory());
        auto path = path_for(key);
        for (int attempt = 0; attempt < 5; ++attempt) {
            // O_NOFOLLOW: in a shared /tmp, a symlink planted under a lock's name must not redirect the write.
            int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0)
                return fail(ErrorKind::invalid_input,
                            "cannot open lock file " + path + ": " + std::strerror(errno) +
                                (errno == ELOOP ? " (it is a symbolic link: remove it, and use a lock directory only "
                                                  "you can write)"
                                                : ""));
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

    Result<std::string> init() override {
        TW_TRY(prepare_directory());
        return "lock directory " + m_dir + " is ready (mode 0700, owned by you); it holds on this machine only";
    }

    Status force_release(const std::string& key) override {
        auto path = path_for(key);
        if (::unlink(path.c_str()) != 0)
            return fail(ErrorKind::not_found, "no lock " + key + " in " + describe());
        return {};
    }

private:
    // The directory exists, is ours and only ours: another user able to write it could plant or remove locks.
    Status prepare_directory() const {
        if (::mkdir(m_dir.c_str(), 0700) != 0 && errno != EEXIST) {
            std::error_code ec;
            fs::create_directories(fs::path(m_dir).parent_path(), ec);
            if (::mkdir(m_dir.c_str(), 0700) != 0 && errno != EEXIST)
                return fail(ErrorKind::invalid_input,
                            "cannot create lock directory " + m_dir + ": " + std::strerror(errno));
        }
        struct stat st{};
        if (::lstat(m_dir.c_str(), &st) != 0)
            return fail(ErrorKind::invalid_input, "cannot read lock directory " + m_dir + ": " + std::strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return fail(ErrorKind::invalid_input, "lock directory " + m_dir +
                                                      " is not a directory (a symbolic link or a file): remove it or "
                                                      "choose another with --lock file:///DIR");
        if (st.st_uid != ::geteuid())
            return fail(ErrorKind::invalid_input, "lock directory " + m_dir + " belongs to uid " +
                                                      std::to_string(st.st_uid) +
                                                      ", not to you: choose a directory of your own with --lock "
                                                      "file:///DIR (or set TMPDIR)");
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
            return fail(ErrorKind::invalid_input, "lock directory " + m_dir +
                                                      " is writable by others: chmod 700 it, or choose another with "
                                                      "--lock file:///DIR");
        return {};
    }

    // One file per key; a key too long for a file name (NAME_MAX is 255) is shortened with its SHA-256,
    // and the key itself is kept in the file's record.
    [[nodiscard]] std::string path_for(const std::string& key) const {
        auto name = http::url_encode(key);
        if (name.size() > 200)
            name = name.substr(0, 120) + "-" + std::string(Digest::of(key).hex());
        return m_dir + "/" + name + ".lock";
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
