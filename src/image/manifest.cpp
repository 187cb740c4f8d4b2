#include <tagwarden/image/manifest.hpp>
#include <tagwarden/core/json_fields.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::image {

using nlohmann::json;

bool is_index_media_type(std::string_view mt) {
    return mt == media_type::oci_index || mt == media_type::docker_manifest_list;
}

bool is_manifest_media_type(std::string_view mt) {
    return mt == media_type::oci_manifest || mt == media_type::docker_manifest;
}

std::string manifest_accept_header() {
    return std::string(media_type::oci_manifest) + ", " + std::string(media_type::oci_index) + ", " +
           std::string(media_type::docker_manifest) + ", " + std::string(media_type::docker_manifest_list);
}

std::string Platform::str() const {
    std::string s = os + "/" + architecture;
    if (!variant.empty())
        s += "/" + variant;
    return s;
}

namespace {

Error invalid(std::string_view where, const std::string& what) {
    return Error(ErrorKind::invalid_input, std::string(where) + ": " + what);
}

} // namespace

Result<Descriptor> parse_descriptor(const json& o, std::string_view where) {
    if (!o.is_object())
        return std::unexpected(invalid(where, "a descriptor must be a JSON object"));
    Descriptor d;
    auto mt = o.find("mediaType");
    if (mt == o.end() || !mt->is_string())
        return std::unexpected(invalid(where, "descriptor has no string 'mediaType'"));
    d.media_type = mt->get<std::string>();
    auto dg = o.find("digest");
    if (dg == o.end() || !dg->is_string())
        return std::unexpected(invalid(where, "descriptor has no string 'digest'"));
    auto digest = Digest::parse(dg->get<std::string>());
    if (!digest)
        return std::unexpected(invalid(where, digest.error().message));
    d.digest = *digest;
    auto sz = o.find("size");
    if (sz == o.end() || !sz->is_number_integer() || sz->get<std::int64_t>() < 0)
        return std::unexpected(invalid(where, "descriptor has no non-negative integer 'size'"));
    d.size = sz->get<std::uint64_t>();
    if (auto p = o.find("platform"); p != o.end() && p->is_object()) {
        Platform pl;
        auto os = string_field(*p, "os");
        auto architecture = string_field(*p, "architecture");
        auto variant = string_field(*p, "variant");
        if (!os || !architecture || !variant)
            return std::unexpected(invalid(where, "platform os, architecture and variant must be strings"));
        pl.os = *os;
        pl.architecture = *architecture;
        pl.variant = *variant;
        d.platform = pl;
    }
    if (auto at = o.find("artifactType"); at != o.end() && at->is_string())
        d.artifact_type = at->get<std::string>();
    if (auto an = o.find("annotations"); an != o.end() && an->is_object())
        for (auto& [k, v] : an->items())
            if (v.is_string())
                d.annotations[k] = v.get<std::string>();
    return d;
}

json descriptor_to_json(const Descriptor& d) {
    json o = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
    if (d.platform) {
        o["platform"] = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
        if (!d.platform->variant.empty())
            o["platform"]["variant"] = d.platform->variant;
    }
    if (!d.artifact_type.empty())
        o["artifactType"] = d.artifact_type;
    if (!d.annotations.empty())
        o["annotations"] = d.annotations;
    return o;
}

Result<Manifest> parse_manifest(std::string bytes, std::string_view declared) {
    Manifest m;
    m.digest = Digest::of(bytes);
    json doc;
    try {
        doc = json::parse(bytes);
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, "manifest " + m.digest.str() + " is not valid JSON: " + e.what());
    }
    if (!doc.is_object())
        return fail(ErrorKind::invalid_input, "manifest " + m.digest.str() + " is not a JSON object");
    auto own_field = string_field(doc, "mediaType");
    if (!own_field)
        return fail(ErrorKind::invalid_input, "manifest " + m.digest.str() + ": 'mediaType' must be a string");
    std::string own = *own_field;
    if (!own.empty() && !declared.empty() && own != declared)
        return fail(ErrorKind::invalid_input, "manifest " + m.digest.str() + " declares mediaType '" + own +
                                                  "' but was referenced as '" + std::string(declared) + "'");
    std::string mt = own.empty() ? std::string(declared) : own;
    if (mt.empty()) {
        // An OCI manifest may omit mediaType; infer it from the shape.
        mt = doc.contains("manifests") ? std::string(media_type::oci_index) : std::string(media_type::oci_manifest);
    }
    if (int_field(doc, "schemaVersion", 0) != 2)
        return fail(ErrorKind::invalid_input,
                    "manifest " + m.digest.str() + " has schemaVersion other than 2 (Docker schema 1 is not supported)");
    m.media_type = mt;
    auto where = "manifest " + m.digest.str();
    if (is_index_media_type(mt)) {
        ImageIndex idx;
        idx.media_type = mt;
        auto ms = doc.find("manifests");
        if (ms == doc.end() || !ms->is_array())
            return fail(ErrorKind::invalid_input, where + ": index has no 'manifests' array");
        for (std::size_t i = 0; i < ms->size(); ++i) {
            auto d = parse_descriptor((*ms)[i], where + " manifests[" + std::to_string(i) + "]");
            if (!d)
                return std::unexpected(d.error());
            idx.manifests.push_back(std::move(*d));
        }
        if (auto s = doc.find("subject"); s != doc.end()) {
            auto d = parse_descriptor(*s, where + " subject");
            if (!d)
                return std::unexpected(d.error());
            idx.subject = *d;
        }
        m.index = std::move(idx);
    } else if (is_manifest_media_type(mt)) {
        ImageManifest im;
        im.media_type = mt;
        auto c = doc.find("config");
        if (c == doc.end())
            return fail(ErrorKind::invalid_input, where + ": image manifest has no 'config'");
        auto cd = parse_descriptor(*c, where + " config");
        if (!cd)
            return std::unexpected(cd.error());
        im.config = *cd;
        auto ls = doc.find("layers");
        if (ls == doc.end() || !ls->is_array())
            return fail(ErrorKind::invalid_input, where + ": image manifest has no 'layers' array");
        for (std::size_t i = 0; i < ls->size(); ++i) {
            auto d = parse_descriptor((*ls)[i], where + " layers[" + std::to_string(i) + "]");
            if (!d)
                return std::unexpected(d.error());
            im.layers.push_back(std::move(*d));
        }
        if (auto s = doc.find("subject"); s != doc.end()) {
            auto d = parse_descriptor(*s, where + " subject");
            if (!d)
                return std::unexpected(d.error());
            im.subject = *d;
        }
        m.image = std::move(im);
    } else {
        return fail(ErrorKind::invalid_input, where + ": unsupported manifest media type '" + mt + "'");
    }
    m.bytes = std::move(bytes);
    return m;
}

} // namespace tagwarden::image
