#include <tagwarden/core/base64.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/push/journal.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace tagwarden::push {

using nlohmann::json;

Result<image::Manifest> Journal::root() const {
    auto m = image::parse_manifest(manifest, media_type);
    if (!m)
        return std::unexpected(m.error().with_context("journal of run " + run_id));
    if (m->digest != digest)
        return fail(ErrorKind::invalid_input, "journal of run " + run_id + " is damaged: its manifest bytes do not "
                                                                           "hash to " + digest.str());
    return m;
}

std::vector<std::string> Journal::lock_keys() const {
    std::vector<std::string> keys;
    for (const auto& t : tags)
        keys.push_back(lock::tag_lock_key(registry, repository, t.tag));
    return keys;
}

Journal::Tag* Journal::find(const std::string& tag) {
    auto it = std::find_if(tags.begin(), tags.end(), [&](const Tag& t) { return t.tag == tag; });
    return it == tags.end() ? nullptr : &*it;
}

std::string serialize_journal(const Journal& j) {
    json tags = json::array();
    for (const auto& t : j.tags)
        tags.push_back({{"tag", t.tag}, {"previous", t.previous ? json(t.previous->str()) : json(nullptr)}, {"written", t.written}});
    json children = json::array();
    for (const auto& c : j.children)
        children.push_back({{"digest", c.digest.str()},
                            {"mediaType", c.media_type},
                            {"manifest", base64_encode(c.bytes)},
                            {"created", c.created}});
    json doc = {{"version", 2},
                {"runId", j.run_id},
                {"registry", j.registry},
                {"repository", j.repository},
                {"digest", j.digest.str()},
                {"mediaType", j.media_type},
                {"manifest", base64_encode(j.manifest)},
                {"rootPreexisting", j.root_preexisting},
                {"children", children},
                {"tags", tags},
                {"owner", lock::to_json(j.owner)}};
    return doc.dump();
}

Result<Journal> parse_journal(const std::string& document) {
    auto digest_at = [](const json& o, const char* field) -> Result<Digest> {
        return Digest::parse(o.at(field).get<std::string>());
    };
    try {
        auto doc = json::parse(document);
        Journal j;
        j.run_id = doc.at("runId").get<std::string>();
        j.registry = doc.at("registry").get<std::string>();
        j.repository = doc.at("repository").get<std::string>();
        auto d = digest_at(doc, "digest");
        if (!d)
            return std::unexpected(d.error());
        j.digest = *d;
        j.media_type = doc.at("mediaType").get<std::string>();
        auto m = base64_decode(doc.at("manifest").get<std::string>());
        if (!m)
            return std::unexpected(m.error());
        j.manifest = *m;
        // A journal of version 1 did not say; assume the manifest was there, so nothing deletes it.
        j.root_preexisting = doc.value("rootPreexisting", true);
        for (const auto& c : doc.value("children", json::array())) {
            Journal::Child child;
            auto cd = digest_at(c, "digest");
            if (!cd)
                return std::unexpected(cd.error());
            child.digest = *cd;
            child.media_type = c.at("mediaType").get<std::string>();
            auto bytes = base64_decode(c.at("manifest").get<std::string>());
            if (!bytes)
                return std::unexpected(bytes.error());
            child.bytes = *bytes;
            child.created = c.value("created", false);
            j.children.push_back(std::move(child));
        }
        for (const auto& t : doc.at("tags")) {
            Journal::Tag tag;
            tag.tag = t.at("tag").get<std::string>();
            if (!t.at("previous").is_null()) {
                auto p = digest_at(t, "previous");
                if (!p)
                    return std::unexpected(p.error());
                tag.previous = *p;
            }
            tag.written = t.value("written", false);
            j.tags.push_back(tag);
        }
        if (auto o = doc.find("owner"); o != doc.end())
            j.owner = lock::lock_owner_from_json(*o);
        return j;
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, std::string("a journal is damaged (") + e.what() +
                                                  "): inspect it with `tagwarden lock list`, then remove it");
    }
}

Status JournalKeeper::save(const Journal& journal) {
    if (!m_store)
        return {};
    cancel::Shield shield;  // the journal is kept current after a cancelling signal too
    lock::JournalRecord record;
    record.run_id = journal.run_id;
    record.document = serialize_journal(journal);
    record.owner = journal.owner;
    record.expires = lock::Clock::now() + m_retention;
    auto r = m_store->put(record);
    if (!r)
        return std::unexpected(r.error().with_context("saving the journal of run " + journal.run_id + " in " +
                                                      m_store->describe()));
    return {};
}

Status JournalKeeper::remove(const Journal& journal) {
    if (!m_store)
        return {};
    cancel::Shield shield;
    return m_store->remove(journal.run_id);
}

} // namespace tagwarden::push
