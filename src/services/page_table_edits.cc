// Page table edits: the system calls behind a VSpace's map, unmap and protect.
#include "services/page_table_edits.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "mk/capability_memory.h"
#include "runtime/log.h"

namespace mk::services {

namespace {

/// The revision each table's edits have reached in this process.
struct Applied {
  std::mutex mutex;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> revision;
};

Applied& applied() {
  static Applied instance;
  return instance;
}

int protection(CapRights rights) {
  int prot = PROT_NONE;
  if (has_rights(rights, CapRights::read)) prot |= PROT_READ;
  if (has_rights(rights, CapRights::write)) prot |= PROT_WRITE;
  return prot;
}

void failed(const std::string& call, const PageEdit& edit) {
  const int saved = errno;
  runtime::log_line("vspace: " + call + " of " + std::to_string(edit.size) + " bytes at " +
                    std::to_string(edit.address) + " failed: " + std::strerror(saved));
}

void carry_out(const CapabilityMemory& memory, const PageEdit& edit) {
  void* at = reinterpret_cast<void*>(static_cast<std::uintptr_t>(edit.address));
  switch (edit.kind) {
    case PageEdit::Kind::map: {
      NodeMemory* pool = memory.pool(edit.node);
      if (pool == nullptr) {
        errno = ENOENT;
        failed("mmap", edit);
        return;
      }
      const auto offset = static_cast<off_t>(memory.file_offset(edit.node) + edit.offset);
      if (::mmap(at, edit.size, protection(edit.rights), MAP_SHARED | MAP_FIXED, pool->fd(),
                 offset) == MAP_FAILED) {
        failed("mmap of node " + std::to_string(edit.node) + "'s pool", edit);
      }
      return;
    }
    case PageEdit::Kind::unmap:
      // Back to the reservation's inaccessible pages (not a hole another mmap could take):
      // one call that drops the pages and flushes this core's TLB, as munmap would.
      if (::mmap(at, edit.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                 -1, 0) == MAP_FAILED) {
        failed("mmap (unmap)", edit);
      }
      return;
    case PageEdit::Kind::protect:
      if (::mprotect(at, edit.size, protection(edit.rights)) != 0) failed("mprotect", edit);
      return;
  }
}

}  // namespace

void apply_page_edits(std::uint64_t memory, std::uint64_t instance, std::uint64_t revision,
                      std::span<const PageEdit> edits) {
  auto found = CapabilityMemory::find(memory);
  if (!found) return;
  Applied& all = applied();
  // Held across the calls: a replica that finds the revision done must also find its edits
  // in the page table, not under way.
  std::lock_guard lock(all.mutex);
  std::uint64_t& done = all.revision[{memory, instance}];
  if (revision <= done) return;
  done = revision;
  for (const PageEdit& edit : edits)
    carry_out(*found, edit);
}

}  // namespace mk::services
