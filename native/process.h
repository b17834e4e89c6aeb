/* The container's process as `run` and `exec` make it: its command, user,
 * environment and cwd, and the one sequence of steps that turns a helper process
 * (already in the container's namespaces) into it. Shared so that a process
 * exec'd into a container gets exactly what the container's own got. */
#ifndef DL_PROCESS_H
#define DL_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "security.h"

struct dl_process {
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	bool groups_set;
	char **env;
	size_t n_env;
	char **cmd;
	bool keep_parent; /* no PR_SET_PDEATHSIG: the process outlives the helper (run/exec --detach) */
};

/* calloc, or an error line and exit 1. */
void *dl_xcalloc(size_t n, size_t size);

/* Defaults (cwd `/`, uid and gid 0) and room for ARGC `--env`s. */
void dl_process_init(struct dl_process *p, int argc);

/* If ARGV[I] is a process option (`--cwd`, `--uid`, `--gid`, `--groups`,
 * `--env`), parses it and returns how many words it took; 0 if it is not one.
 * Bad values are usage errors (exit 2) of OP. */
int dl_process_parse(struct dl_process *p, int argc, char **argv, int i, const char *op);

/* Closes every fd above 2 except those in KEEP (any order; -1 for none). */
void dl_close_fds_except(int *keep, size_t n);

/* From the helper's credentials to the container process's, short of execve:
 * the security steps around setgroups/setgid/setuid, PR_SET_PDEATHSIG, then
 * (once GO_R, when >= 0, gives a byte or EOF) every fd above 2 closed but the
 * status fd and REPORT_W, chdir into the cwd with its getcwd check, UMASK (when
 * >= 0), signals reset, the seccomp filter. Fails with E filled. */
int dl_process_enter(const struct dl_process *p, const struct dl_security *sec, int report_w, int go_r, int umask,
		     struct dl_error *e);

/* execve the command, searching the process's PATH (not ours) when it has no
 * slash; if it cannot, Docker's message on stderr and exit 127 or 126. */
_Noreturn void dl_process_exec(const struct dl_process *p);

#endif
