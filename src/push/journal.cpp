#include <tagwarden/core/base64.hpp>
#include <tagwarden/push/journal.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tagwarden::push {

namespace fs = std::filesystem;
using nlohmann::json;

Status save_journal(Journal& j, const std::string& directory) {
    auto dir = fs::path(directory) / "journal";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return fail(ErrorKind::internal, "cannot create journal directory " + dir.string() + ": " + ec.message());
    json tags = json::array();
    for (const auto& t : j.tags)
        tags.push_back({{"tag", t.tag}, {"previous", t.previous ? json(t.previous->str()) : json(nullptr)}, {"written", t.written}});
    json children = json::array();
    for (const auto& c : j.children_created)
        children.push_back(c.str());
    json doc = {{"version", 1},
                {"runId", j.run_id},
                {"registry", j.registry},
                {"repository", j.repository},
                {"digest", j.digest.str()},
                {"mediaType", j.media_type},
                {"manifest", base64_encode(j.manifest)},
                {"rootPreexisting", j.root_preexisting},
                {"childrenCreated", children},
                {"tags", tags}};
    auto path = dir / (j.run_id + ".json");
    auto tmp = dir / (j.run_id + ".json.tmp");
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << doc.dump(2) << "\n";
        out.flush();
        if (!out)
            return fail(ErrorKind::internal, "cannot write journal " + tmp.string());
    }
    fs::rename(tmp, path, ec);
    if (ec)
        return fail(ErrorKind::internal, "cannot write journal " + path.string() + ": " + ec.message());
    j.path = path.string();
    return {};
}

Result<Journal> load_journal(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return fail(ErrorKind::invalid_input, "cannot read journal " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        auto doc = json::parse(ss.str());
        Journal j;
        j.path = path;
        j.run_id = doc.at("runId").get<std::string>();
        j.registry = doc.at("registry").get<std::string>();
        j.repository = doc.at("repository").get<std::string>();
        auto d = Digest::parse(doc.at("digest").get<std::string>());
        if (!d)
            return std::unexpected(d.error());
        j.digest = *d;
        j.media_type = doc.at("mediaType").get<std::string>();
        auto m = base64_decode(doc.at("manifest").get<std::string>());
        if (!m)
            return std::unexpected(m.error());
        j.manifest = *m;
        j.root_preexisting = doc.value("rootPreexisting", true);
        for (const auto& c : doc.value("childrenCreated", json::array())) {
            auto cd = Digest::parse(c.get<std::string>());
            if (cd)
                j.children_created.push_back(*cd);
        }
        for (const auto& t : doc.at("tags")) {
            Journal::Tag tag;
            tag.tag = t.at("tag").get<std::string>();
            if (!t.at("previous").is_null()) {
                auto p = Digest::parse(t.at("previous").get<std::string>());
                if (p)
                    tag.previous = *p;
            }
            tag.written = t.value("written", false);
            j.tags.push_back(tag);
        }
        return j;
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, "journal " + path + " is damaged: " + e.what());
    }
}

void remove_journal(const Journal& j) {
    if (!j.path.empty()) {
        std::error_code ec;
        fs::remove(j.path, ec);
    }
}

std::vector<std::string> list_journals(const std::string& directory) {
    std::vector<std::string> out;
    std::error_code ec;
    auto dir = fs::path(directory) / "journal";
    if (!fs::is_directory(dir, ec))
        return out;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".json")
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace tagwarden::push
