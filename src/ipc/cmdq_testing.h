/* cmdq_testing.h - test-only hooks and counters of the command queue; the programs use none of
 * it. The product API is cmdq.h. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CMDQ_TESTING_H
#define GF_CMDQ_TESTING_H

#include <sys/types.h>

#include "cmdq.h"

/* When set, called with the registry name right after a registry object has been locked and
 * before the name is checked to still refer to it (to replace the name at that exact point).
 * NULL in the programs. */
extern void (*cmdq_test_after_lock)(const char *registry_name);

/* The pid of the cache the client is currently connected to, or 0. */
pid_t cmdq_client_cache_pid(struct cmdq_client *c);

/* How many registry lookups (connect attempts) the client has made. */
unsigned cmdq_client_lookups(struct cmdq_client *c);

#endif
