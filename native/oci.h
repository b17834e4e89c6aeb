/* What `run` and `exec` need only as an OCI runtime (dockless-runtime): the
 * console socket a terminal's master goes to, and namespaced sysctls. */
#ifndef DL_OCI_H
#define DL_OCI_H

#include "error.h"

/* Connects to the unix stream socket at PATH (a host path: called before any
 * namespace changes how it resolves). */
int dl_console_connect(const char *path, int *sock, struct dl_error *e);

/* Opens a pty of this process's /dev/pts, sends its master over SOCK
 * (SCM_RIGHTS, runc's console socket protocol), sized ROWS x COLS when both are
 * non-zero (`--tty-size`), closes SOCK and returns the
 * slave in *SLAVE. */
int dl_console_send(int sock, unsigned short rows, unsigned short cols, int *slave, struct dl_error *e);

/* Writes VALUE to /proc/sys/KEY (KEY dotted: `net.ipv4.ping_group_range`). */
int dl_sysctl_write(const char *key, const char *value, struct dl_error *e);

#endif
