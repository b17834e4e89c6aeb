/* Namespaces and the per-namespace setup that pid 1 does: joining, loopback, hostname. */
#ifndef DL_NS_H
#define DL_NS_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* The CLONE_NEW* flag of a namespace name (`mount`, `pid`, `uts`, `ipc`, `net`, `cgroup`, `user`), or 0. */
int dl_ns_flag(const char *name);

/* Parses a comma list of namespace names into CLONE_NEW* flags; -1 names the first bad word in BAD. */
int dl_ns_parse_list(const char *list, int *flags, const char **bad);

/* setns(2) on FD, an open namespace file of type FLAG taken from PATH. */
int dl_ns_join(int fd, int flag, const char *path, struct dl_error *e);

/* Brings `lo` up in the current (new) network namespace. */
int dl_ns_loopback_up(struct dl_error *e);

/* Opens PID's network namespace (and with USER its user namespace), keeps the
 * fds open for the life of this process, and reports them on the status fd as
 * `{"type":"netns","net":"/proc/SELF/fd/N","user":"…"}`: paths that other
 * processes of this user can open while this one lives. */
int dl_ns_report(pid_t pid, bool user, struct dl_error *e);

int dl_ns_sethostname(const char *name, struct dl_error *e);

#endif
