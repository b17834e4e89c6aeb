/* Status lines: one JSON object per line on the status descriptor, each written
 * with a single write(2) so that the shim, pid 1 and the workload never interleave. */
#ifndef DL_STATUS_H
#define DL_STATUS_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Uses FD for status lines when it is open; otherwise status goes nowhere. */
void dl_status_init(int fd);

/* Before its first line, this process reads one byte from FD (pid 1 waits for the
 * shim's `pid` line this way, so the lines stay in protocol order). EOF means the
 * shim is gone, and the process exits. */
void dl_status_set_gate(int fd);

/* The status descriptor, or -1 when status goes nowhere. */
int dl_status_fd(void);

void dl_status_pid(pid_t pid);
/* The same with pid 1's start time (/proc/PID/stat field 22), when START is not 0. */
void dl_status_pid_start(pid_t pid, unsigned long long start);
/* {"type":TYPE,"pid":PID[,"start":START]}: the start time only when not 0. */
void dl_status_proc(const char *type, pid_t pid, unsigned long long start);
void dl_status_simple(const char *type);
void dl_status_exited(int wait_status);
void dl_status_error(const struct dl_error *e);

/* What a container's shim adds to its `exited` line and exit file. */
struct dl_exited_extra {
	bool oom;             /* the memory cgroup counted an OOM kill */
};
void dl_status_exited_ex(int wait_status, const struct dl_exited_extra *x);
size_t dl_format_exited_ex(char *buf, size_t size, int wait_status, const struct dl_exited_extra *x);

/* Formats the `exited` line for WAIT_STATUS into BUF; returns its length. */
size_t dl_format_exited(char *buf, size_t size, int wait_status);

#endif
