#include <tagwarden/core/strings.hpp>
#include <tagwarden/aws/wire.hpp>

#include <tagwarden/http/url.hpp>

#include <nlohmann/json.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>

namespace tagwarden::aws {

namespace {

bool read_digits(std::string_view s, std::size_t& pos, std::size_t count, int& out) {
    if (pos + count > s.size())
        return false;
    int v = 0;
    for (std::size_t i = 0; i < count; ++i) {
        char c = s[pos + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    pos += count;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos < s.size() && s[pos] == c) {
        ++pos;
        return true;
    }
    return false;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
long long days_from_civil(int y, int m, int d) {
    y -= m <= 2 ? 1 : 0;
    const long long era = (y >= 0 ? y : y - 399) / 400;
    const long long yoe = y - era * 400;
    const long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

std::string append_utf8(unsigned long cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x110000) {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
}

// Skips a comment, processing instruction, declaration or CDATA starting at `pos` ('<' followed by '!' or
// '?'); returns the position after it, or npos.
std::size_t skip_special(std::string_view xml, std::size_t pos) {
    if (xml.substr(pos).starts_with("<!--")) {
        auto end = xml.find("-->", pos + 4);
        return end == std::string_view::npos ? end : end + 3;
    }
    if (xml.substr(pos).starts_with("<![CDATA[")) {
        auto end = xml.find("]]>", pos + 9);
        return end == std::string_view::npos ? end : end + 3;
    }
    auto end = xml.find('>', pos);
    return end == std::string_view::npos ? end : end + 1;
}

struct Element {
    std::string_view content; // between the start and end tags
};

std::string_view local_name(std::string_view name) {
    auto colon = name.rfind(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// Finds the first element called `name` (local name) anywhere in `xml` and returns its content, matching
// nested elements of the same name. nullopt when absent or unbalanced.
std::optional<Element> find_element(std::string_view xml, std::string_view name) {
    std::size_t pos = 0;
    while (true) {
        pos = xml.find('<', pos);
        if (pos == std::string_view::npos || pos + 1 >= xml.size())
            return std::nullopt;
        char next = xml[pos + 1];
        if (next == '!' || next == '?') {
            pos = skip_special(xml, pos);
            if (pos == std::string_view::npos)
                return std::nullopt;
            continue;
        }
        if (next == '/') {
            ++pos;
            continue;
        }
        std::size_t name_end = pos + 1;
        while (name_end < xml.size() && is_name_char(xml[name_end]))
            ++name_end;
        std::string_view tag = xml.substr(pos + 1, name_end - pos - 1);
        auto tag_end = xml.find('>', name_end);
        if (tag_end == std::string_view::npos)
            return std::nullopt;
        bool self_closing = xml[tag_end - 1] == '/';
        if (local_name(tag) != name) {
            pos = tag_end + 1;
            continue;
        }
        if (self_closing)
            return Element{std::string_view()};
        // Find the matching end tag, counting nested same-named elements.
        std::size_t depth = 1;
        std::size_t scan = tag_end + 1;
        while (true) {
            auto lt = xml.find('<', scan);
            if (lt == std::string_view::npos || lt + 1 >= xml.size())
                return std::nullopt;
            char c = xml[lt + 1];
            if (c == '!' || c == '?') {
                scan = skip_special(xml, lt);
                if (scan == std::string_view::npos)
                    return std::nullopt;
                continue;
            }
            bool closing = c == '/';
            std::size_t n0 = lt + (closing ? 2 : 1);
            std::size_t n1 = n0;
            while (n1 < xml.size() && is_name_char(xml[n1]))
                ++n1;
            auto gt = xml.find('>', n1);
            if (gt == std::string_view::npos)
                return std::nullopt;
            if (local_name(xml.substr(n0, n1 - n0)) == name) {
                if (closing) {
                    if (--depth == 0)
                        return Element{xml.substr(tag_end + 1, lt - tag_end - 1)};
                } else if (xml[gt - 1] != '/') {
                    ++depth;
                }
            }
            scan = gt + 1;
        }
    }
}

// Text of an element's content: CDATA kept verbatim, entities decoded elsewhere, child tags dropped.
std::string element_text(std::string_view content) {
    std::string out;
    std::size_t pos = 0;
    while (pos < content.size()) {
        auto lt = content.find('<', pos);
        if (lt == std::string_view::npos) {
            out += xml_unescape(content.substr(pos));
            break;
        }
        out += xml_unescape(content.substr(pos, lt - pos));
        if (content.substr(lt).starts_with("<![CDATA[")) {
            auto end = content.find("]]>", lt + 9);
            if (end == std::string_view::npos)
                break;
            out += content.substr(lt + 9, end - lt - 9);
            pos = end + 3;
            continue;
        }
        auto end = skip_special(content, lt);
        if (end == std::string_view::npos)
            break;
        pos = end;
    }
    return out;
}

} // namespace

Result<Clock::time_point> parse_iso8601(std::string_view text) {
    std::string_view s = trim(text);
    auto bad = [&] {
        return fail(ErrorKind::invalid_input,
                    "not an ISO 8601 timestamp: \"" + std::string(s.substr(0, 64)) + "\"");
    };
    std::size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, day))
        return bad();
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return bad();
    ++pos;
    if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, second))
        return bad();
    long long nanos = 0;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        std::size_t digits = 0;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
            if (digits < 9)
                nanos = nanos * 10 + (s[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0)
            return bad();
        for (std::size_t i = digits; i < 9; ++i)
            nanos *= 10;
    }
    long long offset_seconds = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        int oh = 0, om = 0;
        if (!read_digits(s, pos, 2, oh))
            return bad();
        expect(s, pos, ':');
        if (!read_digits(s, pos, 2, om))
            return bad();
        offset_seconds = sign * (oh * 3600LL + om * 60LL);
    } else {
        return bad(); // a timestamp without a zone is ambiguous
    }
    if (pos != s.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
        second > 60)
        return bad();
    long long epoch =
        days_from_civil(year, month, day) * 86400LL + hour * 3600LL + minute * 60LL + second - offset_seconds;
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(epoch) +
                                                                         std::chrono::nanoseconds(nanos)));
}

std::string format_iso8601(Clock::time_point time) {
    std::time_t t = Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(time));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

Result<Clock::time_point> parse_epoch_seconds(const nlohmann::json& value) {
    double seconds = 0;
    if (value.is_number()) {
        seconds = value.get<double>();
    } else if (value.is_string()) {
        const auto& s = value.get_ref<const std::string&>();
        char* end = nullptr;
        seconds = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0')
            return parse_iso8601(s);
    } else {
        return fail(ErrorKind::registry, "timestamp is not a number: " + value.dump().substr(0, 64));
    }
    if (!std::isfinite(seconds))
        return fail(ErrorKind::registry, "timestamp is not finite");
    auto whole = std::floor(seconds);
    auto ms = static_cast<long long>(std::llround((seconds - whole) * 1000.0));
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(static_cast<long long>(whole)) + std::chrono::milliseconds(ms)));
}

long long to_epoch_seconds(Clock::time_point time) {
    return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

std::string xml_unescape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        char c = text[pos];
        if (c != '&') {
            out += c;
            ++pos;
            continue;
        }
        auto semi = text.find(';', pos);
        if (semi == std::string_view::npos || semi - pos > 12) {
            out += c;
            ++pos;
            continue;
        }
        std::string_view entity = text.substr(pos + 1, semi - pos - 1);
        if (entity == "amp")
            out += '&';
        else if (entity == "lt")
            out += '<';
        else if (entity == "gt")
            out += '>';
        else if (entity == "quot")
            out += '"';
        else if (entity == "apos")
            out += '\'';
        else if (entity.size() > 1 && entity[0] == '#') {
            unsigned long cp = 0;
            std::from_chars_result r{};
            if (entity[1] == 'x' || entity[1] == 'X')
                r = std::from_chars(entity.data() + 2, entity.data() + entity.size(), cp, 16);
            else
                r = std::from_chars(entity.data() + 1, entity.data() + entity.size(), cp, 10);
            if (r.ec != std::errc() || r.ptr != entity.data() + entity.size()) {
                out += text.substr(pos, semi - pos + 1);
            } else {
                out += append_utf8(cp);
            }
        } else {
            out += text.substr(pos, semi - pos + 1);
        }
        pos = semi + 1;
    }
    return out;
}

std::optional<std::string> xml_text(std::string_view xml, std::initializer_list<std::string_view> path) {
    std::string_view scope = xml;
    for (auto name : path) {
        auto element = find_element(scope, name);
        if (!element)
            return std::nullopt;
        scope = element->content;
    }
    return std::string(trim(element_text(scope)));
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        if (!out.empty())
            out += '&';
        out += http::url_encode(name);
        out += '=';
        out += http::url_encode(value);
    }
    return out;
}

} // namespace tagwarden::aws
