// libFuzzer target: the AWS error parsers. The input is an error body for the JSON protocol
// (aws::parse_error_response, with and without an X-Amzn-Errortype header taken from the first line) and
// for STS's XML (aws::parse_sts_error, aws::sts_error, aws::xml_text).
#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/sts.hpp>
#include <tagwarden/aws/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    int status = size == 0 ? 400 : 400 + data[0] % 200;

    tagwarden::http::Headers none;
    auto info = tagwarden::aws::parse_error_response(status, none, body);
    (void)tagwarden::aws::to_error(info, "ecr", "PutImage");
    (void)tagwarden::aws::is_retryable_error(info);

    if (auto newline = body.find('\n'); newline != std::string_view::npos) {
        tagwarden::http::Headers headers;
        headers.add("X-Amzn-Errortype", std::string(body.substr(0, newline)));
        headers.add("x-amzn-RequestId", "fuzz");
        auto with_header = tagwarden::aws::parse_error_response(status, headers, body.substr(newline + 1));
        (void)tagwarden::aws::to_error(with_header, "ecr", "PutImage");
    }

    (void)tagwarden::aws::parse_sts_error(body);
    (void)tagwarden::aws::sts_error(status, body, "AssumeRoleWithWebIdentity");
    (void)tagwarden::aws::xml_text(body, {"ErrorResponse", "Error", "Code"});
    (void)tagwarden::aws::xml_text(body, {"Credentials", "Expiration"});
    return 0;
}
