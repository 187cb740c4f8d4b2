#include "commands.hpp"
#include "connection.hpp"

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace tagwarden::cli {

namespace {

struct LockCommandArgs {
    std::string key;
    bool force = false;
    std::string output = "text";
    std::string init_url;
    LockArgs lock;
};

struct OpenBackend {
    config::Config cfg;
    std::unique_ptr<lock::LockBackend> backend;
};

Result<OpenBackend> backend_for(const std::string& explicit_url) {
    auto cfg = config::load_config();
    if (!cfg)
        return std::unexpected(cfg.error());
    auto url = !explicit_url.empty() ? explicit_url : !cfg->lock_url.empty() ? cfg->lock_url : lock::default_lock_url();
    auto backend = lock::make_lock_backend(url, make_lock_transport());
    if (!backend)
        return std::unexpected(backend.error());
    return OpenBackend{std::move(*cfg), std::move(*backend)};
}

int run_list(const LockCommandArgs& args) {
    auto open = backend_for(args.lock.url);
    if (!open)
        return report_error(open.error());
    auto& backend = *open->backend;
    auto locks = backend.list();
    if (!locks)
        return report_error(locks.error());
    // Journals live beside the locks (etcd, DynamoDB), or on this machine for file://.
    auto store = backend.journal_store();
    if (!store)
        store = lock::make_file_journal_store(config::state_directory(open->cfg));
    // The locks are worth showing even when a journal cannot be read.
    auto runs = store->list();
    if (!runs) {
        log::warn("cannot list the runs left behind in " + store->describe() + ": " + runs.error().message);
        runs = std::vector<lock::JournalRecord>{};
    }
    if (args.output == "json") {
        nlohmann::json lock_list = nlohmann::json::array();
        for (const auto& l : *locks)
            lock_list.push_back(lock::to_json(l));
        nlohmann::json run_list = nlohmann::json::array();
        for (const auto& r : *runs)
            run_list.push_back(lock::to_json(r));
        std::cout << nlohmann::json{{"backend", backend.describe()}, {"locks", lock_list}, {"runs", run_list}}.dump(2)
                  << std::endl;
    } else {
        for (const auto& l : *locks)
            std::cout << l.describe() << std::endl;
        for (const auto& r : *runs)
            std::cout << lock::describe(r) << std::endl;
        if (locks->empty())
            log::info("no locks in " + backend.describe());
        if (runs->empty())
            log::info("no runs left behind in " + store->describe());
    }
    return 0;
}

int run_init(const LockCommandArgs& args) {
    auto open = backend_for(args.init_url);
    if (!open)
        return report_error(open.error());
    auto done = open->backend->init();
    if (!done)
        return report_error(done.error());
    std::cout << *done << std::endl;
    return 0;
}

int run_release(const LockCommandArgs& args) {
    if (!args.force)
        return report_error(Error(ErrorKind::invalid_input,
                                  "lock release takes a lock away from its holder, whose run then stops before "
                                  "tagging: confirm with --force"));
    auto open = backend_for(args.lock.url);
    if (!open)
        return report_error(open.error());
    auto& backend = open->backend;
    auto r = backend->force_release(args.key);
    if (!r) {
        auto e = r.error();
        if (e.kind == ErrorKind::not_found)
            e.kind = ErrorKind::invalid_input;
        return report_error(e);
    }
    log::warn("released " + args.key + " in " + backend->describe());
    return 0;
}

} // namespace

CommandRun setup_lock_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<LockCommandArgs>();
    auto* cmd = app.add_subcommand("lock", "Prepare a lock backend; inspect and release tag locks (for operators)");
    cmd->require_subcommand(1);
    auto* init = cmd->add_subcommand("init", "Prepare a lock backend: dynamodb:// creates the table (on-demand, TTL on "
                                             "ExpiresAt), file:// the 0700 directory; etcd:// is checked");
    init->add_option("url", args->init_url, "Lock backend URL, as --lock takes it")->required();
    auto* list = cmd->add_subcommand("list", "List the locks a backend holds (owner, CI run, age) and the runs left "
                                             "behind (journals to resume)");
    list->add_option("--output,-o", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
    list->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    auto* release = cmd->add_subcommand("release", "Remove a lock whoever holds it");
    release->add_option("key", args->key, "Lock key, as `lock list` prints it: REGISTRY/REPO:TAG")->required();
    release->add_flag("--force", args->force, "Required: the holder loses the lock");
    release->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    return [args, init, list, release]() -> int {
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
