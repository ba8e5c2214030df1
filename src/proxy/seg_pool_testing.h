/* seg_pool_testing.h - test-only entry of the segment pool: a replaceable creation function,
 * so tests can make creating segments fail. The programs use seg_pool_new (seg_pool.h). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SEG_POOL_TESTING_H
#define GF_SEG_POOL_TESTING_H

#include "seg_pool.h"

/* seg_pool_new, with every segment (the first n and every replacement) made by create. */
int seg_pool_new_with(struct seg_pool **out, unsigned n, uint64_t size, seg_pool_create_fn create);

/* seg_pool_new_classes, likewise. */
int seg_pool_new_classes_with(struct seg_pool **out, const struct seg_classes *cl,
                              seg_pool_create_fn create);

#endif
