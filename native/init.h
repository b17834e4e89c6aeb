/* The helper's own init, pid 1 of a container run with --init. */
#ifndef DL_INIT_H
#define DL_INIT_H

#include <sys/types.h>

/* With every signal already blocked: forwards each signal but SIGCHLD to WORKLOAD,
 * reaps every child, and returns the workload's wait status once it is reaped. */
int dl_init_loop(pid_t workload);

#endif
