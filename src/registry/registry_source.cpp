#include <tagwarden/registry/registry_source.hpp>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

namespace tagwarden::registry {

namespace {

constexpr std::size_t k_stream_buffer = 8 * 1024 * 1024;

// Bytes of one blob GET, handed from the transfer thread to the reader through a bounded buffer, so a
// copy between registries holds at most k_stream_buffer bytes of a blob in memory.
class StreamingBlobReader final : public image::BlobReader {
public:
    StreamingBlobReader(std::shared_ptr<Client> client, std::string repo, Digest digest)
        : m_client(std::move(client)) {
        m_thread = std::thread([this, repo = std::move(repo), digest = std::move(digest)] {
            auto r = m_client->get_blob(repo, digest, [this](const char* data, std::size_t size) -> Status {
                std::unique_lock lock(m_mutex);
                while (size > 0) {
                    m_cv.wait(lock, [&] { return m_cancelled || m_buffer.size() - m_offset < k_stream_buffer; });
                    if (m_cancelled)
                        return fail(ErrorKind::internal, "blob stream cancelled");
                    if (m_offset > 0 && m_offset == m_buffer.size()) {
                        m_buffer.clear();
                        m_offset = 0;
                    }
                    std::size_t room = k_stream_buffer - (m_buffer.size() - m_offset);
                    std::size_t n = std::min(room, size);
                    m_buffer.append(data, n);
                    data += n;
                    size -= n;
                    m_cv.notify_all();
                }
                return {};
            });
            std::lock_guard lock(m_mutex);
            if (!r && !m_cancelled)
                m_error = r.error();
            m_done = true;
            m_cv.notify_all();
        });
    }

    ~StreamingBlobReader() override {
        {
            std::lock_guard lock(m_mutex);
            m_cancelled = true;
        }
        m_cv.notify_all();
        m_thread.join();
    }

    Result<std::size_t> read(char* out, std::size_t size) override {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_done || m_offset < m_buffer.size(); });
        if (m_offset < m_buffer.size()) {
            std::size_t n = std::min(size, m_buffer.size() - m_offset);
            std::memcpy(out, m_buffer.data() + m_offset, n);
            m_offset += n;
            if (m_offset == m_buffer.size()) {
                m_buffer.clear();
                m_offset = 0;
            } else if (m_offset > k_stream_buffer / 2) {
                m_buffer.erase(0, m_offset);  // keep the buffer bounded when it never drains fully
                m_offset = 0;
            }
            m_cv.notify_all();
            return n;
        }
        if (m_error)
            return std::unexpected(*m_error);
        return 0;
    }

private:
    std::shared_ptr<Client> m_client;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::string m_buffer;
    std::size_t m_offset = 0;
    bool m_done = false;
    bool m_cancelled = false;
    std::optional<Error> m_error;
    std::thread m_thread;
};

class RegistrySource final : public image::ImageSource {
public:
    RegistrySource(std::shared_ptr<Client> client, std::string repo, std::string reference, image::Manifest root)
        : m_client(std::move(client)), m_repo(std::move(repo)), m_reference(std::move(reference)), m_root(std::move(root)) {}

    [[nodiscard]] std::string describe() const override {
        return "docker://" + m_client->registry() + "/" + m_repo + (m_reference.starts_with("sha256:") ? "@" : ":") +
               m_reference;
    }

    Result<image::Manifest> root() override { return m_root; }

    Result<image::Manifest> manifest(const image::Descriptor& d) override {
        auto m = m_client->get_manifest(m_repo, d.digest.str());
        if (!m) {
            auto e = m.error();
            if (e.kind == ErrorKind::not_found)
                e.kind = ErrorKind::invalid_input;
            return std::unexpected(e.with_context(describe()));
        }
        if (m->bytes.size() != d.size)
            return fail(ErrorKind::invalid_input, "manifest " + d.digest.str() + " in " + describe() + " has " +
                                                      std::to_string(m->bytes.size()) + " bytes; its index declares " +
                                                      std::to_string(d.size));
        return m;
    }

    Status check_blob(const image::Descriptor& d) override {
        auto size = m_client->blob_size(m_repo, d.digest);
        if (!size)
            return std::unexpected(size.error());
        if (!*size)
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " is missing from " + describe());
        if (**size != d.size)
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " in " + describe() + " has " +
                                                      std::to_string(**size) + " bytes; the manifest declares " +
                                                      std::to_string(d.size));
        return {};
    }

    Result<std::unique_ptr<image::BlobReader>> open_blob(const image::Descriptor& d) override {
        return std::make_unique<image::VerifyingReader>(std::make_unique<StreamingBlobReader>(m_client, m_repo, d.digest),
                                                        d, describe());
    }

private:
    std::shared_ptr<Client> m_client;
    std::string m_repo;
    std::string m_reference;
    image::Manifest m_root;
};

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_registry_source(std::shared_ptr<Client> client, std::string repo,
                                                                 std::string reference) {
    auto m = client->get_manifest(repo, reference);
    if (!m) {
        auto e = m.error();
        if (e.kind == ErrorKind::not_found)
            e = Error(ErrorKind::invalid_input, client->registry() + "/" + repo + ":" + reference + " does not exist");
        return std::unexpected(e);
    }
    return std::make_unique<RegistrySource>(std::move(client), std::move(repo), std::move(reference), std::move(*m));
}

} // namespace tagwarden::registry
