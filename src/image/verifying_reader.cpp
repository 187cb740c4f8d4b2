#include <tagwarden/image/image_source.hpp>

namespace tagwarden::image {

VerifyingReader::VerifyingReader(std::unique_ptr<BlobReader> inner, Descriptor expected, std::string origin)
    : m_inner(std::move(inner)), m_expected(std::move(expected)), m_origin(std::move(origin)) {}

Result<std::size_t> VerifyingReader::read(char* buffer, std::size_t size) {
    if (m_done)
        return 0;
    auto n = m_inner->read(buffer, size);
    if (!n)
        return n;
    m_seen += *n;
    if (m_seen > m_expected.size)
        return fail(ErrorKind::invalid_input, "blob " + m_expected.digest.str() + " in " + m_origin +
                                                  " is larger than the " + std::to_string(m_expected.size) +
                                                  " bytes its descriptor declares");
    m_hash.update(buffer, *n);
    // Decide on the read that completes the declared size: an HTTP client stops reading once it has
    // Content-Length bytes, so a check at end-of-file would come too late to stop the upload.
    if (*n == 0 || m_seen == m_expected.size) {
        m_done = true;
        if (m_seen != m_expected.size)
            return fail(ErrorKind::invalid_input, "blob " + m_expected.digest.str() + " in " + m_origin + " has " +
                                                      std::to_string(m_seen) + " bytes but its descriptor declares " +
                                                      std::to_string(m_expected.size));
        auto actual = m_hash.finish();
        if (actual != m_expected.digest)
            return fail(ErrorKind::invalid_input,
                        "blob " + m_expected.digest.str() + " in " + m_origin +
                            " does not match its digest (the content hashes to " + actual.str() +
                            "): the source is corrupt; rebuild or re-export it");
    }
    return n;
}

} // namespace tagwarden::image
