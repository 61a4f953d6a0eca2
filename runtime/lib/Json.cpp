//===- Json.cpp - A small JSON reader and writer --------------------------===//

#include "Json.h"

#include <cerrno>
#include <cstdlib>

namespace galvatron::runtime {

const JsonValue *JsonValue::get(std::string_view key) const {
  for (const auto &[name, value] : members)
    if (name == key)
      return &value;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 32;

class Parser {
public:
  explicit Parser(std::string_view text) : text(text) {}

  Status parseDocument(JsonValue &value) {
    GALVATRON_RETURN_IF_ERROR(parseValue(value, 0));
    skipSpace();
    if (position != text.size())
      return fail("trailing characters");
    return Status::ok();
  }

private:
  Status fail(std::string_view what) const {
    return error("invalid JSON at byte ", position, ": ", what);
  }

  void skipSpace() {
    while (position < text.size() &&
           (text[position] == ' ' || text[position] == '\t' ||
            text[position] == '\n' || text[position] == '\r'))
      ++position;
  }

  bool consume(char c) {
    skipSpace();
    if (position < text.size() && text[position] == c) {
      ++position;
      return true;
    }
    return false;
  }

  bool consumeWord(std::string_view word) {
    if (text.substr(position, word.size()) != word)
      return false;
    position += word.size();
    return true;
  }

  Status parseString(std::string &out) {
    if (!consume('"'))
      return fail("expected a string");
    while (position < text.size()) {
      char c = text[position++];
      if (c == '"')
        return Status::ok();
      if (c != '\\') {
        out += c;
        continue;
      }
      if (position >= text.size())
        break;
      char escaped = text[position++];
      switch (escaped) {
      case '"':
      case '\\':
      case '/':
        out += escaped;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        if (position + 4 > text.size())
          return fail("truncated \\u escape");
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
          char h = text[position++];
          code <<= 4;
          if (h >= '0' && h <= '9')
            code |= h - '0';
          else if (h >= 'a' && h <= 'f')
            code |= h - 'a' + 10;
          else if (h >= 'A' && h <= 'F')
            code |= h - 'A' + 10;
          else
            return fail("bad \\u escape");
        }
        // UTF-8 of a code point of the Basic Multilingual Plane.
        if (code < 0x80) {
          out += char(code);
        } else if (code < 0x800) {
          out += char(0xC0 | (code >> 6));
          out += char(0x80 | (code & 0x3F));
        } else {
          out += char(0xE0 | (code >> 12));
          out += char(0x80 | ((code >> 6) & 0x3F));
          out += char(0x80 | (code & 0x3F));
        }
        break;
      }
      default:
        return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  Status parseNumber(JsonValue &value) {
    size_t start = position;
    if (position < text.size() && text[position] == '-')
      ++position;
    bool integral = true;
    while (position < text.size()) {
      char c = text[position];
      if (c >= '0' && c <= '9') {
        ++position;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        integral = false;
        ++position;
      } else {
        break;
      }
    }
    std::string literal(text.substr(start, position - start));
    if (literal.empty() || literal == "-")
      return fail("expected a value");
    char *end = nullptr;
    errno = 0;
    if (integral) {
      value.kind = JsonValue::Kind::integer;
      value.integer = std::strtoll(literal.c_str(), &end, 10);
      value.real = double(value.integer);
    } else {
      value.kind = JsonValue::Kind::real;
      value.real = std::strtod(literal.c_str(), &end);
    }
    if (errno != 0 || end != literal.c_str() + literal.size())
      return fail("malformed number");
    return Status::ok();
  }

  Status parseValue(JsonValue &value, int depth) {
    if (depth > kMaxDepth)
      return fail("nested deeper than " + std::to_string(kMaxDepth) +
                  " levels");
    skipSpace();
    if (position >= text.size())
      return fail("unexpected end");
    char c = text[position];
    if (c == '{') {
      ++position;
      value.kind = JsonValue::Kind::object;
      if (consume('}'))
        return Status::ok();
      do {
        std::string key;
        GALVATRON_RETURN_IF_ERROR(parseString(key));
        if (!consume(':'))
          return fail("expected ':'");
        JsonValue member;
        GALVATRON_RETURN_IF_ERROR(parseValue(member, depth + 1));
        value.members.emplace_back(std::move(key), std::move(member));
      } while (consume(','));
      return consume('}') ? Status::ok() : fail("expected ',' or '}'");
    }
    if (c == '[') {
      ++position;
      value.kind = JsonValue::Kind::array;
      if (consume(']'))
        return Status::ok();
      do {
        GALVATRON_RETURN_IF_ERROR(
            parseValue(value.items.emplace_back(), depth + 1));
      } while (consume(','));
      return consume(']') ? Status::ok() : fail("expected ',' or ']'");
    }
    if (c == '"') {
      value.kind = JsonValue::Kind::string;
      return parseString(value.string);
    }
    for (bool truth : {true, false})
      if (consumeWord(truth ? "true" : "false")) {
        value.kind = JsonValue::Kind::boolean;
        value.boolean = truth;
        return Status::ok();
      }
    if (consumeWord("null"))
      return Status::ok();
    return parseNumber(value);
  }

  std::string_view text;
  size_t position = 0;
};

} // namespace

Expected<JsonValue> parseJson(std::string_view text) {
  JsonValue value;
  GALVATRON_RETURN_IF_ERROR(Parser(text).parseDocument(value));
  return value;
}

std::string quoteJson(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static const char *hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 0xF];
      out += hex[c & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

} // namespace galvatron::runtime
