// VSpace: address spaces over the capability table, and load/store through a kernel's page
// table with its pager behind them.
#include "mk/vspace.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "services/cap_table.h"
#include "services/capability_object.h"
#include "services/page_fault_guard.h"

namespace mk {

namespace {

using services::CapOp;
using services::CapTable;

std::string hex(std::uintptr_t value) {
  char text[17];
  const auto end = std::to_chars(text, text + sizeof(text), value, 16).ptr;
  return "0x" + std::string(text, end);
}

/// Each kernel's pager, by (service, VSpace, kernel): per process, like the kernel's thread.
struct Pagers {
  std::mutex mutex;
  std::map<std::tuple<std::uint64_t, std::uint32_t, KernelId>, Pager> by_kernel;
};

Pagers& pagers() {
  static Pagers instance;
  return instance;
}

Pager pager_of(std::uint64_t instance, std::uint32_t vspace, KernelId kernel) {
  Pagers& all = pagers();
  std::lock_guard lock(all.mutex);
  auto found = all.by_kernel.find({instance, vspace, kernel});
  return found == all.by_kernel.end() ? Pager{} : found->second;
}

CapOp vspace_op(CapOp::Kind kind, std::uint32_t vspace, std::uintptr_t address, std::size_t size,
                CapRights rights) {
  CapOp op;
  op.kind = kind;
  op.count = vspace;
  op.offset = address;
  op.bytes = size;
  op.rights = rights;
  return op;
}

/// VSpace::create's task: it captures nothing, so it also runs in a kernel process.
struct CreateVSpace {
  Task<Result<VSpace>> operator()(Kernel& k, CapabilityService caps,
                                  std::vector<KernelId> kernels) const {
    co_return co_await VSpace::create_async(k, caps, std::move(kernels));
  }
};

}  // namespace

Task<Result<VSpace>> VSpace::create_async(Kernel& k, CapabilityService caps,
                                          std::vector<KernelId> kernels) {
  if (kernels.empty()) co_return error(Errc::invalid_argument, "VSpace: no kernel to span");
  const std::vector<KernelId> members = caps.members(k);
  std::vector<KernelId> sorted = kernels;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    co_return error(Errc::invalid_argument, "VSpace: a kernel is listed twice");
  }
  for (KernelId kernel : sorted) {
    if (!std::binary_search(members.begin(), members.end(), kernel)) {
      co_return error(Errc::invalid_argument, "VSpace: kernel " + std::to_string(kernel) +
                                                  " is not a member of the capability service");
    }
  }
  CapOp create;
  create.kind = CapOp::Kind::vspace_create;
  create.to = kernels.front();
  auto made = co_await services::update_table(caps.object_, k, create, Completion::everywhere);
  if (!made) co_return std::move(made).error();
  VSpace vspace(caps, made->vspace);
  for (std::size_t i = 1; i < kernels.size(); ++i) {
    auto spanned = co_await vspace.span(k, kernels[i]);
    if (!spanned) co_return std::move(spanned).error();
  }
  co_return vspace;
}

Result<VSpace> VSpace::create(System& system, const CapabilityService& caps,
                              std::vector<KernelId> kernels) {
  const KernelId host = kernels.empty() ? 0 : kernels.front();
  auto made = system.run(host, CreateVSpace{}, caps, std::move(kernels));
  if (!made) return std::move(made).error();
  return std::move(*made);
}

namespace {

// The updates run as free functions of copies (the service's object, the operation): a task
// may outlive the handle it was started from.

Task<Result<void>> agreed(std::shared_ptr<const detail::CapabilityObject> object, Kernel& k,
                          CapOp op) {
  auto done = co_await services::update_table(std::move(object), k, op, Completion::everywhere);
  if (!done) co_return std::move(done).error();
  co_return Result<void>();
}

Task<Result<std::size_t>> unmapped(std::shared_ptr<const detail::CapabilityObject> object,
                                   Kernel& k, CapOp op) {
  auto done = co_await services::update_table(std::move(object), k, op, Completion::everywhere);
  if (!done) co_return std::move(done).error();
  co_return static_cast<std::size_t>(done->unmapped);
}

template <class T>
Task<Result<T>> failed(Error failure) {
  co_return std::move(failure);
}

}  // namespace

Task<Result<void>> VSpace::map(Kernel& k, CapSlot frame, std::uintptr_t address, std::size_t size,
                               CapRights rights) const {
  CapOp op = vspace_op(CapOp::Kind::map, id_, address, size, rights);
  op.slot = frame;
  return agreed(caps_.object_, k, op);
}

Task<Result<std::size_t>> VSpace::unmap(Kernel& k, std::uintptr_t address, std::size_t size) const {
  return unmapped(caps_.object_, k,
                  vspace_op(CapOp::Kind::unmap, id_, address, size, CapRights::none));
}

Task<Result<void>> VSpace::protect(Kernel& k, std::uintptr_t address, std::size_t size,
                                   CapRights rights) const {
  return agreed(caps_.object_, k, vspace_op(CapOp::Kind::protect, id_, address, size, rights));
}

Task<Result<void>> VSpace::span(Kernel& k, KernelId kernel) const {
  const std::vector<KernelId> members = caps_.members(k);
  if (!std::binary_search(members.begin(), members.end(), kernel)) {
    return failed<void>(error(
        Errc::invalid_argument,
        "VSpace: kernel " + std::to_string(kernel) + " is not a member of the capability service"));
  }
  CapOp op = vspace_op(CapOp::Kind::vspace_span, id_, 0, 0, CapRights::none);
  op.to = kernel;
  return agreed(caps_.object_, k, op);
}

namespace {

/// invalid_argument unless [address, address + size) lies in the range and k is spanned.
Result<void> accessible(const VSpace& vspace, Kernel& k, std::uintptr_t address, std::size_t size) {
  const std::span<std::byte> range = vspace.address_range();
  const auto base = reinterpret_cast<std::uintptr_t>(range.data());
  if (address < base || address - base > range.size() || size > range.size() - (address - base)) {
    return error(Errc::invalid_argument, "VSpace: " + hex(address) + " +" + std::to_string(size) +
                                             " is outside the VSpace address range");
  }
  auto kernels = vspace.kernels(k);
  if (!kernels) return std::move(kernels).error();
  if (!std::binary_search(kernels->begin(), kernels->end(), k.id())) {
    return error(Errc::invalid_argument, "VSpace " + std::to_string(vspace.id()) +
                                             " does not span kernel " + std::to_string(k.id()));
  }
  return {};
}

Task<Result<void>> access(VSpace vspace, Kernel& k, std::uintptr_t address, std::byte* data,
                          std::size_t size, bool store) {
  if (auto ok = accessible(vspace, k, address, size); !ok) co_return std::move(ok).error();
  auto* at = reinterpret_cast<std::byte*>(address);
  for (int attempt = 0;; ++attempt) {
    const auto fault = store ? services::guarded_copy(at, data, size, true)
                             : services::guarded_copy(data, at, size, false);
    if (!fault) co_return Result<void>();
    const PageFault event{fault->address, fault->write, k.id()};
    Pager pager = attempt == 0 ? pager_of(vspace.service_instance(), vspace.id(), k.id()) : Pager{};
    if (!pager) {
      co_return error(Errc::page_fault, std::string(store ? "store to " : "load from ") +
                                            hex(event.address) + " on kernel " +
                                            std::to_string(k.id()) + ": not mapped " +
                                            (store ? "writable" : "readable") +
                                            (attempt == 0 ? "" : " after the pager ran"));
    }
    auto resolved = co_await pager(k, event);
    if (!resolved) co_return std::move(resolved).error();
  }
}

}  // namespace

Task<Result<void>> VSpace::load(Kernel& k, std::uintptr_t address, std::span<std::byte> out) const {
  return access(*this, k, address, out.data(), out.size(), false);
}

Task<Result<void>> VSpace::store(Kernel& k, std::uintptr_t address,
                                 std::span<const std::byte> in) const {
  // The bytes are only read: access copies from `data` when storing.
  return access(*this, k, address, const_cast<std::byte*>(in.data()), in.size(), true);
}

Result<void> VSpace::set_pager(Kernel& k, Pager pager) const {
  auto kernels = this->kernels(k);
  if (!kernels) return std::move(kernels).error();
  if (!std::binary_search(kernels->begin(), kernels->end(), k.id())) {
    return error(Errc::invalid_argument, "VSpace " + std::to_string(id_) +
                                             " does not span kernel " + std::to_string(k.id()));
  }
  Pagers& all = pagers();
  std::lock_guard lock(all.mutex);
  const auto key = std::make_tuple(caps_.object_->instance, id_, k.id());
  if (pager) {
    all.by_kernel[key] = std::move(pager);
  } else {
    all.by_kernel.erase(key);
  }
  return {};
}

Result<std::vector<Mapping>> VSpace::mappings(Kernel& k) const {
  const std::uint32_t number = id_;
  auto read = caps_.object_->table.local(
      k, [number](const CapTable& table) { return table.mappings(number); });
  if (!read) return std::move(read).error();
  return std::move(*read);
}

Result<std::vector<KernelId>> VSpace::kernels(Kernel& k) const {
  const std::uint32_t number = id_;
  auto read = caps_.object_->table.local(
      k, [number](const CapTable& table) { return table.spanned(number); });
  if (!read) return std::move(read).error();
  return std::move(*read);
}

std::span<std::byte> VSpace::address_range() const noexcept {
  return caps_.object_->memory.address_range();
}

std::uint64_t VSpace::service_instance() const noexcept {
  return caps_.object_->instance;
}

void Codec<VSpace>::encode(const VSpace& vspace, std::vector<std::byte>& out) {
  Codec<std::uint32_t>::encode(vspace.id_, out);
  Codec<CapabilityService>::encode(vspace.caps_, out);
}

Result<VSpace> Codec<VSpace>::decode(std::span<const std::byte> bytes) {
  constexpr std::size_t kNumber = sizeof(std::uint32_t);
  if (bytes.size() < kNumber) return error(Errc::parse_error, "VSpace handle: too short");
  auto number = Codec<std::uint32_t>::decode(bytes.first(kNumber));
  if (!number) return std::move(number).error();
  if (*number == 0) {
    return error(Errc::parse_error, "VSpace handle: number " + std::to_string(*number));
  }
  auto caps = Codec<CapabilityService>::decode(bytes.subspan(kNumber));
  if (!caps) return std::move(caps).error();
  return VSpace(std::move(*caps), *number);
}

}  // namespace mk
