/* dockless-helper pause: holds a pod's namespaces.
 *
 * This process (the keeper) clones the holder into the new namespaces (and, with
 * maps, a new user namespace that owns them), writes the maps, waits until the
 * holder has set them up, writes `pid` with the holder's host pid and then waits
 * for it. The holder does nothing but reap: with a pid namespace it is that
 * namespace's init, and orphans of the pod's members become its children. Its
 * namespaces live as long as it does; containers join them through /proc/PID/ns.
 * With --join-userns the keeper first joins an existing user namespace (a
 * rootless user's network namespace's), which then owns the new namespaces. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "ns.h"
#include "process.h"
#include "reexec.h"
#include "status.h"
#include "userns.h"
#include "util.h"

/* The namespaces a pod may hold: a mount or cgroup namespace is each container's own. */
#define POD_NS (CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)

struct pause_config {
	const char *id;
	int status_fd;
	int ns_flags;
	const char *hostname;
	bool die_with_parent;
	pid_t parent_pid;
	struct dl_userns userns;
	const char *join_userns;
};

struct holder_ctx {
	const struct pause_config *c;
	int sync_r, sync_w;   /* keeper → holder: the maps are written */
	int ready_r, ready_w; /* holder → keeper: set up (a byte), or failed (EOF after an error line) */
};

static char holder_stack[1 << 16] __attribute__((aligned(64)));

static void parse_args(int argc, char **argv, struct pause_config *c)
{
	int i;

	c->status_fd = 3;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		unsigned long v;
		int taken;
#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (i + (n) >= argc)                                                               \
			dl_usage("pause", "%s needs %d argument%s", a, (n), (n) > 1 ? "s" : "");   \
	} while (0)
#define IS(name) (strcmp(a, name) == 0)
		if (IS("--id")) {
			NEED(1);
			c->id = argv[++i];
		} else if (IS("--status-fd")) {
			NEED(1);
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &v) < 0)
				dl_usage("pause", "--status-fd: bad number `%s`", argv[i]);
			c->status_fd = (int)v;
		} else if (IS("--ns")) {
			const char *bad;
			int flags;
			NEED(1);
			if (dl_ns_parse_list(argv[++i], &flags, &bad) < 0)
				dl_usage("pause", "--ns: unknown namespace `%s`", bad);
			if (flags & ~POD_NS)
				dl_usage("pause", "--ns: a pod holds only net, ipc, uts and pid namespaces");
			c->ns_flags |= flags;
		} else if (IS("--hostname")) {
			NEED(1);
			c->hostname = argv[++i];
		} else if (IS("--die-with-parent")) {
			NEED(1);
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &v) < 0)
				dl_usage("pause", "--die-with-parent: bad number `%s`", argv[i]);
			c->die_with_parent = true;
			c->parent_pid = (pid_t)v;
		} else if (IS("--join-userns")) {
			NEED(1);
			c->join_userns = argv[++i];
		} else if ((taken = dl_userns_parse(&c->userns, argc, argv, i, "pause")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("pause", "unknown option `%s`", a);
		}
#undef NEED
#undef IS
	}
	if (c->ns_flags == 0)
		dl_usage("pause", "--ns: no namespace to hold");
	if (c->hostname && !(c->ns_flags & CLONE_NEWUTS))
		dl_usage("pause", "--hostname needs a uts namespace");
	dl_userns_check(&c->userns, "pause");
	if (c->userns.idmap_root)
		dl_usage("pause", "--idmap-root is for run");
	if (c->join_userns && dl_userns_enabled(&c->userns))
		dl_usage("pause", "--join-userns and --userns-uid exclude each other");
}

static _Noreturn void holder_fail(const struct dl_error *e)
{
	dl_status_error(e);
	_exit(DL_EXIT_FAILED);
}

static int holder_main(void *arg)
{
	struct holder_ctx *x = arg;
	const struct pause_config *c = x->c;
	struct dl_error e;
	sigset_t all;

	close(x->sync_w);
	close(x->ready_r);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dl_userns_enabled(&c->userns)) {
		char byte;
		/* EOF: the keeper failed to write the maps (and says so) or is gone. */
		if (dl_read_retry(x->sync_r, &byte, 1) != 1)
			_exit(DL_EXIT_FAILED);
		if (dl_userns_become_root(&e) < 0)
			holder_fail(&e);
		/* A change of credentials clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Its owner, who holds no capability on the host, opens the namespace files of
		 * a dumpable holder only: it has nothing the owner has not (its
		 * capabilities are the pod's user namespace's, its exe the sealed copy). */
		prctl(PR_SET_DUMPABLE, 1);
	} else if (c->join_userns) {
		/* As above: its owner opens its namespace files. */
		prctl(PR_SET_DUMPABLE, 1);
	} else {
		/* Root: with a pid namespace the members see the holder as their pid 1, and
		 * nothing of theirs may open its /proc/1/exe, fd or mem (runc's CVE-2019-5736). */
		prctl(PR_SET_DUMPABLE, 0);
	}
	close(x->sync_r);
	if ((c->ns_flags & CLONE_NEWNET) && dl_ns_loopback_up(&e) < 0)
		holder_fail(&e);
	if (c->hostname && dl_ns_sethostname(c->hostname, &e) < 0)
		holder_fail(&e);
	/* No directory of the caller's stays busy for the pod's lifetime. */
	if (chdir("/") < 0) {
		dl_fail_errno(&e, "chdir", "/", "chdir `/`");
		holder_fail(&e);
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	dl_write_all(x->ready_w, "1", 1);
	/* Nothing of the caller's is held open, and the keeper's status pipe ends with the keeper. */
	dl_close_fds_except(NULL, 0);
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);

		if (sig < 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			_exit(0);
		if (sig != SIGCHLD)
			continue;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

int cmd_pause(int argc, char **argv)
{
	static struct pause_config c;
	struct holder_ctx x = {.c = &c};
	struct dl_error e;
	int sync_pipe[2], ready_pipe[2];
	char byte;
	int status;
	pid_t pid;

	parse_args(argc, argv, &c);
	dl_status_init(c.status_fd);
	/* With a pid namespace the holder is the members' pid 1: its /proc/1/exe must lead to no host file. */
	if (dl_reexec_sealed(dl_main_argv, &e) < 0)
		holder_fail(&e);
	if (c.die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c.parent_pid) {
			dl_fail(&e, 0, "die-with-parent", "", "getppid `%d`: the parent is gone", (int)c.parent_pid);
			holder_fail(&e);
		}
	}
	if (c.join_userns) {
		int fd = open(c.join_userns, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			dl_fail_errno(&e, "userns", c.join_userns, "open `%s`", c.join_userns);
			holder_fail(&e);
		}
		if (setns(fd, CLONE_NEWUSER) < 0) {
			dl_fail_errno(&e, "userns", c.join_userns, "setns `%s`", c.join_userns);
			holder_fail(&e);
		}
		close(fd);
	}
	if (pipe2(sync_pipe, O_CLOEXEC) < 0 || pipe2(ready_pipe, O_CLOEXEC) < 0) {
		dl_fail_errno(&e, "pipe", "", "pipe2 `sync`");
		holder_fail(&e);
	}
	x.sync_r = sync_pipe[0];
	x.sync_w = sync_pipe[1];
	x.ready_r = ready_pipe[0];
	x.ready_w = ready_pipe[1];
	pid = clone(holder_main, holder_stack + sizeof holder_stack,
		    c.ns_flags | (dl_userns_enabled(&c.userns) ? CLONE_NEWUSER : 0) | SIGCHLD, &x);
	if (pid < 0) {
		dl_fail_errno(&e, "clone", "", "clone `holder`");
		holder_fail(&e);
	}
	close(x.sync_r);
	close(x.ready_w);
	if (dl_userns_enabled(&c.userns)) {
		if (dl_userns_write_maps(&c.userns, pid, &e) < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			holder_fail(&e);
		}
		dl_write_all(x.sync_w, "1", 1);
	}
	close(x.sync_w);
	if (dl_read_retry(x.ready_r, &byte, 1) != 1) {
		/* The holder wrote its error line. */
		waitpid(pid, NULL, 0);
		return DL_EXIT_FAILED;
	}
	close(x.ready_r);
	dl_status_pid(pid);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			dl_fail_errno(&e, "waitpid", "", "waitpid `%d`", (int)pid);
			holder_fail(&e);
		}
	}
	dl_status_exited(status);
	return DL_EXIT_OK;
}
