// The docker-daemon: transport: an image exported by the Docker Engine API (GET /images/{name}/get, what
// `docker save` uses), streamed into the docker-archive reader without a copy of the whole tar on disk.
#include <tagwarden/source/source.hpp>

#include <tagwarden/core/log.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/source/engine_api.hpp>

#include <string>

namespace tagwarden::source {

namespace {

// The spelling of `name` among the daemon's RepoTags for the image: the tag the export's manifest.json
// carries (Docker writes "app:1", podman "docker.io/library/app:1"). Empty when none matches.
std::string repo_tag_for(const nlohmann::json& inspected, std::string_view name) {
    auto wanted = Reference::parse(name);
    if (!wanted || !inspected.contains("RepoTags") || !inspected["RepoTags"].is_array())
        return {};
    for (const auto& entry : inspected["RepoTags"]) {
        if (!entry.is_string())
            continue;
        auto tag = entry.get<std::string>();
        auto candidate = Reference::parse(tag);
        if (candidate && candidate->name() == wanted->name() && candidate->tag == wanted->tag)
            return tag;
    }
    return {};
}

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_docker_daemon(std::string_view name, const SourceOptions& options) {
    auto image = parse_daemon_image_name(name);
    if (!image)
        return std::unexpected(image.error());
    if (!options.source_tag.empty())
        return fail(ErrorKind::invalid_input, "--source-tag chooses an image in an archive; docker-daemon:" +
                                                  std::string(name) + " already names the image: drop --source-tag");
    auto endpoint = engine_endpoint_from_environment();
    if (!endpoint)
        return std::unexpected(endpoint.error());
    EngineClient client(*endpoint);
    TW_TRY(client.ping());
    auto inspected = client.inspect_image(image->name);
    if (!inspected)
        return std::unexpected(inspected.error());

    SourceOptions archive_options = options;
    if (!image->tagged) {
        archive_options.source_tag.clear();  // an export by ID or digest carries no tag: the archive holds one image
    } else {
        auto repo_tag = repo_tag_for(*inspected, image->name);
        archive_options.source_tag = repo_tag.empty() ? image->name : repo_tag;
    }
    // The daemon's answer is read without exceptions (nlohmann's value() throws on a field of another type).
    std::string id = inspected->contains("Id") && (*inspected)["Id"].is_string() ? (*inspected)["Id"].get<std::string>() : "";
    log::info("exporting " + image->name + (id.empty() ? "" : " (" + id.substr(0, 19) + "…)") + " from " +
              endpoint->describe());

    auto stream = client.export_image(image->name);
    if (!stream)
        return std::unexpected(stream.error());
    return open_docker_archive_stream(std::move(*stream), "docker-daemon:" + image->name, archive_options);
}

} // namespace tagwarden::source
