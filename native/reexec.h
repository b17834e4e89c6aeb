/* Running the helper from a sealed copy of itself (runc's defence against
 * CVE-2019-5736). */
#ifndef DL_REEXEC_H
#define DL_REEXEC_H

#include "error.h"

/* Unless the running executable already is a sealed memfd, copies it into one,
 * seals it against any change and executes it with ARGV and the same
 * environment: on success it does not return. From then on /proc/PID/exe of
 * this process (and of every process it clones without exec) is that copy, so
 * a process that reaches it can change nothing on the host. */
int dl_reexec_sealed(char **argv, struct dl_error *e);

/* dl_reexec_sealed at a helper's start, before its op has read anything: on
 * failure it returns and leaves the op's own dl_reexec_sealed to try again and
 * report the error on the op's status descriptor. */
void dl_reexec_sealed_early(char **argv);

/* The sealed copy alone, as a close-on-exec fd in *OUT. */
int dl_sealed_copy(int *out, struct dl_error *e);

#endif
