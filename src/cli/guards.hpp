#pragma once

#include <tagwarden/config/config.hpp>
#include <tagwarden/guard/guard.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace tagwarden::cli {

struct GuardArgs {
    bool allow_no_policy = false;
    std::string quota_threshold;
    std::string quota;  // empty: not given
    std::string protect_file;
    bool confirm_with_preview = false;
    bool guards_first = false;
};

void add_guard_options(CLI::App* command, GuardArgs& args);

// The guard settings from the options and the configuration (reads --protect FILE). Every option is
// checked here, so commands call it before their first request.
Result<guard::GuardSettings> guard_settings(const GuardArgs& args, const config::Config& cfg);

} // namespace tagwarden::cli
