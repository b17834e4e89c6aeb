/* dockless-helper exec: a new process in a running container.
 *
 * This process (the exec shim) checks that --pid is still the container's pid 1
 * (its start time), joins the container's cgroups and then every namespace of
 * it, forks so that the pid namespace takes effect, writes `pid`, and waits for
 * its child (forwarding every signal it gets to it), then writes `exited`. The child becomes the container's process
 * through the same steps as `run`'s workload (process.c) and execs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "commands.h"
#include "error.h"
#include "init.h"
#include "logio.h"
#include "ns.h"
#include "oci.h"
#include "process.h"
#include "reexec.h"
#include "security.h"
#include "status.h"
#include "tty.h"
#include "util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct exec_config {
	const char *id;
	int status_fd;
	pid_t pid;
	unsigned long long pid_start;
	int ns_flags;
	bool userns;
	bool die_with_parent;
	pid_t parent_pid;
	struct dl_cgroups cgroups;
	struct dl_security sec;
	struct dl_process proc;
	struct dl_io io;
	bool detach;
	const char *console_socket;
};

/* The namespaces joined through /proc/PID/ns when setns by pidfd is not
 * there; the user namespace first, for the rights to join the others. */
static const struct {
	const char *name;
	int flag;
} ns_files[] = {
	{"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
	{"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"mnt", CLONE_NEWNS},
};
#define N_NS (sizeof ns_files / sizeof ns_files[0])

static unsigned long long parse_num(const char *opt, const char *s, unsigned long max)
{
	unsigned long v;

	if (dl_parse_ulong(s, 10, max, &v) < 0)
		dl_usage("exec", "%s: bad number `%s`", opt, s);
	return v;
}

static void parse_args(int argc, char **argv, struct exec_config *c)
{
	int i;

	c->status_fd = 3;
	dl_process_init(&c->proc, argc);
	dl_security_defaults(&c->sec);
	dl_io_init(&c->io);
	c->cgroups.dirs = dl_xcalloc((size_t)argc, sizeof *c->cgroups.dirs);
	c->cgroups.fds = dl_xcalloc((size_t)argc, sizeof *c->cgroups.fds);

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int taken;
#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (i + (n) >= argc)                                                               \
			dl_usage("exec", "%s needs %d argument%s", a, (n), (n) > 1 ? "s" : "");    \
	} while (0)
#define IS(name) (strcmp(a, name) == 0)
		if (IS("--")) {
			c->proc.cmd = &argv[i + 1];
			break;
		} else if (IS("--id")) {
			NEED(1);
			c->id = argv[++i];
		} else if (IS("--status-fd")) {
			NEED(1);
			c->status_fd = (int)parse_num(a, argv[++i], INT_MAX);
		} else if (IS("--pid")) {
			NEED(1);
			c->pid = (pid_t)parse_num(a, argv[++i], INT_MAX);
		} else if (IS("--pid-start")) {
			NEED(1);
			c->pid_start = parse_num(a, argv[++i], ULONG_MAX);
		} else if (IS("--ns")) {
			const char *bad;
			int flags;
			NEED(1);
			if (dl_ns_parse_list(argv[++i], &flags, &bad) < 0)
				dl_usage("exec", "--ns: unknown namespace `%s`", bad);
			c->ns_flags |= flags;
		} else if (IS("--userns")) {
			c->userns = true;
		} else if (IS("--detach")) {
			c->detach = true;
		} else if (IS("--console-socket")) {
			NEED(1);
			c->console_socket = argv[++i];
		} else if (IS("--cgroup")) {
			NEED(1);
			c->cgroups.dirs[c->cgroups.n++] = argv[++i];
		} else if (IS("--die-with-parent")) {
			NEED(1);
			c->die_with_parent = true;
			c->parent_pid = (pid_t)parse_num(a, argv[++i], INT_MAX);
		} else if ((taken = dl_process_parse(&c->proc, argc, argv, i, "exec")) > 0) {
			i += taken - 1;
		} else if ((taken = dl_security_parse(&c->sec, argc, argv, i)) > 0) {
			i += taken - 1;
		} else if ((taken = dl_io_parse(&c->io, argc, argv, i, "exec")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("exec", "unknown option `%s`", a);
		}
#undef NEED
#undef IS
	}
	if (c->proc.cmd == NULL || c->proc.cmd[0] == NULL)
		dl_usage("exec", "missing command after `--`");
	if (c->pid <= 0 || c->pid_start == 0)
		dl_usage("exec", "--pid and --pid-start are required");
	if (c->io.log_path || c->io.stdin_fifo || c->io.control_fifo || c->io.live || c->io.stdin_relay)
		dl_usage("exec", "of the io options only --tty, --tty-size and --control-fd");
	if (c->io.control_fd >= 0 && !c->io.tty)
		dl_usage("exec", "--control-fd needs --tty");
	if (c->console_socket && c->io.tty)
		dl_usage("exec", "--console-socket excludes --tty");
	if (c->detach && (c->io.tty || c->die_with_parent))
		dl_usage("exec", "--detach excludes --tty and --die-with-parent");
	c->proc.keep_parent = c->detach;
}

static _Noreturn void shim_fail(const struct dl_error *e)
{
	dl_status_error(e);
	_exit(DL_EXIT_FAILED);
}

/* Field FIELD (22: the start time in clock ticks since boot; 4: the parent pid)
 * of the stat of the process PROC is. */
static int stat_field(int proc, pid_t pid, int want, unsigned long long *out, struct dl_error *e)
{
	_cleanup_close_ int fd = openat(proc, "stat", O_RDONLY | O_CLOEXEC);
	char buf[1024], *p;
	ssize_t n;
	int field;

	if (fd < 0)
		return dl_fail_errno(e, "exec target", "", "open `/proc/%d/stat`", (int)pid);
	n = dl_read_retry(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return dl_fail(e, n < 0 ? errno : EIO, "exec target", "", "read `/proc/%d/stat`", (int)pid);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields count from its last `)`. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return dl_fail(e, EIO, "exec target", "", "parse `/proc/%d/stat`", (int)pid);
	for (field = 2; field < want && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return dl_fail(e, EIO, "exec target", "", "parse `/proc/%d/stat`", (int)pid);
	*out = strtoull(p + 1, NULL, 10);
	return 0;
}

/* Every namespace in FLAGS of the process behind PIDFD / PROC. By pidfd, all
 * at once (Linux 5.8); before that through /proc/PID/ns files, all opened
 * before the first join changes what /proc means. */
static int join_namespaces(int pidfd, int proc, pid_t pid, int flags, struct dl_error *e)
{
	int fds[N_NS];
	size_t i;
	int r = 0;

	if (pidfd >= 0) {
		if (setns(pidfd, flags) == 0)
			return 0;
		if (errno != EINVAL)
			return dl_fail_errno(e, "setns", "", "setns `pidfd %d`", (int)pid);
	}
	/* All of them first: a failed open below breaks out before the rest are set. */
	for (i = 0; i < N_NS; i++)
		fds[i] = -1;
	for (i = 0; i < N_NS; i++) {
		char path[32];

		if (!(flags & ns_files[i].flag))
			continue;
		snprintf(path, sizeof path, "ns/%s", ns_files[i].name);
		fds[i] = openat(proc, path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			r = dl_fail_errno(e, "setns", "", "open `/proc/%d/%s`", (int)pid, path);
			break;
		}
	}
	for (i = 0; r == 0 && i < N_NS; i++)
		if (fds[i] >= 0 && setns(fds[i], ns_files[i].flag) < 0)
			r = dl_fail_errno(e, "setns", "", "setns `/proc/%d/ns/%s`", (int)pid, ns_files[i].name);
	for (i = 0; i < N_NS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

/* Joining a process's namespaces takes ptrace read access to it. The init (the
 * helper, made non-dumpable from a binary executed in the host's user
 * namespace) grants that only to CAP_SYS_PTRACE in the host's: a rootless
 * caller has none. Its child, the container's command, is in the same
 * namespaces and, executed inside the container's user namespace, grants it
 * to that namespace's owner, the caller. So on EPERM the exec goes through a
 * child of pid 1: one whose parent is pid 1 while this process holds pid 1,
 * which is the container's (an orphan is reparented to it only from inside). */
static int join_through_child(int proc, pid_t pid, int flags, struct dl_error *e)
{
	_cleanup_close_ int list = -1, child_fd = -1, child_proc = -1;
	char path[64], buf[64];
	unsigned long long ppid = 0;
	pid_t child;
	ssize_t n;

	snprintf(path, sizeof path, "task/%d/children", (int)pid);
	list = openat(proc, path, O_RDONLY | O_CLOEXEC);
	if (list < 0)
		return dl_fail_errno(e, "setns", "", "open `/proc/%d/%s`", (int)pid, path);
	n = dl_read_retry(list, buf, sizeof buf - 1);
	if (n <= 0)
		return dl_fail(e, EPERM, "setns", "", "setns `pidfd %d`: no child to join through", (int)pid);
	buf[n] = '\0';
	child = (pid_t)strtol(buf, NULL, 10);
	if (child <= 0)
		return dl_fail(e, EPERM, "setns", "", "setns `pidfd %d`: no child to join through", (int)pid);
	child_fd = (int)syscall(SYS_pidfd_open, child, 0);
	snprintf(path, sizeof path, "/proc/%d", (int)child);
	child_proc = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (child_fd < 0 || child_proc < 0)
		return dl_fail_errno(e, "setns", "", "open `%s`", path);
	if (stat_field(child_proc, child, 4, &ppid, e) < 0)
		return -1;
	if (ppid != (unsigned long long)pid)
		return dl_fail(e, ESRCH, "exec target", "", "pid `%d`: not a child of the container's pid 1", (int)child);
	/* `started` is written just before the command's execve: until that execve the
	 * child is still the init's non-dumpable fork, and an exec that follows a run at
	 * once meets it so. A few milliseconds, not more. */
	for (int tries = 0;; tries++) {
		if (join_namespaces(child_fd, child_proc, child, flags, e) == 0)
			return 0;
		if (e->err != EPERM || tries == 100)
			return -1;
		usleep(1000);
	}
}

/* --detach: the report pipe's end (its close-on-exec at the child's execve) is
 * success, and the child is left to run; a report is failure (every failing step writes one). */
static int wait_exec(pid_t child, int report_r)
{
	struct pollfd p = {.fd = report_r, .events = POLLIN};
	int kind;

	for (;;) {
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		ssize_t n = dl_read_retry(report_r, &kind, sizeof kind);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n == 0)
			return DL_EXIT_OK;
		break;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return DL_EXIT_FAILED;
}

int cmd_exec(int argc, char **argv)
{
	static struct exec_config c;
	struct dl_error e;
	_cleanup_close_ int pidfd = -1, proc = -1, master = -1, slave = -1, console = -1;
	int sync_pipe[2], report_pipe[2];
	unsigned long long started = 0;
	char path[32];
	int status, failed = 0, kind;
	pid_t child;
	sigset_t all;

	parse_args(argc, argv, &c);
	dl_status_init(c.status_fd);
	/* The exec'd process descends from this one without an exec: from a sealed
	 * copy, /proc/PID/exe of either leads to nothing on the host. */
	if (dl_reexec_sealed(dl_main_argv, &e) < 0)
		shim_fail(&e);
	signal(SIGPIPE, SIG_IGN);
	/* Nothing in the container may open this process's /proc files (exe, fd, mem). */
	prctl(PR_SET_DUMPABLE, 0);
	if (c.die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c.parent_pid) {
			dl_fail(&e, 0, "die-with-parent", "", "getppid `%d`: the parent is gone", (int)c.parent_pid);
			shim_fail(&e);
		}
	}
	if (dl_security_load(&c.sec, &e) < 0)
		shim_fail(&e);
	/* A host path: connected before any namespace changes how it resolves. */
	if (c.console_socket && dl_console_connect(c.console_socket, &console, &e) < 0)
		shim_fail(&e);

	/* Both hold the process, not its number: once its start time matches, a
	 * pid reused later leads to nothing. */
	pidfd = (int)syscall(SYS_pidfd_open, c.pid, 0);
	snprintf(path, sizeof path, "/proc/%d", (int)c.pid);
	proc = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0) {
		dl_fail_errno(&e, "exec target", "", "open `%s`", path);
		if (e.err == ENOENT)
			e.err = ESRCH;
		shim_fail(&e);
	}
	if (stat_field(proc, c.pid, 22, &started, &e) < 0)
		shim_fail(&e);
	if (started != c.pid_start) {
		dl_fail(&e, ESRCH, "exec target", "", "pid `%d`: not the container's process (started at %llu, not %llu)",
			(int)c.pid, started, c.pid_start);
		shim_fail(&e);
	}
	/* Before the cgroup namespace: moving in from outside its root is refused from inside it. */
	if (dl_cgroups_open(&c.cgroups, &e) < 0 || dl_cgroups_join(&c.cgroups, false, &e) < 0)
		shim_fail(&e);
	if (join_namespaces(pidfd, proc, c.pid, c.ns_flags | (c.userns ? CLONE_NEWUSER : 0), &e) < 0 &&
	    ((e.err != EPERM && e.err != EACCES) || !c.userns ||
	     join_through_child(proc, c.pid, c.ns_flags | CLONE_NEWUSER, &e) < 0))
		shim_fail(&e);
	close(dl_steal_fd(&pidfd));
	close(dl_steal_fd(&proc));
	/* In the container's mount namespace now: its devpts. The slave is open before
	 * the io process polls the master, which would otherwise hang up at once. */
	if (c.io.tty && (dl_tty_open(c.io.rows, c.io.cols, &master, &e) < 0 || dl_tty_peer(master, &slave, &e) < 0))
		shim_fail(&e);
	if (console >= 0 && dl_console_send(dl_steal_fd(&console), c.io.rows, c.io.cols, &slave, &e) < 0)
		shim_fail(&e);

	if (pipe2(sync_pipe, O_CLOEXEC) < 0 || pipe2(report_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		dl_fail_errno(&e, "pipe", "", "pipe2 `sync`");
		shim_fail(&e);
	}
	/* Blocked before the fork, so that none meant for the child is lost: the
	 * shim forwards them to its child, which it alone reaps, so a signal never
	 * reaches a process that reused the pid; the child unblocks them before it execs. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	child = fork();
	if (child < 0) {
		dl_fail_errno(&e, "fork", "", "fork `exec`");
		shim_fail(&e);
	}
	if (child == 0) {
		close(sync_pipe[1]);
		close(report_pipe[0]);
		if (!c.detach)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Its lines come after the shim's `pid`; EOF: the shim is gone. */
		if (dl_read_retry(sync_pipe[0], &kind, 1) != 1)
			_exit(DL_EXIT_FAILED);
		close(sync_pipe[0]);
		if (slave >= 0) {
			close(dl_steal_fd(&master));
			if (dl_tty_enter(dl_steal_fd(&slave), &e) < 0) {
				kind = 1;
				dl_status_error(&e);
				dl_write_all(report_pipe[1], &kind, sizeof kind);
				_exit(DL_EXIT_FAILED);
			}
		}
		/* As the container's process gets one of its own at start: no key of the caller's session. */
		if (dl_security_keyring(&c.sec, &e) < 0 ||
		    dl_process_enter(&c.proc, &c.sec, report_pipe[1], -1, -1, &e) < 0) {
			kind = 1;
			dl_status_error(&e);
			dl_write_all(report_pipe[1], &kind, sizeof kind);
			_exit(DL_EXIT_FAILED);
		}
		dl_status_simple("started");
		dl_process_exec(&c.proc);
	}
	close(sync_pipe[0]);
	close(report_pipe[1]);
	if (master >= 0) {
		if (dl_io_start_exec(&c.io, master, &e) < 0) {
			kill(child, SIGKILL);
			shim_fail(&e);
		}
		close(dl_steal_fd(&master));
		close(dl_steal_fd(&slave));
	}
	dl_status_pid(child);
	dl_write_all(sync_pipe[1], "1", 1);
	close(sync_pipe[1]);
	if (slave >= 0)
		close(dl_steal_fd(&slave));
	if (c.detach)
		return wait_exec(child, report_pipe[0]);

	status = dl_init_loop(child, NULL);
	dl_io_finish(&c.io);
	while (dl_read_retry(report_pipe[0], &kind, sizeof kind) == (ssize_t)sizeof kind)
		failed = 1;
	if (failed)
		return DL_EXIT_FAILED;
	dl_status_exited(status);
	return DL_EXIT_OK;
}
