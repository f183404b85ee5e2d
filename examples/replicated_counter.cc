// replicated_counter: the README's first program. A counter replicated on every kernel; one
// kernel adds to it by agreement and reads it back locally.
#include <cstdint>
#include <cstdio>

#include "mk/replicated.h"
#include "mk/system.h"

struct Counter {  // the user's deterministic state machine
  struct Op {
    std::int64_t add;
  };
  using Result = std::int64_t;
  std::int64_t value = 0;
  Result apply(const Op& op) { return value += op.add; }
};

mk::Task<mk::Result<std::int64_t>> add_and_read(mk::Kernel& k, mk::Replicated<Counter> counter) {
  auto added = co_await counter.propose(k, Counter::Op{5});  // agreed by every replica
  if (!added) co_return added.error();
  co_return co_await counter.read(k, [](const Counter& c) { return c.value; });  // local
}

int fail(const mk::Error& error) {
  std::fprintf(stderr, "%s\n", error.describe().c_str());
  return 1;
}

int main() {
  auto system = mk::System::boot(mk::Config{});  // a pinned kernel on every usable core
  if (!system) return fail(system.error());
  auto counter = mk::Replicated<Counter>::create(**system, Counter{});  // a replica on each
  if (!counter) return fail(counter.error());
  auto value = (*system)->run((*system)->size() - 1, add_and_read, *counter);
  if (!value) return fail(value.error());
  if (!*value) return fail(value->error());
  std::printf("counter = %lld on %zu kernels\n", static_cast<long long>(**value),
              (*system)->size());
  return **value == 5 ? 0 : 1;
}
