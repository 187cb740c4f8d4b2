#include <tagwarden/policy/tag_language.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <unordered_map>

namespace tagwarden::policy {

namespace {

constexpr std::size_t k_max_tag_length = 128;
// Exploration order: readable example tags first.
constexpr std::string_view k_tag_chars = "abcdefghijklmnopqrstuvwxyz0123456789-._ABCDEFGHIJKLMNOPQRSTUVWXYZ";

TagShape::CharSet tag_chars() {
    TagShape::CharSet set;
    for (char c : k_tag_chars)
        set.set(static_cast<unsigned char>(c));
    return set;
}

bool valid_first(char c) {
    return c != '-' && c != '.';
}

// Positions of one shape's NFA: position i is "before token i"; tokens().size() accepts.
using States = std::vector<bool>;

void close(const TagShape& shape, States& states) {
    const auto& tokens = shape.tokens();
    for (std::size_t i = 0; i < tokens.size(); ++i)
        if (states[i] && tokens[i].repeat)
            states[i + 1] = true;
}

States start(const TagShape& shape) {
    States states(shape.tokens().size() + 1, false);
    states[0] = true;
    close(shape, states);
    return states;
}

States step(const TagShape& shape, const States& from, char c) {
    const auto& tokens = shape.tokens();
    States to(tokens.size() + 1, false);
    auto bit = static_cast<unsigned char>(c);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (!from[i] || !tokens[i].chars.test(bit))
            continue;
        to[tokens[i].repeat ? i : i + 1] = true;
    }
    close(shape, to);
    return to;
}

bool accepts(const TagShape& shape, const States& states) {
    return states[shape.tokens().size()];
}

bool empty(const States& states) {
    for (bool b : states)
        if (b)
            return false;
    return true;
}

// One character per class of characters the shapes cannot tell apart (same membership in every token, same
// validity as a first character): the first of the class in exploration order, so witnesses stay the same.
std::vector<char> alphabet(std::span<const TagShape> shapes) {
    std::vector<char> out;
    std::vector<std::string> signatures;
    for (char c : k_tag_chars) {
        auto bit = static_cast<unsigned char>(c);
        std::string signature(1, valid_first(c) ? '1' : '0');
        for (const auto& shape : shapes)
            for (const auto& token : shape.tokens())
                signature += token.chars.test(bit) ? '1' : '0';
        if (std::find(signatures.begin(), signatures.end(), signature) == signatures.end()) {
            signatures.push_back(std::move(signature));
            out.push_back(c);
        }
    }
    return out;
}

// Breadth-first search over the product of the shapes' subset automata for the shortest valid tag whose
// acceptance vector satisfies `goal`. `alive` prunes product states that can no longer reach the goal.
std::optional<std::string> search(std::span<const TagShape> shapes,
                                  const std::function<bool(const std::vector<States>&)>& alive,
                                  const std::function<bool(const std::vector<States>&)>& goal) {
    std::vector<States> initial;
    for (const auto& shape : shapes)
        initial.push_back(start(shape));
    auto key_of = [](const std::vector<States>& node) {
        std::string key;
        for (const auto& states : node) {
            for (bool b : states)
                key += b ? '1' : '0';
            key += '|';
        }
        return key;
    };
    struct Node {
        std::vector<States> states;
        std::string tag;
    };
    std::deque<Node> queue;
    std::unordered_map<std::string, bool> seen;
    // The start node is not recorded in `seen`: it differs from a later node with the same states (the empty
    // tag is not a tag, and the first character has its own rule).
    queue.push_back(Node{initial, ""});
    const std::vector<char> chars = alphabet(shapes);
    while (!queue.empty()) {
        Node node = std::move(queue.front());
        queue.pop_front();
        if (node.tag.size() >= k_max_tag_length)
            continue;
        for (char c : chars) {
            if (node.tag.empty() && !valid_first(c))
                continue;
            std::vector<States> next;
            next.reserve(shapes.size());
            for (std::size_t i = 0; i < shapes.size(); ++i)
                next.push_back(step(shapes[i], node.states[i], c));
            if (!alive(next))
                continue;
            std::string tag = node.tag + c;
            if (goal(next))
                return tag;
            if (seen.emplace(key_of(next), true).second)
                queue.push_back(Node{std::move(next), std::move(tag)});
        }
    }
    return std::nullopt;
}

// The characters every tag of the shape begins with (`from_end`: ends with), in order from that end.
std::string literal_end(const TagShape& shape, bool from_end) {
    std::string out;
    const auto& tokens = shape.tokens();
    for (std::size_t k = 0; k < tokens.size(); ++k) {
        const auto& token = tokens[from_end ? tokens.size() - 1 - k : k];
        if (token.repeat || token.chars.count() != 1)
            break;
        for (std::size_t c = 0; c < token.chars.size(); ++c)
            if (token.chars.test(c))
                out += static_cast<char>(c);
    }
    return out;
}

bool compatible(const std::string& a, const std::string& b) {
    std::size_t n = std::min(a.size(), b.size());
    return a.compare(0, n, b, 0, n) == 0;
}

// Quick exact test: two shapes whose literal beginnings (or endings) differ share no tag.
bool disjoint_ends(const TagShape& a, const TagShape& b) {
    return !compatible(literal_end(a, false), literal_end(b, false)) ||
           !compatible(literal_end(a, true), literal_end(b, true));
}

} // namespace

void TagShape::literal(char c) {
    Token token;
    token.chars.set(static_cast<unsigned char>(c));
    m_tokens.push_back(token);
    m_text += c;
}

void TagShape::any_run() {
    m_tokens.push_back(Token{tag_chars(), true});
    m_text += '*';
}

void TagShape::one_of(std::string_view chars, std::string_view text) {
    Token token;
    for (char c : chars)
        token.chars.set(static_cast<unsigned char>(c));
    m_tokens.push_back(token);
    m_text += text;
}

TagShape TagShape::from_pattern(std::string_view pattern) {
    TagShape shape;
    for (char c : pattern) {
        if (c == '*')
            shape.any_run();
        else
            shape.literal(c);
    }
    return shape;
}

TagShape TagShape::from_prefix(std::string_view prefix) {
    TagShape shape;
    for (char c : prefix)
        shape.literal(c);
    shape.any_run();
    return shape;
}

TagShape TagShape::from_template(std::string_view tag_template, std::string_view env, bool loose) {
    TagShape shape;
    std::size_t i = 0;
    while (i < tag_template.size()) {
        if (tag_template[i] == '{') {
            auto close_brace = tag_template.find('}', i);
            if (close_brace != std::string_view::npos) {
                auto name = tag_template.substr(i + 1, close_brace - i - 1);
                if (name == "env") {
                    for (char c : env)
                        shape.literal(c);
                } else if (name == "version" && !loose) {
                    shape.one_of("0123456789vV", "[0-9vV]");
                    shape.any_run();
                } else {
                    shape.any_run();
                }
                i = close_brace + 1;
                continue;
            }
        }
        shape.literal(tag_template[i]);
        ++i;
    }
    return shape;
}

std::optional<std::string> common_tag(std::span<const TagShape> shapes) {
    if (shapes.empty())
        return std::nullopt;
    for (std::size_t i = 0; i < shapes.size(); ++i)
        for (std::size_t j = i + 1; j < shapes.size(); ++j)
            if (disjoint_ends(shapes[i], shapes[j]))
                return std::nullopt;
    return search(
        shapes,
        [](const std::vector<States>& node) {
            for (const auto& states : node)
                if (empty(states))
                    return false;
            return true;
        },
        [&](const std::vector<States>& node) {
            for (std::size_t i = 0; i < shapes.size(); ++i)
                if (!accepts(shapes[i], node[i]))
                    return false;
            return true;
        });
}

std::optional<std::string> tag_outside(const TagShape& inner, std::span<const TagShape> outer) {
    std::vector<TagShape> all;
    all.push_back(inner);
    // An outer shape disjoint from the inner one removes none of its tags.
    for (const auto& shape : outer)
        if (!disjoint_ends(inner, shape))
            all.push_back(shape);
    if (all.size() == 1) {
        const TagShape alone[] = {inner};
        return common_tag(alone);
    }
    return search(
        all, [](const std::vector<States>& node) { return !empty(node[0]); },
        [&](const std::vector<States>& node) {
            if (!accepts(all[0], node[0]))
                return false;
            for (std::size_t i = 1; i < all.size(); ++i)
                if (accepts(all[i], node[i]))
                    return false;
            return true;
        });
}

} // namespace tagwarden::policy
