#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tagwarden {

Status parallel_for(std::size_t count, int jobs, const std::function<Status(std::size_t)>& work) {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::optional<Error> first_error;

    bool shielded = cancel::shielded();
    const auto* stop_flag = cancel::stop_flag();
    auto worker = [&] {
        std::optional<cancel::Shield> shield;
        if (shielded)
            shield.emplace();
        std::optional<cancel::StopScope> scope;
        if (stop_flag)
            scope.emplace(*stop_flag);
        while (!stop) {
            if (cancel::should_stop()) {
                std::lock_guard lock(mutex);
                if (!first_error)
                    first_error = cancel::cancelled_error();
                stop = true;
                return;
            }
            std::size_t i = next++;
            if (i >= count)
                return;
            Status s;
            try {
                s = work(i);
            } catch (const std::exception& e) {
                s = fail(ErrorKind::internal, e.what());
            }
            if (!s) {
                std::lock_guard lock(mutex);
                if (!first_error)
                    first_error = s.error();
                stop = true;
            }
        }
    };
    std::size_t threads = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, jobs)));
    if (threads <= 1) {
        worker();
    } else {
        std::vector<std::thread> pool;
        for (std::size_t t = 0; t < threads; ++t)
            pool.emplace_back(worker);
        for (auto& t : pool)
            t.join();
    }
    if (first_error)
        return std::unexpected(*first_error);
    return {};
}

} // namespace tagwarden
