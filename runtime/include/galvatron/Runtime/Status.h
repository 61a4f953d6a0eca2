//===- Status.h - Error handling of the runtime -----------------*- C++ -*-===//
//
// The runtime is built without exceptions. Every operation that can fail on
// bad input returns a `Status` (ok or an error message naming the cause and
// where) or an `Expected<T>` (a value or such a message). Messages are
// written for the user: lower-case start, no trailing period, and each layer
// that adds context prefixes it with `withContext`.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_STATUS_H
#define GALVATRON_RUNTIME_STATUS_H

#include <cassert>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

namespace galvatron::runtime {

class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;
  static Status ok() { return Status(); }

  bool isOk() const { return !message_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const std::string &message() const {
    assert(!isOk() && "no message on success");
    return *message_;
  }

  /// Prefixes the message of an error with `context + ": "`.
  Status withContext(const std::string &context) && {
    if (message_)
      message_ = context + ": " + *message_;
    return std::move(*this);
  }

private:
  friend Status makeError(std::string message);
  std::optional<std::string> message_;
};

/// An error carrying `message`.
inline Status makeError(std::string message) {
  Status status;
  status.message_ = std::move(message);
  return status;
}

/// An error whose message is the concatenation of `parts` (streamed).
template <typename... Parts> Status error(const Parts &...parts) {
  std::ostringstream os;
  (os << ... << parts);
  return makeError(os.str());
}

/// A value of type T or an error.
template <typename T> class [[nodiscard]] Expected {
public:
  Expected(T value) : value_(std::move(value)) {}
  Expected(Status status) : status_(std::move(status)) {
    assert(!status_.isOk() && "an Expected built from a Status holds an error");
  }

  bool isOk() const { return status_.isOk(); }
  explicit operator bool() const { return isOk(); }
  const Status &status() const { return status_; }
  Status takeStatus() { return std::move(status_); }

  T &operator*() {
    assert(isOk());
    return *value_;
  }
  const T &operator*() const {
    assert(isOk());
    return *value_;
  }
  T *operator->() { return &**this; }
  const T *operator->() const { return &**this; }

private:
  std::optional<T> value_;
  Status status_;
};

} // namespace galvatron::runtime

/// Returns from the enclosing function when `expr` (a Status) is an error.
#define GALVATRON_RETURN_IF_ERROR(expr)                                        \
  do {                                                                         \
    ::galvatron::runtime::Status galvatronStatus_ = (expr);                    \
    if (!galvatronStatus_.isOk())                                              \
      return galvatronStatus_;                                                 \
  } while (false)

#endif // GALVATRON_RUNTIME_STATUS_H
