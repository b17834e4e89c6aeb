/* Restart policies without a daemon (--restart): the container's init re-forks
 * the workload in the same container (same namespaces, same root) as the policy
 * says, with Docker's backoff; the shim, on the host, records each restart (the
 * restart file, the events file) for every other process to see. */
#ifndef DL_RESTART_H
#define DL_RESTART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "events.h"

enum { DL_RESTART_NO = 0, DL_RESTART_ON_FAILURE, DL_RESTART_ALWAYS, DL_RESTART_UNLESS_STOPPED };

struct dl_restart {
	int policy;
	unsigned long max;    /* --restart-max: on-failure's most restarts, 0 for no limit */
	const char *file;     /* --restart-file: the shim's record, for other processes */
	int pipe_r, pipe_w;   /* init → shim: each death and restart */
};

/* If ARGV[I] is a restart option, parses it and returns how many words it
 * took; 0 if it is not one. */
int dl_restart_parse(struct dl_restart *r, int argc, char **argv, int i, const char *op);

/* In the shim before the clone: the pipe the init reports restarts on (none without a policy). */
int dl_restart_open(struct dl_restart *r, struct dl_error *e);

/* In the init, with every signal blocked, once FIRST (the workload) is forked:
 * waits for it as dl_init_loop does, and while the policy says so kills what
 * is left of it (when this is its pid namespace's init), waits out the
 * backoff and calls RESPAWN for a new workload. A signal sent to the init
 * from outside (but SIGWINCH, SIGCONT, SIGURG) is a stop: the workload's next
 * exit is final. Returns the last workload's wait status. */
int dl_restart_loop(struct dl_restart *r, pid_t first, pid_t (*respawn)(void *), void *arg);

/* What the shim keeps while its container runs. */
struct dl_shim_watch {
	struct dl_restart *restart;
	const struct dl_events *events;
	const char *oom_file; /* v1 memory.oom_control or v2 memory.events; NULL: no memory cgroup */
	long oom_seen;
	pthread_t thread;
	bool running;
};

/* In the shim after the clone: follows the init's restart reports (a thread,
 * so that the shim's own wait is untouched). */
void dl_shim_watch_start(struct dl_shim_watch *w);

/* In the shim once pid 1 is reaped: ends the watch and records the final
 * exit (the `oom` and `die` events). */
void dl_shim_watch_finish(struct dl_shim_watch *w, int wait_status);

#endif
