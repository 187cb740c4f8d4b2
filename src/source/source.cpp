#include "archive.hpp"

#include <tagwarden/source/source.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace tagwarden::source {

namespace {

struct ArchiveSpec {
    std::string file;  // a path, or "-" for standard input
    std::string ref;   // what follows the file name, when the whole text is not an existing file
};

// FILE[:REF]: the whole text is the file when it exists (paths may hold ':'), else it splits at the first ':'.
ArchiveSpec split_archive_spec(std::string_view rest) {
    std::error_code ec;
    if (rest == "-" || std::filesystem::exists(std::filesystem::path(rest), ec))
        return {std::string(rest), {}};
    auto colon = rest.find(':');
    if (colon == std::string_view::npos)
        return {std::string(rest), {}};
    return {std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

Result<std::unique_ptr<image::BlobReader>> open_archive_file(const std::string& file, const std::string& spec) {
    if (file == "-") {
        if (::isatty(STDIN_FILENO))
            return fail(ErrorKind::invalid_input, spec + " reads the archive from standard input, which is a terminal: "
                                                         "pipe it in (docker save IMAGE | tagwarden push " + spec + " ...)");
        return make_fd_reader(STDIN_FILENO, false);
    }
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(ErrorKind::invalid_input, spec + ": cannot open '" + file + "': " + std::strerror(errno));
    return make_fd_reader(fd, true);
}

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_source(std::string_view spec, const SourceOptions& options) {
    TW_TRY(check_compression_level(options.compression, options.compression_level));
    auto colon = spec.find(':');
    auto transport = colon == std::string_view::npos ? std::string_view{} : spec.substr(0, colon);
    auto rest = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
    if (transport == "oci") {
        auto ref_colon = rest.find(':');
        auto dir = rest.substr(0, ref_colon);
        auto ref = ref_colon == std::string_view::npos ? std::string_view{} : rest.substr(ref_colon + 1);
        if (dir.empty())
            return fail(ErrorKind::invalid_input, "source '" + std::string(spec) + "' names no directory: use oci:DIR[:REF]");
        if (!options.source_tag.empty() && !ref.empty() && ref != options.source_tag)
            return fail(ErrorKind::invalid_input, "source '" + std::string(spec) + "' names '" + std::string(ref) +
                                                      "' and --source-tag names '" + options.source_tag + "': give one");
        return open_oci_layout(dir, ref.empty() ? std::string_view(options.source_tag) : ref);
    }
    if (transport == "docker-archive" || transport == "oci-archive") {
        auto parts = split_archive_spec(rest);
        if (parts.file.empty())
            return fail(ErrorKind::invalid_input, "source '" + std::string(spec) + "' names no file: use " +
                                                      std::string(transport) + ":FILE (or " + std::string(transport) +
                                                      ":- for standard input)");
        SourceOptions opts = options;
        if (!parts.ref.empty()) {
            if (!opts.source_tag.empty() && opts.source_tag != parts.ref)
                return fail(ErrorKind::invalid_input, "source '" + std::string(spec) + "' names '" + parts.ref +
                                                          "' and --source-tag names '" + opts.source_tag + "': give one");
            opts.source_tag = parts.ref;
        }
        auto stream = open_archive_file(parts.file, std::string(spec));
        if (!stream)
            return std::unexpected(stream.error());
        std::string origin = std::string(transport) + ":" + parts.file;
        if (transport == "docker-archive")
            return open_docker_archive_stream(std::move(*stream), origin, opts);
        return open_oci_archive_stream(std::move(*stream), origin, opts.source_tag);
    }
    if (transport == "docker-daemon")
        return open_docker_daemon(rest, options);
    return fail(ErrorKind::invalid_input,
                "unsupported source '" + std::string(spec) +
                    "': name the transport, e.g. oci:./layout[:REF] (an OCI image layout directory), "
                    "docker-archive:FILE or docker-archive:- (docker save), oci-archive:FILE[:REF], "
                    "docker-daemon:NAME[:TAG] (the Docker daemon)");
}

SourceSummary summarize_source(const image::ImageSource& source, std::string_view spec) {
    if (const auto* archive = dynamic_cast<const ArchiveSource*>(&source))
        return archive->summary();
    auto colon = spec.find("://");
    if (colon != std::string_view::npos)
        return {std::string(spec.substr(0, colon)), "as-is"};
    return {std::string(spec.substr(0, spec.find(':'))), "as-is"};
}

} // namespace tagwarden::source
