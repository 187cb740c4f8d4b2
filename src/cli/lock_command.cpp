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
    LockArgs lock;
};

Result<std::unique_ptr<lock::LockBackend>> backend_for(const LockArgs& args) {
    auto cfg = config::load_config();
    if (!cfg)
        return std::unexpected(cfg.error());
    auto url = !args.url.empty() ? args.url : !cfg->lock_url.empty() ? cfg->lock_url : lock::default_lock_url();
    return lock::make_lock_backend(url, make_transport(""));
}

int run_list(const LockCommandArgs& args) {
    auto backend = backend_for(args.lock);
    if (!backend)
        return report_error(backend.error());
    auto locks = (*backend)->list();
    if (!locks)
        return report_error(locks.error());
    if (args.output == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& l : *locks)
            out.push_back(lock::to_json(l));
        std::cout << nlohmann::json{{"backend", (*backend)->describe()}, {"locks", out}}.dump(2) << std::endl;
    } else {
        for (const auto& l : *locks)
            std::cout << l.describe() << std::endl;
        if (locks->empty())
            log::info("no locks in " + (*backend)->describe());
    }
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
    auto* list = cmd->add_subcommand("list", "List the locks a backend holds, with owner, CI run and age");
    list->add_option("--output,-o", args->output, "text or json")->check(CLI::IsMember({"text", "json"}));
    list->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    auto* release = cmd->add_subcommand("release", "Remove a lock whoever holds it");
    release->add_option("key", args->key, "Lock key, as `lock list` prints it: REGISTRY/REPO:TAG")->required();
    release->add_flag("--force", args->force, "Required: the holder loses the lock");
    release->add_option("--lock", args->lock.url, "Lock backend URL (default: as push)");
    return [args, list, release]() -> int {
        if (list->parsed())
            return run_list(*args);
        if (release->parsed())
            return run_release(*args);
        return 2;
    };
}

} // namespace tagwarden::cli
