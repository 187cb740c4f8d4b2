#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>

#include <memory>
#include <string>
#include <vector>

namespace tagwarden::push {

// Checks a --platform value: "os/arch" or "os/arch/variant", each part non-empty and without spaces.
// Error{invalid_input} names the value and the expected form.
Status parse_platform_filter(const std::string& platform);

// Chooses the children of an index that match `platforms` ("os/arch[/variant]"). One match returns that
// child manifest itself (never wrapped in a new index); several return a new index of the same media type
// listing only them. Either way the digest changes, which the caller reports.
// Returns Error{invalid_input} when `root` is not an index or a platform matches nothing.
Result<image::Manifest> select_platforms(image::ImageSource& source, const image::Manifest& root,
                                         const std::vector<std::string>& platforms);

// The same source with another root manifest (after select_platforms).
std::unique_ptr<image::ImageSource> with_root(image::ImageSource& source, image::Manifest root);

} // namespace tagwarden::push
