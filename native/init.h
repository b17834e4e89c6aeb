/* The helper's own init, pid 1 of a container run with --init. */
#ifndef DL_INIT_H
#define DL_INIT_H

#include <stdbool.h>
#include <sys/types.h>

/* With every signal already blocked: forwards each signal but SIGCHLD to WORKLOAD,
 * reaps every child, and returns the workload's wait status once it is reaped.
 * STOPPED (when not NULL) is set once a signal that asks the container to stop
 * (any but SIGWINCH, SIGCONT, SIGURG) was forwarded: see restart.h. */
int dl_init_loop(pid_t workload, bool *stopped);

/* Whether SIG, sent to the init, asks the container to stop. */
bool dl_init_is_stop_signal(int sig);

#endif
