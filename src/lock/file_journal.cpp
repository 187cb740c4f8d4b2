// Journals on this machine's disk: DIRECTORY/journal/<run_id>.json, each written to a temporary file,
// fsync'ed, renamed over the old one, and the directory fsync'ed, so a power cut leaves the old or the
// new record, never a torn one.
#include "stored_journal.hpp"

#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace tagwarden::lock {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status write_all(int fd, const std::string& text, const std::string& path) {
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(ErrorKind::internal, "cannot write journal " + path + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Status fsync_directory(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(ErrorKind::internal, "cannot open journal directory " + dir.string() + ": " + std::strerror(errno));
    int r = ::fsync(fd);
    ::close(fd);
    if (r != 0)
        return fail(ErrorKind::internal, "cannot fsync journal directory " + dir.string() + ": " + std::strerror(errno));
    return {};
}

class FileJournalStore final : public JournalStore {
public:
    explicit FileJournalStore(std::string directory) : m_dir(fs::path(std::move(directory)) / "journal") {}

    [[nodiscard]] std::string describe() const override { return m_dir.string(); }

    Status put(const JournalRecord& record) override {
        if (!valid_run_id(record.run_id))
            return fail(ErrorKind::internal, "invalid run id '" + record.run_id + "' for a journal");
        std::error_code ec;
        fs::create_directories(m_dir, ec);
        if (ec)
            return fail(ErrorKind::internal, "cannot create journal directory " + m_dir.string() + ": " + ec.message());
        json doc = stored_journal_json(record);
        auto path = m_dir / (record.run_id + ".json");
        auto tmp = m_dir / (record.run_id + ".json.tmp");
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return fail(ErrorKind::internal, "cannot write journal " + tmp.string() + ": " + std::strerror(errno));
        auto written = write_all(fd, doc.dump(2) + "\n", tmp.string());
        if (written && ::fsync(fd) != 0)
            written = fail(ErrorKind::internal, "cannot fsync journal " + tmp.string() + ": " + std::strerror(errno));
        ::close(fd);
        if (!written) {
            ::unlink(tmp.c_str());
            return written;
        }
        if (::rename(tmp.c_str(), path.c_str()) != 0)
            return fail(ErrorKind::internal, "cannot write journal " + path.string() + ": " + std::strerror(errno));
        return fsync_directory(m_dir);
    }

    Result<std::optional<JournalRecord>> get(const std::string& run_id) override {
        if (!valid_run_id(run_id))
            return std::optional<JournalRecord>{};
        return read(m_dir / (run_id + ".json"));
    }

    Result<std::vector<JournalRecord>> list() override {
        std::vector<JournalRecord> out;
        std::error_code ec;
        if (!fs::is_directory(m_dir, ec))
            return out;
        std::vector<fs::path> paths;
        auto now = fs::file_time_type::clock::now();
        for (const auto& e : fs::directory_iterator(m_dir, ec)) {
            if (e.path().extension() == ".json") {
                paths.push_back(e.path());
            } else if (e.path().extension() == ".tmp") {
                // A writer killed before its rename: the temporary file only ever holds the intent of a write
                // not yet sent (a journal is saved before each write), so it is garbage once surely abandoned.
                std::error_code age_ec;
                auto written = fs::last_write_time(e.path(), age_ec);
                if (!age_ec && now - written > std::chrono::minutes(10))
                    fs::remove(e.path(), age_ec);
            }
        }
        std::sort(paths.begin(), paths.end());
        for (const auto& p : paths) {
            auto r = read(p);
            if (!r)
                return std::unexpected(r.error());
            if (*r)
                out.push_back(std::move(**r));
        }
        return out;
    }

    Status remove(const std::string& run_id) override {
        if (!valid_run_id(run_id))
            return {};
        auto path = m_dir / (run_id + ".json");
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return fail(ErrorKind::internal, "cannot remove journal " + path.string() + ": " + std::strerror(errno));
        // A writer killed between its write and its rename leaves the temporary file behind: it goes too.
        auto tmp = m_dir / (run_id + ".json.tmp");
        ::unlink(tmp.c_str());
        std::error_code ec;
        if (!fs::exists(m_dir, ec))
            return {};
        return fsync_directory(m_dir);
    }

private:
    static Result<std::optional<JournalRecord>> read(const fs::path& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            if (errno == ENOENT)
                return std::optional<JournalRecord>{};
            return fail(ErrorKind::internal, "cannot read journal " + path.string() + ": " + std::strerror(errno));
        }
        std::string text;
        char buffer[8192];
        while (true) {
            auto n = ::read(fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
        ::close(fd);
        json doc;
        try {
            doc = json::parse(text);
        } catch (const json::exception& e) {
            return fail(ErrorKind::invalid_input, "journal " + path.string() + " is damaged (" + e.what() +
                                                      "): inspect it, then remove it by hand");
        }
        auto r = journal_from_stored_json(doc, "journal " + path.string());
        if (!r)
            return std::unexpected(r.error());
        return std::optional<JournalRecord>(std::move(*r));
    }

    fs::path m_dir;
};

} // namespace

bool valid_run_id(const std::string& id) {
    return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    }) && id.front() != '.';
}

json stored_journal_json(const JournalRecord& record) {
    return {{"runId", record.run_id},
            {"owner", to_json(record.owner)},
            {"expiresEpoch", std::chrono::duration_cast<std::chrono::seconds>(record.expires.time_since_epoch()).count()},
            {"journal", record.document}};
}

Result<JournalRecord> journal_from_stored_json(const json& doc, const std::string& where) {
    try {
        JournalRecord r;
        if (doc.is_object() && !doc.contains("journal") && doc.contains("registry") && doc.contains("runId")) {
            // A push journal written as is (src/push before journal stores): no owner, no expiry.
            r.run_id = doc.at("runId").get<std::string>();
            r.document = doc.dump();
            return r;
        }
        r.run_id = doc.at("runId").get<std::string>();
        r.owner = lock_owner_from_json(doc.at("owner"));
        r.expires = Clock::time_point(std::chrono::seconds(doc.value("expiresEpoch", 0LL)));
        r.document = doc.at("journal").get<std::string>();
        return r;
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input,
                    where + " is damaged (" + e.what() + "): inspect it, then remove it by hand");
    }
}

std::unique_ptr<JournalStore> make_file_journal_store(std::string directory) {
    return std::make_unique<FileJournalStore>(std::move(directory));
}

} // namespace tagwarden::lock
