#include "commands.hpp"
#include "connection.hpp"

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/journal.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace tagwarden::cli {

namespace {

struct LockCommandArgs {
    std::string key;
    bool force = false;
    std::string output = "text";
    LockArgs lock;
};

Result<std::unique_ptr<lock::LockBackend>> backend_for(const LockArgs& args, config::Config* loaded = nullptr) {
    auto cfg = config::load_config();
    if (!cfg)
        return std::unexpected(cfg.error());
    if (loaded)
        *loaded = *cfg;
    auto url = !args.url.empty() ? args.url : !cfg->lock_url.empty() ? cfg->lock_url : lock::default_lock_url();
    return lock::make_lock_backend(url, make_transport(""));
}

// A run left behind, from its journal record, for `lock list`.
nlohmann::json run_json(const lock::JournalRecord& record) {
    nlohmann::json out = {{"runId", record.run_id},
                          {"owner", {{"host", record.owner.host}, {"pid", record.owner.pid}, {"ciUrl", record.owner.ci_url}}},
                          {"expiresAt", format_utc(record.expires)}};
    auto journal = push::parse_journal(record.document);
    if (journal) {
        out["registry"] = journal->registry;
        out["repository"] = journal->repository;
        out["digest"] = journal->digest.str();
        nlohmann::json tags = nlohmann::json::array();
        for (const auto& t : journal->tags)
            tags.push_back(t.tag);
        out["tags"] = tags;
    } else {
        out["error"] = journal.error().message;
    }
    return out;
}

int run_list(const LockCommandArgs& args) {
    config::Config cfg;
    auto backend = backend_for(args.lock, &cfg);
    if (!backend)
        return report_error(backend.error());
    auto locks = (*backend)->list();
    if (!locks)
        return report_error(locks.error());
    auto store = (*backend)->journal_store();
    if (!store)
        store = lock::make_file_journal_store(config::state_directory(cfg));
    auto runs = store->list();
    if (!runs)
        return report_error(runs.error());
    if (args.output == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& l : *locks)
            out.push_back(lock::to_json(l));
        nlohmann::json left = nlohmann::json::array();
        for (const auto& r : *runs)
            left.push_back(run_json(r));
        std::cout << nlohmann::json{{"backend", (*backend)->describe()}, {"locks", out}, {"runs", left}}.dump(2)
                  << std::endl;
    } else {
        for (const auto& l : *locks)
            std::cout << l.describe() << std::endl;
        if (locks->empty())
            log::info("no locks in " + (*backend)->describe());
        for (const auto& r : *runs) {
            auto j = run_json(r);
            std::string tags;
            for (const auto& t : j.value("tags", nlohmann::json::array()))
                tags += (tags.empty() ? "" : ", ") + t.get<std::string>();
            auto repo = j.value("registry", std::string("?")) + "/" + j.value("repository", std::string("?"));
            std::cout << "run " << r.run_id << " on " << repo << "@" << j.value("digest", std::string("?")) << " (tags "
                      << tags << ") left by " << r.owner.describe() << ", kept until " << format_utc(r.expires)
                      << "; finish or undo it with: tagwarden push --resume " << repo << std::endl;
        }
    }
    return 0;
}

int run_init(const LockCommandArgs& args) {
    if (args.lock.url.empty())
        return report_error(Error(ErrorKind::invalid_input,
                                  "lock init needs the backend URL, e.g. tagwarden lock init "
                                  "'dynamodb://tagwarden-locks?region=eu-west-1'"));
    auto backend = lock::make_lock_backend(args.lock.url, make_transport(""));
    if (!backend)
        return report_error(backend.error());
    auto said = (*backend)->init();
    if (!said)
        return report_error(said.error());
    std::cout << *said << std::endl;
    return 0;
}

int run_release(const LockCommandArgs& args) {
    if (!args.force)
        return report_error(Error(ErrorKind::invalid_input,
                                  "lock release takes a lock away from its holder, whose run then stops before "
                                  "tagging: confirm with --force"));
    auto backend = backend_for(args.lock);
    if (!backend)
        return report_error(backend.error());
    auto r = (*backend)->force_release(args.key);
    if (!r) {
        auto e = r.error();
        if (e.kind == ErrorKind::not_found)
            e.kind = ErrorKind::invalid_input;
        return report_error(e);
    }
    log::warn("released " + args.key + " in " + (*backend)->describe());
    return 0;
}

} // namespace

CommandRun setup_lock_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<LockCommandArgs>();
    auto* cmd = app.add_subcommand("lock", "Inspect and release tag locks (for operators)");
    cmd->require_subcommand(1);
    auto* list = cmd->add_subcommand("list", "List the locks a backend holds (owner, CI run, age) and the runs left "
                                             "behind (journals to --resume)");
    list->add_option("--output,-o", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
    list->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    auto* release = cmd->add_subcommand("release", "Remove a lock whoever holds it");
    release->add_option("key", args->key, "Lock key, as `lock list` prints it: REGISTRY/REPO:TAG")->required();
    release->add_flag("--force", args->force, "Required: the holder loses the lock");
    release->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    auto* init = cmd->add_subcommand("init", "Prepare a lock backend: create the DynamoDB table (on-demand, TTL), "
                                             "the file:// directory, or check etcd answers");
    init->add_option("url", args->lock.url, "Lock backend URL, e.g. dynamodb://tagwarden-locks?region=eu-west-1")
        ->required();
    return [args, list, release, init]() -> int {
        if (init->parsed())
            return run_init(*args);
        if (list->parsed())
            return run_list(*args);
        if (release->parsed())
            return run_release(*args);
        return 2;
    };
}

} // namespace tagwarden::cli
