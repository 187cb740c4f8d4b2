// Cross-check against botocore's SigV4Auth, the signer of the AWS CLI and boto3. botocore_sigv4.py
// (beside this file) signs each case at a fixed time and prints botocore's canonical request, string to
// sign and Authorization; ours must be identical. Runs with every python3 found (PATH, /usr/bin) that can
// import botocore, so Debian's python3-botocore and a newer pip one are both checked when present.
//
// The URLs are written as on the wire (already percent-encoded): botocore sorts the query of a URL
// without re-encoding it, so raw bytes in a query would be a difference in input, not in signing.

#include "sigv4_test_support.hpp"

#include <tagwarden/aws/sigv4.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace tagwarden;
using namespace tagwarden::test;
namespace fs = std::filesystem;

namespace {

const fs::path k_script = fs::path(__FILE__).parent_path() / "botocore_sigv4.py";
constexpr std::string_view k_timestamp = "20240229T235959Z";

struct BotocoreCase {
    std::string name;
    aws::SigningRequest request; // payload_hash is filled from body
    std::string body;
    aws::Credentials credentials;
    std::string region;
    std::string service;
};

std::vector<BotocoreCase> cases() {
    const aws::Credentials keys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
    aws::Credentials session = keys;
    session.access_key_id = "ASIAIOSFODNN7EXAMPLE";
    session.session_token =
        "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDEXAMPLE+TOKEN/abc+def==";
    const aws::HeaderList ecr_json = {{"Content-Type", "application/x-amz-json-1.1"},
                                      {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.PutImage"}};
    const std::string put_image =
        R"({"repositoryName":"team/app","imageTag":"1.4.2-dev","imageManifest":"{\"schemaVersion\":2}"})";
    return {
        {"ECR PutImage",
         {"POST", "https://api.ecr.us-east-1.amazonaws.com/", ecr_json, ""},
         put_image,
         keys,
         "us-east-1",
         "ecr"},
        {"ECR PutImage with a session token",
         {"POST", "https://api.ecr.us-east-1.amazonaws.com/", ecr_json, ""},
         put_image,
         session,
         "us-east-1",
         "ecr"},
        {"ECR GetAuthorizationToken, another region, a non-default port",
         {"POST",
          "https://api.ecr.eu-central-1.amazonaws.com:8443/",
          {{"Content-Type", "application/x-amz-json-1.1"},
           {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"}},
          ""},
         "{}",
         session,
         "eu-central-1",
         "ecr"},
        {"Service Quotas GetServiceQuota",
         {"POST",
          "https://servicequotas.us-west-2.amazonaws.com/",
          {{"Content-Type", "application/x-amz-json-1.1"},
           {"X-Amz-Target", "ServiceQuotasV20190624.GetServiceQuota"}},
          ""},
         R"({"ServiceCode":"ecr","QuotaCode":"L-03A36CE1"})",
         keys,
         "us-west-2",
         "servicequotas"},
        {"DynamoDB PutItem with a session token, on loopback",
         {"POST",
          "http://127.0.0.1:8000/",
          {{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", "DynamoDB_20120810.PutItem"}},
          ""},
         R"({"TableName":"tagwarden-locks","Item":{"id":{"S":"team/app:1.4.2-dev"}}})",
         session,
         "us-east-1",
         "dynamodb"},
        {"GET: dot segments, double encoding, unsorted and repeated query keys, header folding",
         {"GET",
          "https://example.amazonaws.com/a/b%20c/./d//e/../f%2Fg?z=1&a=2&b&a=1&sp=x%20y&t=~._-&u=%E1%88%B4",
          {{"My-Header1", "  a   b  "},
           {"X-Dup", "2"},
           {"x-dup", "1"},
           {"X-Folded", "value1\n  value2\n     value3"},
           {"User-Agent", "tagwarden/0.1"},
           {"Content-Type", "text/plain"}},
          ""},
         "",
         keys,
         "us-east-1",
         "service"},
        {"UTF-8 path and query",
         {"GET", "https://example.amazonaws.com/%E1%88%B4?%E1%88%B4=bar", {}, ""},
         "",
         keys,
         "us-east-1",
         "service"},
    };
}

// Every python3 (by its real executable) that can import botocore.
std::vector<std::string> botocore_pythons(std::string& tried) {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("TAGWARDEN_PYTHON"); env != nullptr && *env != '\0')
        candidates.emplace_back(env);
    candidates.emplace_back("python3");
    candidates.emplace_back("/usr/bin/python3");
    std::set<std::string> seen;
    std::vector<std::string> found;
    for (const auto& python : candidates) {
        tried += (tried.empty() ? "" : ", ") + python;
        auto probe =
            run_command(shell_quote(python) + " -c 'import sys, botocore.auth; print(sys.executable)'");
        if (probe.exit_code != 0)
            continue;
        std::string executable = probe.output.substr(0, probe.output.find('\n'));
        if (seen.insert(executable).second)
            found.push_back(executable);
    }
    return found;
}

nlohmann::json to_json(const BotocoreCase& c) {
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [name, value] : c.request.headers)
        headers.push_back({name, value});
    return {{"method", c.request.method},
            {"url", c.request.url},
            {"headers", headers},
            {"body", c.body},
            {"access_key", c.credentials.access_key_id},
            {"secret_key", c.credentials.secret_access_key},
            {"token", c.credentials.session_token},
            {"region", c.region},
            {"service", c.service},
            {"timestamp", k_timestamp}};
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

} // namespace

TEST_CASE("SigV4 matches botocore's SigV4Auth", "[unit][sigv4][botocore]") {
    std::string tried;
    auto pythons = botocore_pythons(tried);
    if (pythons.empty())
        FAIL("no python3 that can import botocore (tried "
             << tried
             << "): install Debian's python3-botocore "
                "(apt-get install python3-botocore) or set "
                "TAGWARDEN_PYTHON to a python3 that has botocore");
    REQUIRE(fs::exists(k_script));

    auto all = cases();
    nlohmann::json input = nlohmann::json::array();
    for (const auto& c : all)
        input.push_back(to_json(c));
    const fs::path input_file =
        fs::temp_directory_path() / ("tagwarden-sigv4-botocore-" + std::to_string(::getpid()) + ".json");
    {
        std::ofstream out(input_file, std::ios::binary);
        out << input.dump();
    }
    auto time = aws::parse_amz_date(k_timestamp);
    REQUIRE(time);

    for (const auto& python : pythons) {
        auto run = run_command(shell_quote(python) + " " + shell_quote(k_script.string()) + " " +
                               shell_quote(input_file.string()));
        INFO(python << " exited " << run.exit_code << ":\n" << run.output);
        REQUIRE(run.exit_code == 0);
        auto output = nlohmann::json::parse(run.output);
        const auto& results = output.at("results");
        REQUIRE(results.size() == all.size());
        for (std::size_t i = 0; i < all.size(); ++i) {
            const auto& c = all[i];
            const auto& expected = results[i];
            INFO("botocore " << output.at("botocore").get<std::string>() << " (" << python
                             << "), case: " << c.name);
            aws::SigningRequest request = c.request;
            request.payload_hash = aws::sha256_hex(c.body);
            auto ours = aws::sign(request, c.credentials, c.region, c.service, *time);
            REQUIRE(ours);
            CHECK(ours->canonical_request == expected.at("canonical_request").get<std::string>());
            CHECK(ours->string_to_sign == expected.at("string_to_sign").get<std::string>());
            CHECK(ours->authorization == expected.at("authorization").get<std::string>());
            // botocore's request carries exactly the headers we add, with the same values.
            std::multimap<std::string, std::string> botocore_headers;
            for (const auto& h : expected.at("headers"))
                botocore_headers.emplace(lower(h.at(0).get<std::string>()), h.at(1).get<std::string>());
            for (const auto& [name, value] : ours->headers_to_add) {
                INFO("we add " << name);
                auto [first, last] = botocore_headers.equal_range(lower(name));
                REQUIRE(std::distance(first, last) == 1);
                CHECK(first->second == value);
            }
        }
    }
    fs::remove(input_file);
}
