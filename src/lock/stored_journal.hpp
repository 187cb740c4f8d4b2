#pragma once

// The JSON a journal record is stored as by the file and etcd journal stores:
// {"runId", "owner": {"host", "pid", "runId", "ciUrl"}, "expiresEpoch", "journal": DOCUMENT-AS-STRING}.

#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::lock {

nlohmann::json stored_journal_json(const JournalRecord& record);
// Error{invalid_input} naming `where` when the record is damaged.
Result<JournalRecord> journal_from_stored_json(const nlohmann::json& doc, const std::string& where);

// Run ids become file names and keys: letters, digits, '-', '_', '.' (not first), at most 128.
bool valid_run_id(const std::string& id);

} // namespace tagwarden::lock
