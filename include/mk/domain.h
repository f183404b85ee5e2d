// mk::Domain and mk::Dispatcher: an application spanning a set of kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mk/kernel.h"
#include "mk/kernel_id.h"
#include "mk/result.h"
#include "mk/system.h"
#include "mk/task.h"

namespace mk {

/// Names a domain within its System.
using DomainId = std::uint32_t;

namespace detail {
struct AddDispatcher;
}

/// A domain's presence on one kernel: where its per-kernel state (later, its capabilities)
/// hangs. Lives on its kernel and is used only from that kernel's tasks.
class Dispatcher {
 public:
  /// The domain this dispatcher belongs to.
  DomainId domain() const noexcept { return domain_; }
  /// The domain's name.
  const std::string& domain_name() const noexcept { return name_; }
  /// The kernel it lives on.
  Kernel& kernel() const noexcept { return kernel_; }
  /// The dispatcher of `domain` on `kernel`, or nullptr when the domain does not run there.
  /// Only from `kernel`'s own thread.
  static Dispatcher* of(Kernel& kernel, DomainId domain) noexcept;

 private:
  friend class System;
  friend struct detail::AddDispatcher;
  Dispatcher(Kernel& kernel, DomainId domain, std::string name)
      : kernel_(kernel), domain_(domain), name_(std::move(name)) {}

  Kernel& kernel_;
  DomainId domain_;
  std::string name_;
};

namespace detail {

/// Makes a kernel's dispatcher of a domain (System::create_domain), on the kernel.
struct AddDispatcher {
  Task<void> operator()(Kernel& kernel, DomainId domain, std::string name) const;
};

}  // namespace detail

/// An application on a set of kernels, with one Dispatcher on each (System::create_domain).
/// A small value; valid while its System is.
class Domain {
 public:
  /// Its id.
  DomainId id() const noexcept { return id_; }
  /// Its name, unique within the System.
  const std::string& name() const noexcept { return name_; }
  /// The kernels it runs on, in the order given at creation.
  std::span<const KernelId> kernels() const noexcept { return kernels_; }

  /// Runs `f(dispatcher)`, which returns a Task<void>, on every kernel of the domain, each
  /// with its own copy of `f`. Returns at once; errors as for System::spawn.
  template <class F>
  requires std::is_invocable_r_v<Task<void>, F&, Dispatcher&>&& std::is_copy_constructible_v<F>
      Result<void> spawn(const F& f) const {
    for (KernelId kernel : kernels_) {
      Result<void> spawned;
      if constexpr (std::is_empty_v<F> && std::is_default_constructible_v<F>) {
        // Nothing captured: the same in a kernel process, where only the domain id crosses.
        spawned = system_->spawn(kernel, OnDispatcherOf<F>{}, id_);
      } else {
        spawned = system_->spawn(kernel, OnDispatcher<F>{f}, id_);
      }
      if (!spawned) return spawned;
    }
    return {};
  }

 private:
  friend class System;
  Domain(System& system, DomainId id, std::string name, std::vector<KernelId> kernels)
      : system_(&system), id_(id), name_(std::move(name)), kernels_(std::move(kernels)) {}

  /// Calls a copy of the user's function with the kernel's dispatcher of the domain.
  template <class F>
  struct OnDispatcher {
    F f;
    Task<void> operator()(Kernel& kernel, DomainId domain) {
      return std::invoke(f, *Dispatcher::of(kernel, domain));
    }
  };
  /// The same for a function that captures nothing, made where it runs.
  template <class F>
  struct OnDispatcherOf {
    Task<void> operator()(Kernel& kernel, DomainId domain) const {
      F f{};
      return std::invoke(f, *Dispatcher::of(kernel, domain));
    }
  };

  System* system_;
  DomainId id_;
  std::string name_;
  std::vector<KernelId> kernels_;
};

}  // namespace mk
