#pragma once

#include <tagwarden/image/image_source.hpp>
#include <tagwarden/registry/client.hpp>

#include <memory>
#include <string>

namespace tagwarden::registry {

// An image in a registry as an ImageSource (the docker:// transport): manifests are read with GET and
// checked against their digests; blobs are streamed from a GET through a bounded buffer (never to disk),
// digest- and size-checked as they are read.
Result<std::unique_ptr<image::ImageSource>> open_registry_source(std::shared_ptr<Client> client, std::string repo,
                                                                 std::string reference);

} // namespace tagwarden::registry
