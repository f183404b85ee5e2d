// mk::FunctionRef: a non-owning, non-allocating reference to a callable.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace mk {

template <class Signature>
class FunctionRef;

/// Refers to a callable for the duration of a call, such as a per-message callback on a poll.
/// It never allocates and never owns: the callable must outlive every call through it.
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  /// Refers to `callable`, which must outlive this reference's use.
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
           std::is_invocable_r_v<R, F&, Args...>) FunctionRef(F&& callable)
  noexcept  // NOLINT(google-explicit-constructor): used like a lambda
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(callable)))),
        invoke_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}

  /// Calls the referred callable.
  R operator()(Args... args) const { return invoke_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*invoke_)(void*, Args...);
};

}  // namespace mk
