/* The container's security settings (--caps, --no-new-privs, --seccomp-fd,
 * --rlimit, --no-new-keyring) and the order they are applied in. run.c calls the hooks below at
 * fixed points; PROTOCOL.md names the order and why. */
#ifndef DL_SECURITY_H
#define DL_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"
#include "seccomp.h"

struct dl_rlimit {
	int resource;
	const char *name;
	struct rlimit value;
};

struct dl_security {
	bool has_caps;     /* without --caps the capabilities are left as they are */
	uint64_t caps;
	bool no_new_privs;
	bool keep_keyring; /* --no-new-keyring: stay in the caller's session keyring */
	int seccomp_fd;    /* -1 for none */
	struct dl_seccomp seccomp;
	struct dl_rlimit *rlimits;
	size_t n_rlimits;
	bool init_keeps_caps; /* the init re-forks workloads (restart.h): it keeps their capabilities */
	bool sealed;          /* the filter is inherited from the init already: not installed again */
};

void dl_security_defaults(struct dl_security *s);

/* If ARGV[I] is a security option, parses it and returns how many words it
 * took; 0 if it is not one. Bad values are usage errors (exit 2). */
int dl_security_parse(struct dl_security *s, int argc, char **argv, int i);

/* In the shim, before clone: reads the seccomp program from its fd. */
int dl_security_load(struct dl_security *s, struct dl_error *e);

/* In the workload, before it takes on its user: rlimits, no_new_privs, the
 * bounding set (and, without no_new_privs, seccomp: see the .c file). */
int dl_security_before_user(const struct dl_security *s, struct dl_error *e);

/* In the workload, once it has its user UID: the permitted and effective sets. */
int dl_security_after_user(const struct dl_security *s, uid_t uid, struct dl_error *e);

/* In the workload, last before execve: seccomp (with no_new_privs). */
int dl_security_seal(const struct dl_security *s, struct dl_error *e);

/* In the init (--init) once the workload is forked: no_new_privs, the bounding
 * set, of its own capabilities only CAP_KILL (with init_keeps_caps, the
 * container's too), and the container's seccomp filter. */
int dl_security_init(const struct dl_security *s, struct dl_error *e);

/* In pid 1, as the container's root: a new session keyring of its own, so that
 * no key of the caller's session is within reach (unless --no-new-keyring). */
int dl_security_keyring(const struct dl_security *s, struct dl_error *e);

#endif
