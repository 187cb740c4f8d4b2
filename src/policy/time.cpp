#include <tagwarden/policy/time.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace tagwarden::policy {

namespace {

using std::chrono::microseconds;

struct Cursor {
    std::string_view text;
    std::size_t pos = 0;

    [[nodiscard]] bool done() const { return pos >= text.size(); }
    [[nodiscard]] char peek() const { return done() ? '\0' : text[pos]; }

    // Reads exactly `count` digits.
    std::optional<int> digits(std::size_t count) {
        if (pos + count > text.size())
            return std::nullopt;
        int value = 0;
        for (std::size_t i = 0; i < count; ++i) {
            char c = text[pos + i];
            if (c < '0' || c > '9')
                return std::nullopt;
            value = value * 10 + (c - '0');
        }
        pos += count;
        return value;
    }

    bool accept(char c) {
        if (peek() != c)
            return false;
        ++pos;
        return true;
    }
};

std::unexpected<Error> bad_time(std::string_view text, std::string_view why) {
    return fail(ErrorKind::invalid_input, "invalid time '" + std::string(text) + "': " + std::string(why) +
                                              " (use ISO 8601 like 2025-06-15T12:00:00Z, or epoch seconds)");
}

bool is_epoch_number(std::string_view text) {
    if (text.empty())
        return false;
    bool dot = false;
    bool digit = false;
    for (char c : text) {
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c == '.' && !dot)
            dot = true;
        else
            return false;
    }
    return digit;
}

Result<TimePoint> parse_epoch_text(std::string_view text) {
    std::size_t dot = text.find('.');
    std::string_view whole = text.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    if (whole.empty() || whole.size() > 12)
        return bad_time(text, "epoch seconds out of range");
    std::int64_t seconds = 0;
    for (char c : whole)
        seconds = seconds * 10 + (c - '0');
    std::int64_t micros = 0;
    for (std::size_t i = 0; i < 6; ++i)
        micros = micros * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    return TimePoint{microseconds{seconds * 1'000'000 + micros}};
}

} // namespace

Result<TimePoint> time_from_epoch_seconds(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12)
        return fail(ErrorKind::invalid_input, "epoch seconds out of range: " + std::to_string(seconds));
    return TimePoint{microseconds{std::llround(seconds * 1e6)}};
}

Result<TimePoint> parse_time(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    if (text.empty())
        return bad_time(text, "empty");
    if (is_epoch_number(text))
        return parse_epoch_text(text);

    Cursor in{text};
    auto year = in.digits(4);
    if (!year || !in.accept('-'))
        return bad_time(text, "expected YYYY-MM-DD");
    auto month = in.digits(2);
    if (!month || !in.accept('-'))
        return bad_time(text, "expected YYYY-MM-DD");
    auto day = in.digits(2);
    if (!day)
        return bad_time(text, "expected YYYY-MM-DD");
    std::chrono::year_month_day date{std::chrono::year{*year},
                                     std::chrono::month{static_cast<unsigned>(*month)},
                                     std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok())
        return bad_time(text, "no such date");
    microseconds time_of_day{0};
    microseconds offset{0};
    if (!in.done()) {
        if (!in.accept('T') && !in.accept('t') && !in.accept(' '))
            return bad_time(text, "expected 'T' between date and time");
        auto hour = in.digits(2);
        if (!hour || !in.accept(':'))
            return bad_time(text, "expected HH:MM:SS");
        auto minute = in.digits(2);
        if (!minute)
            return bad_time(text, "expected HH:MM:SS");
        int second = 0;
        if (in.accept(':')) {
            auto s = in.digits(2);
            if (!s)
                return bad_time(text, "expected HH:MM:SS");
            second = *s;
        }
        // 60 is a leap second; it is folded into the next minute.
        if (*hour > 23 || *minute > 59 || second > 60)
            return bad_time(text, "hour, minute or second out of range");
        std::int64_t micros = 0;
        if (in.accept('.') || in.accept(',')) {
            std::size_t start = in.pos;
            int count = 0;
            while (!in.done() && in.peek() >= '0' && in.peek() <= '9') {
                if (count < 6) {
                    micros = micros * 10 + (in.peek() - '0');
                    ++count;
                }
                ++in.pos;
            }
            if (in.pos == start)
                return bad_time(text, "expected digits after the decimal point");
            for (; count < 6; ++count)
                micros *= 10;
        }
        time_of_day = std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
                      std::chrono::seconds{second} + microseconds{micros};
        if (in.accept('Z') || in.accept('z')) {
        } else if (in.peek() == '+' || in.peek() == '-') {
            int sign = in.peek() == '-' ? -1 : 1;
            ++in.pos;
            auto off_hour = in.digits(2);
            if (!off_hour)
                return bad_time(text, "expected a UTC offset like +02:00");
            in.accept(':');
            auto off_minute = in.digits(2);
            if (!off_minute || *off_hour > 23 || *off_minute > 59)
                return bad_time(text, "expected a UTC offset like +02:00");
            offset = sign * (std::chrono::hours{*off_hour} + std::chrono::minutes{*off_minute});
        }
    }
    if (!in.done())
        return bad_time(text, "unexpected text after the time");
    return TimePoint{std::chrono::sys_days{date}} + time_of_day - offset;
}

std::string format_time(TimePoint time) {
    auto days = std::chrono::floor<std::chrono::days>(time);
    std::chrono::year_month_day date{days};
    std::chrono::hh_mm_ss<microseconds> tod{time - days};
    char buffer[64];
    auto micros = tod.subseconds().count();
    if (micros == 0)
        std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                      static_cast<int>(tod.hours().count()), static_cast<int>(tod.minutes().count()),
                      static_cast<int>(tod.seconds().count()));
    else
        std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
                      static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                      static_cast<unsigned>(date.day()), static_cast<int>(tod.hours().count()),
                      static_cast<int>(tod.minutes().count()), static_cast<int>(tod.seconds().count()),
                      static_cast<long long>(micros));
    return buffer;
}

} // namespace tagwarden::policy
