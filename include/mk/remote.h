// Tasks started on a kernel by a message: how System::run, spawn and for_each_kernel reach a
// kernel that runs in a process of its own (Config::isolation). Not for direct use.
//
// A kernel process is a fork of the program, so it has the program's code but not the memory
// the program writes after the fork. What crosses is therefore named, not carried: each
// callable type used with System::run gets a number when the program starts (the same number
// in every process, since they all start from one image), and a request carries that number
// and the encoded arguments. The kernel default-constructs the callable, which therefore must
// capture nothing, and decodes the arguments with their Codecs.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/codec.h"
#include "mk/result.h"
#include "mk/task.h"

namespace mk {

class Kernel;

namespace detail {

/// What `f(kernel, args...)` gives when awaited: T for a Task<T>.
template <class F, class... Args>
using RunValue = typename TaskResult<std::invoke_result_t<F&, Kernel&, Args&...>>::type;

/// A callable that can run in a kernel process: empty (no captures) and default-constructible,
/// its arguments and its value encodable.
template <class F, class... Args>
concept RemoteCallable = std::is_empty_v<F> && std::is_default_constructible_v<F> &&
                         (Encodable<Args>&&...) &&
                         (std::is_void_v<RunValue<F, Args...>> || Encodable<RunValue<F, Args...>>);

/// Why `F` with `Args` cannot run in a kernel process, for the error System::run returns.
template <class F, class... Args>
std::string why_not_remote() {
  if constexpr (!std::is_empty_v<F> || !std::is_default_constructible_v<F>) {
    return "the callable captures state (" + std::to_string(sizeof(F)) +
           " bytes), which cannot cross into a kernel process: capture nothing and pass values "
           "as arguments, run(kernel, f, args...)";
  } else if constexpr (!(Encodable<Args> && ...)) {
    return "an argument type has no mk::Codec, so it cannot cross into a kernel process";
  } else {
    return "the task's value type has no mk::Codec, so it cannot cross back from a kernel "
           "process";
  }
}

/// Runs a registered task on `kernel` from its encoded arguments; its value comes back encoded.
using RemoteEntry = Task<Result<std::vector<std::byte>>> (*)(Kernel& kernel,
                                                             std::vector<std::byte> arguments);

/// Gives `entry` the next number; called while the program starts (static initialisation).
std::uint32_t register_remote(RemoteEntry entry);
/// The entry numbered `id`, or nullptr for a number nothing was given (a bad request).
RemoteEntry find_remote(std::uint32_t id) noexcept;

/// The registered body of `F` with `Args`.
template <class F, class... Args>
Task<Result<std::vector<std::byte>>> run_remote(Kernel& kernel, std::vector<std::byte> bytes) {
  auto decoded = decode_all<Args...>(bytes);
  if (!decoded) co_return std::move(decoded).error();
  std::tuple<Args...> arguments = std::move(decoded).value();
  F f{};
  using V = RunValue<F, Args...>;
  std::vector<std::byte> out;
  if constexpr (std::is_void_v<V>) {
    co_await std::apply([&](Args&... values) { return std::invoke(f, kernel, values...); },
                        arguments);
  } else {
    V value = co_await std::apply(
        [&](Args&... values) { return std::invoke(f, kernel, values...); }, arguments);
    Codec<V>::encode(value, out);
  }
  co_return out;
}

/// F's number, given while the program starts: the same in every process forked from it.
template <class F, class... Args>
inline const std::uint32_t kRemoteId = register_remote(&run_remote<F, Args...>);

}  // namespace detail
}  // namespace mk
