/* Capabilities: the bounding set and the process's own sets. A capability set
 * is a 64-bit mask, bit N for capability N, as /proc/PID/status shows it. */
#ifndef DL_CAPS_H
#define DL_CAPS_H

#include <stdint.h>

#include "error.h"

#define DL_CAP_KILL 5

/* Drops from the bounding set every capability the kernel knows that is not in
 * KEEP. Needs CAP_SETPCAP; the permitted and effective sets are not touched. */
int dl_caps_drop_bounding(uint64_t keep, struct dl_error *e);

/* Sets the permitted and effective sets to CAPS and the inheritable set (and
 * with it the ambient set) to none. CAPS must be within the permitted set. */
int dl_caps_set(uint64_t caps, struct dl_error *e);

/* "CAP_SYS_ADMIN" for 21; "CAP_<n>" for numbers without a name here. */
const char *dl_cap_name(int cap, char *buf, size_t size);

#endif
