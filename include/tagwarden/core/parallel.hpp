#pragma once

#include <tagwarden/core/error.hpp>

#include <cstddef>
#include <functional>

namespace tagwarden {

// Runs work(i) for i in [0, count) on at most `jobs` threads. The first error stops the hand-out of
// further items (items already running finish) and is returned; otherwise returns ok.
Status parallel_for(std::size_t count, int jobs, const std::function<Status(std::size_t)>& work);

} // namespace tagwarden
