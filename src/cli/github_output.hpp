#pragma once

// Reports of push, promote and verify: the run's CI identity and duration in every JSON report, and
// `--output github`, which also writes the GitHub Actions step outputs ($GITHUB_OUTPUT) and a step
// summary ($GITHUB_STEP_SUMMARY), on success and on failure alike.
//
// One command runs per process, so the state a report needs (start time, guard verdicts, locks, the
// error) is kept here for the command that run_reported() runs.

#include <tagwarden/core/error.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace tagwarden::cli {

// {"provider", "runUrl", "commit"} of the CI run (current_ci_run()), or null outside CI.
nlohmann::json ci_identity();

// Runs `command_name`'s `run` and returns its exit code. With output "github" it then writes the step
// outputs and summary: from the report complete_report() was given, or, when the command failed, from the
// error report_error() printed and the guard verdicts seen so far. Failing to write them is exit 2.
int run_reported(std::string_view command_name, const std::string& output, const std::function<int()>& run);

// A command's finished JSON report: adds "ci", "durationSeconds" and, where tag locks were used, "lock"
// ({"backend", "owner", "waitSeconds"}); keeps it for --output github. Called while the locks are alive.
void complete_report(nlohmann::json& report);

// Hooks: the guards' verdicts (GuardedWrite::on_guards), the lock set a write uses (valid until
// complete_report() or the end of the command), and the error a command ends with (report_error()).
void note_guards(const guard::GuardReport& report);
void note_locks(const lock::LockSet* locks, std::string backend);
void note_error(const Error& error);

// The `name<<DELIMITER` block GitHub reads from $GITHUB_OUTPUT and $GITHUB_ENV: a random delimiter that
// occurs nowhere in `value`, so any value (newlines included) is safe.
std::string github_output_block(std::string_view name, std::string_view value);

} // namespace tagwarden::cli
