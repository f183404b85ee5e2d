// Binding between kernel processes. The exchange is the one of monitor.cc, but a channel's ring
// cannot be handed over as an object: the receiver makes it in a memfd on its own NUMA node,
// with the pair's wake-up flags in the same memory, and sends the memfd (SCM_RIGHTS) over the
// control plane; the sender maps it after checking that it is the ring it asked for. So only
// the two ends of a channel ever map its memory.
#include <unistd.h>

#include <new>
#include <string>
#include <utility>

#include "runtime/control.h"
#include "runtime/kernel_core.h"
#include "transport/channel_options.h"
#include "transport/urpc_channel.h"

namespace mk::runtime {

namespace {

/// Lines in front of a shared ring that hold the pair's PairFlags.
std::size_t flag_lines(std::size_t line_size) {
  return (sizeof(PairFlags) + line_size - 1) / line_size;
}

Result<transport::SlotGeometry> geometry_of(const Fabric& fabric, KernelId from, KernelId to) {
  auto options = fabric.channel_options(from, to);
  if (!options) return std::move(options).error();
  // The node is the receiver's business (make_shared_urpc_receiver); both ends derive the same
  // shape from the same SKB, and the sender checks the ring it maps against it.
  options->receiver_numa_node = -1;
  return transport::make_geometry(*options);
}

}  // namespace

void KernelCore::send_bind_request(KernelId to) {
  fabric.control->send(to, control_out(ControlKind::bind_request, id));
}

void KernelCore::bind_shared(KernelId from) {
  auto fail = [&](const Error& failure) {
    ControlOut out = control_out(ControlKind::bind_failure, id);
    set_failure(
        out, error(failure.code, "binding a channel from kernel " + std::to_string(from) +
                                     " to kernel " + std::to_string(id) + ": " + failure.message));
    fabric.control->send(from, std::move(out));
  };
  auto geometry = geometry_of(fabric, from, id);
  if (!geometry) return fail(geometry.error());
  const std::size_t lines = flag_lines(geometry->line_size);
  auto end = transport::make_shared_urpc_receiver(*geometry, fabric.numa_nodes[id], lines);
  if (!end) return fail(end.error());
  // The memory is fresh and zeroed: start the flags' lifetime here; the sender maps them.
  auto* flags = new (end->aux.get()) PairFlags();
  ControlOut out = control_out(ControlKind::bind_reply, id);
  out.header.a = geometry->slots;
  out.header.c = geometry->line_size;
  out.fds.push_back(end->fd);
  inbound_.push_back(
      Inbound{from, std::move(end->receiver), std::shared_ptr<PairFlags>(end->aux, flags)});
  Counters::bump(counters.channels_bound);
  // The send duplicates the memfd into the datagram; this end's copy closes with its ring.
  fabric.control->send(from, std::move(out));
}

void KernelCore::on_shared_bind_reply(KernelId to, int fd, std::uint64_t slots,
                                      std::uint64_t line_size) {
  auto attach = [&]() -> Result<transport::SharedUrpcSender> {
    auto geometry = geometry_of(fabric, id, to);
    if (!geometry) return std::move(geometry).error();
    if (slots != geometry->slots || line_size != geometry->line_size) {
      return error(Errc::parse_error, "kernel " + std::to_string(to) + " bound a ring of " +
                                          std::to_string(slots) + " slots of " +
                                          std::to_string(line_size) + " bytes, expected " +
                                          std::to_string(geometry->slots) + " of " +
                                          std::to_string(geometry->line_size));
    }
    return transport::attach_urpc_sender(*geometry, fd, flag_lines(geometry->line_size));
  };
  auto end = attach();
  ::close(fd);
  if (!end) {
    Counters::bump(counters.rejected_messages);
    on_bind_failure(
        to, error(end.error().code, "binding a channel to kernel " + std::to_string(to) + ": " +
                                        end.error().message));
    return;
  }
  auto* flags = reinterpret_cast<PairFlags*>(end->aux.get());
  on_bind_reply(to, std::move(end->sender), std::shared_ptr<PairFlags>(end->aux, flags));
}

}  // namespace mk::runtime
