#include "github_output.hpp"

#include <tagwarden/core/ci.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/progress.hpp>
#include <tagwarden/core/strings.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <random>
#include <sstream>
#include <unistd.h>

namespace tagwarden::cli {

namespace {

using json = nlohmann::json;

struct RunState {
    std::string command;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::optional<json> report;
    std::optional<guard::GuardReport> guards;
    const lock::LockSet* locks = nullptr;
    std::string lock_backend;
    std::optional<Error> error;
};

RunState& state() {
    static RunState s;
    return s;
}

std::string random_hex(std::size_t bytes) {
    std::random_device rd;
    std::string out;
    static const char* digits = "0123456789abcdef";
    for (std::size_t i = 0; i < bytes; ++i) {
        auto b = static_cast<unsigned>(rd()) & 0xffU;
        out += digits[b >> 4];
        out += digits[b & 0xfU];
    }
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point from) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - from).count();
    return static_cast<double>(ms) / 1000.0;
}

std::string seconds_text(double s) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f s", s);
    return buffer;
}

// Phase times are mostly well under a second: two decimals.
std::string phase_seconds_text(double s) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.2f s", s);
    return buffer;
}

// One Markdown table cell: no line breaks, pipes escaped, secrets masked.
std::string cell(std::string_view text) {
    std::string out;
    for (char c : log::redact(text)) {
        if (c == '\n' || c == '\r')
            out += ' ';
        else if (c == '|')
            out += "\\|";
        else
            out += c;
    }
    return out;
}

std::string code(std::string_view text) { return "`" + cell(text) + "`"; }

Status append_file(const std::string& path, const std::string& text, std::string_view variable) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(ErrorKind::invalid_input, "--output github: cannot open " + std::string(variable) + " (" + path +
                                                  "): " + std::strerror(errno));
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            auto message = std::string(std::strerror(errno));
            ::close(fd);
            return fail(ErrorKind::invalid_input,
                        "--output github: cannot write " + std::string(variable) + " (" + path + "): " + message);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0)
        return fail(ErrorKind::invalid_input, "--output github: cannot write " + std::string(variable) + " (" + path +
                                                  "): " + std::strerror(errno));
    return {};
}

// Writes the report into a new file in $RUNNER_TEMP (else $TMPDIR, else /tmp) and returns its path.
Result<std::string> write_report_file(const json& report, const std::string& command) {
    auto dir = env_or_empty("RUNNER_TEMP");
    if (dir.empty())
        dir = env_or_empty("TMPDIR");
    if (dir.empty())
        dir = "/tmp";
    for (int attempt = 0; attempt < 8; ++attempt) {
        auto path = dir + "/tagwarden-" + command + "-" + random_hex(6) + ".json";
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return fail(ErrorKind::invalid_input, "--output github: cannot create the report in " + dir + ": " +
                                                      std::strerror(errno));
        ::close(fd);
        TW_TRY(append_file(path, report.dump(2) + "\n", "the report file"));
        return path;
    }
    return fail(ErrorKind::internal, "--output github: no free report file name in " + dir);
}

std::string tag_list(const json& report) {
    std::vector<std::string> tags;
    if (!report.contains("tags") || !report["tags"].is_array())
        return {};
    for (const auto& t : report["tags"]) {
        if (t.is_string()) {
            tags.push_back(t.get<std::string>());
        } else if (t.is_object()) {
            auto status = t.value("status", "");
            if (status == "created" || status == "unchanged" || status == "overwritten")
                tags.push_back(t.value("tag", ""));
        }
    }
    return join(tags, ",");
}

void guard_table(std::ostringstream& md, const json& guards) {
    if (!guards.is_array() || guards.empty())
        return;
    md << "\n| guard | verdict | detail |\n|---|---|---|\n";
    for (const auto& g : guards) {
        auto status = g.value("status", "");
        auto mark = status == "refused" ? "❌ " : status == "overridden" ? "⚠️ " : status == "passed" ? "✅ " : "";
        md << "| " << cell(g.value("check", "")) << " | " << mark << cell(status) << " | " << cell(g.value("message", ""))
           << " |\n";
    }
}

void footer(std::ostringstream& md, const json& report) {
    std::vector<std::string> parts;
    if (report.contains("lock") && report["lock"].is_object()) {
        const auto& l = report["lock"];
        parts.push_back("lock " + code(l.value("backend", "")) + ", waited " +
                        seconds_text(l.value("waitSeconds", 0.0)));
    }
    if (report.contains("durationSeconds"))
        parts.push_back("duration " + seconds_text(report.value("durationSeconds", 0.0)));
    if (report.contains("ci") && report["ci"].is_object()) {
        const auto& ci = report["ci"];
        if (!ci.value("runUrl", "").empty())
            parts.push_back("[run](" + cell(ci.value("runUrl", "")) + ")");
        if (!ci.value("commit", "").empty())
            parts.push_back("commit " + code(ci.value("commit", "")));
    }
    if (!parts.empty())
        md << "\n" << join(parts, " · ") << "\n";
}

std::string success_summary(const std::string& command, const json& r) {
    std::ostringstream md;
    auto image = r.value("repository", "") + "@" + r.value("digest", "");
    bool dry = r.value("dryRun", false);
    md << "### " << (dry ? "📝" : "✅") << " tagwarden " << command << (dry ? " (dry run)" : "") << ": " << code(image)
       << "\n";
    if (r.contains("source") && r["source"].is_object())
        md << "\nsource: " << code(r["source"].value("transport", "")) << ", layers "
           << cell(r["source"].value("compression", "")) << "\n";
    if (r.contains("promotedFrom"))
        md << "\npromoted from " << code(r.value("promotedFrom", ""))
           << (r.value("digestChanged", false) ? " (digest changed from " + code(r.value("sourceDigest", "")) + ")" : "")
           << "\n";
    if (command == "verify") {
        md << "\nverified: " << r.value("manifests", 0) << " manifest(s), " << r.value("blobs", 0) << " blob(s), "
           << human_bytes(r.value("bytes", std::uint64_t{0})) << " present\n";
        if (r.contains("tags") && r["tags"].is_array() && !r["tags"].empty()) {
            md << "\n| tag | status |\n|---|---|\n";
            for (const auto& t : r["tags"])
                md << "| " << code(t.is_string() ? t.get<std::string>() : t.dump()) << " | verified |\n";
        }
    } else {
        if (r.contains("tags") && r["tags"].is_array() && !r["tags"].empty()) {
            md << "\n| tag | status |\n|---|---|\n";
            for (const auto& t : r["tags"]) {
                md << "| " << code(t.value("tag", "")) << " | " << cell(t.value("status", ""));
                if (t.contains("previousDigest"))
                    md << " (was " << code(t.value("previousDigest", "")) << ")";
                md << " |\n";
            }
        } else {
            md << "\nno tag written: the image is pushed by digest only\n";
        }
        if (r.contains("guards"))
            guard_table(md, r["guards"]);
        if (r.contains("blobs") && r["blobs"].is_object()) {
            const auto& b = r["blobs"];
            md << "\n| blobs | count | bytes |\n|---|---|---|\n"
               << "| uploaded | " << b.value("uploaded", 0) << " | " << human_bytes(b.value("uploadedBytes", std::uint64_t{0}))
               << " |\n"
               << "| mounted | " << b.value("mounted", 0) << " | " << human_bytes(b.value("mountedBytes", std::uint64_t{0}))
               << " |\n"
               << "| skipped (already present) | " << b.value("existing", 0) << " | "
               << human_bytes(b.value("existingBytes", std::uint64_t{0})) << " |\n";
        }
        md << "\nverified: " << (r.value("verified", false) ? "yes" : "no")
           << (r.value("allOrNone", true) ? "" : " · ⚠️ the registry refuses DELETE: tags could not be all or none") << "\n";
        if (r.contains("timings") && r["timings"].is_object()) {
            const auto& t = r["timings"];
            md << "\ntime: guards " << phase_seconds_text(t.value("guards", 0.0)) << " · lock wait "
               << phase_seconds_text(t.value("lockWait", 0.0)) << " · upload " << phase_seconds_text(t.value("upload", 0.0))
               << " · manifests " << phase_seconds_text(t.value("manifests", 0.0)) << " · verify "
               << phase_seconds_text(t.value("verify", 0.0)) << "\n";
        }
    }
    footer(md, r);
    return md.str();
}

std::string failure_headline(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::guard_refused: return "refused by a guard";
    case ErrorKind::tag_conflict: return "refused: tag conflict";
    case ErrorKind::lock_unavailable: return "failed: lock not acquired or lost";
    case ErrorKind::verification: return "failed verification";
    case ErrorKind::auth: return "failed: authentication";
    case ErrorKind::invalid_input: return "failed: usage or bad input";
    case ErrorKind::cancelled: return "cancelled";
    case ErrorKind::registry:
    case ErrorKind::not_found: return "failed: registry or network error";
    case ErrorKind::internal: return "failed: internal error";
    }
    return "failed";
}

std::string failure_summary(const std::string& command, int code_value, const json& r) {
    std::ostringstream md;
    auto kind = state().error ? state().error->kind : ErrorKind::internal;
    md << "### ❌ tagwarden " << command << " " << failure_headline(kind) << " (exit " << code_value << ")\n\n";
    auto message = r["error"].value("message", "");
    md << "```\n" << log::redact(message) << "\n```\n";
    if (r.contains("guards"))
        guard_table(md, r["guards"]);
    md << "\nnothing of this run is left behind unless listed above (`left …`); see the step log for details\n";
    footer(md, r);
    return md.str();
}

Status write_github(const std::string& command, int code_value) {
    auto& s = state();
    json report;
    bool done = code_value == 0;
    if (done && s.report) {
        report = *s.report;
    } else if (done) {  // a command with no image report (push --resume)
        report = {{"command", command}, {"ci", ci_identity()}, {"durationSeconds", seconds_since(s.started)}};
    } else {
        report = {{"command", command}};
        report["error"] = {{"kind", kind_name(s.error ? s.error->kind : ErrorKind::internal)},
                           {"exitCode", code_value},
                           {"message", log::redact(s.error ? s.error->message : "tagwarden exited " + std::to_string(code_value))}};
        if (s.guards)
            report["guards"] = guard::to_json(*s.guards);
        report["ci"] = ci_identity();
        report["durationSeconds"] = seconds_since(s.started);
    }
    auto path = write_report_file(report, command);
    if (!path)
        return std::unexpected(path.error());

    auto output_file = env_or_empty("GITHUB_OUTPUT");
    if (output_file.empty()) {
        log::warn("--output github: GITHUB_OUTPUT is not set (not in a GitHub Actions step?): no step outputs written; "
                  "the report is " + *path);
    } else {
        std::string block;
        if (code_value == 0 && s.report) {
            auto digest = report.value("digest", "");
            block += github_output_block("digest", digest);
            block += github_output_block("image", report.value("repository", "") + "@" + digest);
            block += github_output_block("tags", tag_list(report));
        }
        block += github_output_block("report", *path);
        block += github_output_block("exit-code", std::to_string(code_value));
        TW_TRY(append_file(output_file, block, "GITHUB_OUTPUT"));
    }
    auto summary_file = env_or_empty("GITHUB_STEP_SUMMARY");
    if (summary_file.empty()) {
        log::warn("--output github: GITHUB_STEP_SUMMARY is not set: no step summary written");
    } else {
        auto md = done && s.report ? success_summary(command, report)
                  : done           ? "### ✅ tagwarden " + command + " done (exit 0)\n"
                                   : failure_summary(command, code_value, report);
        TW_TRY(append_file(summary_file, md + "\n", "GITHUB_STEP_SUMMARY"));
    }
    return {};
}

} // namespace

json ci_identity() {
    auto run = current_ci_run();
    if (!run)
        return nullptr;
    return {{"provider", run->provider}, {"runUrl", run->run_url}, {"commit", run->commit}};
}

std::string github_output_block(std::string_view name, std::string_view value) {
    std::string delimiter;
    do {
        delimiter = "ghadelimiter_" + random_hex(16);
    } while (value.find(delimiter) != std::string_view::npos);
    std::string out;
    out.append(name).append("<<").append(delimiter).append("\n");
    out.append(value).append("\n");
    out.append(delimiter).append("\n");
    return out;
}

int run_reported(std::string_view command_name, const std::string& output, const std::function<int()>& run) {
    auto& s = state();
    s = RunState{};
    s.command = std::string(command_name);
    int code_value = run();
    s.locks = nullptr;  // the command's locks are gone
    if (output != "github")
        return code_value;
    if (auto written = write_github(s.command, code_value); !written) {
        log::error(written.error().message);
        return code_value != 0 ? code_value : exit_code(written.error().kind);
    }
    return code_value;
}

void complete_report(json& report) {
    auto& s = state();
    report["ci"] = ci_identity();
    if (s.locks)
        report["lock"] = {{"backend", s.lock_backend},
                          {"owner", lock::to_json(s.locks->owner())},
                          {"waitSeconds", static_cast<double>(s.locks->waited().count()) / 1000.0}};
    report["durationSeconds"] = seconds_since(s.started);
    s.report = report;
}

void note_guards(const guard::GuardReport& report) { state().guards = report; }

void note_locks(const lock::LockSet* locks, std::string backend) {
    state().locks = locks;
    state().lock_backend = std::move(backend);
}

void note_error(const Error& error) { state().error = error; }

} // namespace tagwarden::cli
