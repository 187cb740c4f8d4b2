#include <tagwarden/core/json_fields.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using nlohmann::json;

TEST_CASE("json fields: absent, present and of another type", "[unit][core]") {
    auto doc = json::parse(R"({"s":"x","n":7,"b":true,"a":[1],"o":{}})");
    CHECK(string_field(doc, "s") == "x");
    CHECK(string_field(doc, "missing", "d") == "d");
    CHECK_FALSE(string_field(doc, "n"));
    CHECK(int_field(doc, "n", 0) == 7);
    CHECK(int_field(doc, "missing", 3) == 3);
    CHECK_FALSE(int_field(doc, "s", 0));
    CHECK_FALSE(int_field(json::parse(R"({"n":1.5})"), "n", 0));
    CHECK(bool_field(doc, "b", false) == true);
    CHECK_FALSE(bool_field(doc, "o", false));
    CHECK(array_field(doc, "a") != nullptr);
    CHECK(array_field(doc, "o") == nullptr);
    // Not an object at all: every key is absent.
    for (const auto& other : {json::array({1}), json("text"), json(nullptr), json(5)}) {
        CHECK(string_field(other, "s", "d") == "d");
        CHECK(int_field(other, "n", 1) == 1);
        CHECK(array_field(other, "a") == nullptr);
    }
}
