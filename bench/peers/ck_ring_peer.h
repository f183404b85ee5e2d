/* A tiny C interface to one Concurrency Kit ck_ring used single-producer single-consumer:
 * ck_ring.h does not compile as C++, so ck_ring_peer.c wraps it. */
#ifndef MK_BENCH_CK_RING_PEER_H
#define MK_BENCH_CK_RING_PEER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One ck_ring and its buffer of pointers. */
typedef struct mk_ck_spsc mk_ck_spsc;

/** A ring of `size` entries (a power of two of at least 4; ck keeps one free), or NULL when
 * the size is not one or memory cannot be had. */
mk_ck_spsc* mk_ck_spsc_create(size_t size);

/** Frees a ring from mk_ck_spsc_create; NULL is ignored. */
void mk_ck_spsc_destroy(mk_ck_spsc* ring);

/** Enqueues `pointer`; false when the ring is full. Producer only. */
bool mk_ck_spsc_enqueue(mk_ck_spsc* ring, void* pointer);

/** Dequeues the oldest pointer into `*pointer`; false when the ring is empty. Consumer only. */
bool mk_ck_spsc_dequeue(mk_ck_spsc* ring, void** pointer);

#ifdef __cplusplus
}
#endif

#endif
