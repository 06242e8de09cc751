#pragma once
// Errno-carrying results for every boundary (kernel API, file kinds, store).
// An Error is an errno plus the words a user reads in `err` and the log.
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace swarmfs {

struct Error {
    int code = EIO;
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    T* operator->() { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

// A Result with no value: success, or an Error.
class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(Error e) : err_(std::move(e)), failed_(true) {}
    static Status success() { return {}; }
    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return err_; }

  private:
    Error err_;
    bool failed_ = false;
};

inline Error make_error(int code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace swarmfs
