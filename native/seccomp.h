/* Seccomp: the helper only installs a program the TypeScript side compiled
 * (src/runtime/seccomp/); it never builds or changes one. */
#ifndef DL_SECCOMP_H
#define DL_SECCOMP_H

#include <stddef.h>

#include "error.h"

struct dl_seccomp {
	void *insns;   /* struct sock_filter[] */
	size_t len;    /* instructions; 0 for no program */
};

/* Reads a whole program (struct sock_filter[] bytes) from FD to its end and closes FD. */
int dl_seccomp_read(int fd, struct dl_seccomp *p, struct dl_error *e);

/* Installs P on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN. */
int dl_seccomp_install(const struct dl_seccomp *p, struct dl_error *e);

#endif
