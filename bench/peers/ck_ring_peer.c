/* Concurrency Kit's ck_ring for mk-bench peers, behind a C interface (ck_ring_peer.h). */
#include "ck_ring_peer.h"

#include <ck_ring.h>
#include <stdlib.h>

struct mk_ck_spsc {
  ck_ring_t ring;
  struct ck_ring_buffer* buffer;
};

mk_ck_spsc* mk_ck_spsc_create(size_t size) {
  if (size < 4 || (size & (size - 1)) != 0 || size > (1u << 30)) return NULL;
  mk_ck_spsc* ring = malloc(sizeof *ring);
  if (ring == NULL) return NULL;
  /* Lines of its own, as the other peers' rings have. */
  ring->buffer = aligned_alloc(64, ((size * sizeof *ring->buffer) + 63) & ~(size_t)63);
  if (ring->buffer == NULL) {
    free(ring);
    return NULL;
  }
  ck_ring_init(&ring->ring, (unsigned int)size);
  return ring;
}

void mk_ck_spsc_destroy(mk_ck_spsc* ring) {
  if (ring == NULL) return;
  free(ring->buffer);
  free(ring);
}

bool mk_ck_spsc_enqueue(mk_ck_spsc* ring, void* pointer) {
  return ck_ring_enqueue_spsc(&ring->ring, ring->buffer, pointer);
}

bool mk_ck_spsc_dequeue(mk_ck_spsc* ring, void** pointer) {
  return ck_ring_dequeue_spsc(&ring->ring, ring->buffer, pointer);
}
