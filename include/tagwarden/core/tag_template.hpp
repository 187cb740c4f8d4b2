#pragma once

#include <string>
#include <string_view>

namespace tagwarden {

// Whether `tag` is the tag template `tmpl` with {env} = `env` and {version} = some non-empty text.
bool tag_matches_template(std::string_view tmpl, std::string_view env, std::string_view tag);

} // namespace tagwarden
