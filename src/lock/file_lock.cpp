// Locks on one machine: flock(2) on one file per key. The kernel drops a lock when its holder dies, so
// no TTL is needed; the file's content records the owner (and the key) for `tagwarden lock list`.
// The directory is often in a shared /tmp: it must belong to this user and not be writable by others,
// and lock files are opened with O_NOFOLLOW, so nobody else can plant a file or a link there.
#include <tagwarden/core/digest.hpp>
#include <tagwarden/http/url.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
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

std::string mode_text(mode_t mode) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "%04o", static_cast<unsigned>(mode & 07777));
    return buffer;
}

// Creates `dir` (mode 0700) when missing; refuses one that another user owns or that group or others may
// write. Sets `created` when this call made it.
Status ensure_private_directory(const std::string& dir, bool& created) {
    created = false;
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return fail(ErrorKind::invalid_input, "cannot inspect the lock directory " + dir + ": " +
                                                      std::strerror(errno) + " (choose another with --lock file:///DIR)");
        std::error_code ec;
        fs::create_directories(fs::path(dir).parent_path(), ec);
        if (ec)
            return fail(ErrorKind::invalid_input, "cannot create the lock directory " + dir + ": " + ec.message() +
                                                      " (choose another with --lock file:///DIR)");
        if (::mkdir(dir.c_str(), 0700) == 0)
            created = true;
        else if (errno != EEXIST)
            return fail(ErrorKind::invalid_input, "cannot create the lock directory " + dir + ": " +
                                                      std::strerror(errno) + " (choose another with --lock file:///DIR)");
        if (::stat(dir.c_str(), &st) != 0)
            return fail(ErrorKind::invalid_input, "cannot inspect the lock directory " + dir + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return fail(ErrorKind::invalid_input, "the lock directory " + dir +
                                                  " is not a directory: remove it, or choose another with --lock file:///DIR");
    if (st.st_uid != ::geteuid())
        return fail(ErrorKind::invalid_input,
                    "the lock directory " + dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to you (uid " +
                        std::to_string(::geteuid()) +
                        "): its owner could remove or plant lock files. Use a directory of your own, e.g. "
                        "--lock file://$HOME/.cache/tagwarden-locks, or remove " + dir + " if it is left over");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fail(ErrorKind::invalid_input,
                    "the lock directory " + dir + " is writable by group or others (mode " + mode_text(st.st_mode) +
                        "): anyone could remove or plant lock files. Fix it with: chmod 700 " + dir);
    return {};
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
        bool created = false;
        TW_TRY(ensure_private_directory(m_dir, created));
        auto path = path_for(key);
        for (int attempt = 0; attempt < 5; ++attempt) {
            int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
            if (fd < 0) {
                if (errno == ELOOP)
                    return fail(ErrorKind::invalid_input,
                                "the lock file " + path +
                                    " is a symbolic link; refusing to follow it (a link planted in a shared directory "
                                    "redirects writes). Remove it (rm '" + path + "') and keep locks in a directory of "
                                    "your own (--lock file:///DIR)");
                return fail(ErrorKind::invalid_input, "cannot open the lock file " + path + ": " + std::strerror(errno) +
                                                          " (check the lock directory, or choose another with "
                                                          "--lock file:///DIR)");
            }
            struct stat st{};
            if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                ::close(fd);
                return fail(ErrorKind::invalid_input, "the lock file " + path + " is not a regular file: remove it");
            }
            if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
                int err = errno;
                std::string holder = read_fd(fd);
                ::close(fd);
                if (err != EWOULDBLOCK)
                    return fail(ErrorKind::internal, "flock " + path + ": " + std::strerror(err));
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
                return fail(ErrorKind::internal, "cannot write the lock file " + path + ": " + std::strerror(errno) +
                                                     " (is the disk full?)");
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
            int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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
        bool created = false;
        TW_TRY(ensure_private_directory(m_dir, created));
        if (created)
            return "created the lock directory " + m_dir + " (mode 0700)";
        return "the lock directory " + m_dir + " exists, belongs to you and only you may write it";
    }

    Status force_release(const std::string& key) override {
        auto path = path_for(key);
        if (::unlink(path.c_str()) != 0)
            return fail(ErrorKind::not_found, "no lock " + key + " in " + describe());
        return {};
    }

private:
    [[nodiscard]] std::string path_for(const std::string& key) const {
        return m_dir + "/" + file_lock_name(key);
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

std::string file_lock_name(std::string_view key) {
    constexpr std::size_t k_max_name = 200;  // NAME_MAX is 255 on Linux; leave room
    constexpr std::size_t k_prefix = 120;
    auto encoded = http::url_encode(key);
    if (encoded.size() + 5 <= k_max_name)
        return encoded + ".lock";
    auto prefix = encoded.substr(0, k_prefix);
    // Never cut a %XX escape in half.
    if (auto percent = prefix.rfind('%'); percent != std::string::npos && percent + 3 > prefix.size())
        prefix.resize(percent);
    return prefix + "-" + std::string(Digest::of(key).hex()) + ".lock";
}

std::unique_ptr<LockBackend> make_file_backend(std::string directory) {
    while (directory.size() > 1 && directory.back() == '/')
        directory.pop_back();
    return std::make_unique<FileBackend>(std::move(directory));
}

} // namespace tagwarden::lock
