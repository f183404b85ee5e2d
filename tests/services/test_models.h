// Sequential specifications the linearizability tests check histories against.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace mk::test {

/// A read/write register of one integer, starting at 0.
struct RegisterModel {
  struct Input {
    bool write = false;
    int value = 0;  ///< Written value; unused by reads.
  };
  using Output = int;  ///< A read's value; 0 for a write.
  using State = int;

  State initial() const { return 0; }
  std::pair<State, Output> step(State state, const Input& in) const {
    if (in.write) return {in.value, 0};
    return {state, state};
  }
  std::size_t hash(State state) const { return std::hash<int>{}(state); }
  std::string describe_input(const Input& in) const {
    return in.write ? "write(" + std::to_string(in.value) + ")" : std::string("read()");
  }
  std::string describe_output(Output out) const { return std::to_string(out); }
  std::string describe_state(State state) const { return std::to_string(state); }

  static Input write(int value) { return Input{true, value}; }
  static Input read() { return Input{false, 0}; }
};

/// A name table, one independent register-like object per name: register fails when the name
/// is taken, unregister when it is absent, lookup returns the value or nothing.
struct NamingModel {
  enum class Kind : std::uint8_t { register_name, unregister, lookup };
  enum class Status : std::uint8_t { ok, already_exists, not_found };
  struct Input {
    Kind kind = Kind::lookup;
    std::string name;
    std::string value;  ///< Registered value; unused otherwise.
  };
  struct Output {
    Status status = Status::ok;
    std::string value;  ///< A successful lookup's value.
    bool operator==(const Output&) const = default;
  };
  using State = std::optional<std::string>;  ///< One name's value, if registered.

  State initial() const { return std::nullopt; }
  std::pair<State, Output> step(const State& state, const Input& in) const {
    switch (in.kind) {
      case Kind::register_name:
        if (state) return {state, Output{Status::already_exists, {}}};
        return {in.value, Output{}};
      case Kind::unregister:
        if (!state) return {state, Output{Status::not_found, {}}};
        return {std::nullopt, Output{}};
      case Kind::lookup:
        if (!state) return {state, Output{Status::not_found, {}}};
        return {state, Output{Status::ok, *state}};
    }
    return {state, Output{}};
  }
  std::size_t hash(const State& state) const {
    return state ? std::hash<std::string>{}(*state) : 0x9e3779b9u;
  }
  const std::string& partition(const Input& in) const { return in.name; }
  std::string describe_key(const std::string& name) const { return "'" + name + "'"; }
  std::string describe_input(const Input& in) const {
    switch (in.kind) {
      case Kind::register_name:
        return "register(" + in.name + ", " + in.value + ")";
      case Kind::unregister:
        return "unregister(" + in.name + ")";
      case Kind::lookup:
        return "lookup(" + in.name + ")";
    }
    return "?";
  }
  std::string describe_output(const Output& out) const {
    switch (out.status) {
      case Status::ok:
        return out.value.empty() ? std::string("ok") : "ok " + out.value;
      case Status::already_exists:
        return "already_exists";
      case Status::not_found:
        return "not_found";
    }
    return "?";
  }
  std::string describe_state(const State& state) const {
    return state ? "registered " + *state : std::string("absent");
  }
};

}  // namespace mk::test
