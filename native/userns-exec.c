/* dockless-helper userns-exec: executes a program as root of a new user
 * namespace with the given maps (written as for a container, through
 * newuidmap/newgidmap for a rootless caller). A rootless caller reads and writes
 * files of its subordinate ids this way: a container's upper directory holds
 * them, often with modes that keep the caller out (0600, 0700). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "status.h"
#include "userns.h"
#include "util.h"

struct userns_exec {
	struct dl_userns userns;
	char **argv;
	char **envp;
	size_t n_env;
	pid_t parent;
	/* A byte on it: the child failed before its execve (and wrote the error line). */
	int failed_w;
};

static int setup_failed(struct userns_exec *x, const struct dl_error *e)
{
	dl_status_error(e);
	dl_write_all(x->failed_w, "1", 1);
	return DL_EXIT_FAILED;
}

static int exec_child(void *arg)
{
	struct userns_exec *x = arg;
	struct dl_error e;
	sigset_t none;

	/* The program dies with the helper, which its caller kills to cancel it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != x->parent) {
		dl_fail_errno(&e, "prctl", "", "prctl `PR_SET_PDEATHSIG`");
		return setup_failed(x, &e);
	}
	/* Nothing of the helper's but stdio reaches the program; the status fd stays
	 * usable until execve succeeds, for its failure. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		dl_fail_errno(&e, "exec", "", "close_range `3`");
		return setup_failed(x, &e);
	}
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(x->argv[0], x->argv, x->envp);
	dl_fail_errno(&e, "exec", x->argv[0], "execve `%s`", x->argv[0]);
	return setup_failed(x, &e);
}

int cmd_userns_exec(int argc, char **argv)
{
	static struct userns_exec x;
	struct dl_error e;
	int status_fd = 3, status, i, taken, failed[2];
	char byte;

	x.envp = calloc((size_t)argc + 1, sizeof *x.envp);
	if (x.envp == NULL)
		dl_usage("userns-exec", "out of memory");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			x.argv = &argv[i + 1];
			break;
		} else if (strcmp(argv[i], "--status-fd") == 0) {
			unsigned long v;
			if (i + 1 >= argc || dl_parse_ulong(argv[i + 1], 10, INT_MAX, &v) < 0)
				dl_usage("userns-exec", "--status-fd needs a number");
			status_fd = (int)v;
			i++;
		} else if (strcmp(argv[i], "--env") == 0) {
			if (i + 1 >= argc || strchr(argv[i + 1], '=') == NULL)
				dl_usage("userns-exec", "--env needs K=V");
			x.envp[x.n_env++] = argv[++i];
		} else if ((taken = dl_userns_parse(&x.userns, argc, argv, i, "userns-exec")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("userns-exec", "unknown option `%s`", argv[i]);
		}
	}
	if (x.argv == NULL || x.argv[0] == NULL)
		dl_usage("userns-exec", "missing program after `--`");
	if (x.argv[0][0] != '/')
		dl_usage("userns-exec", "the program `%s` must be an absolute path", x.argv[0]);
	dl_userns_check(&x.userns, "userns-exec");
	if (!dl_userns_enabled(&x.userns))
		dl_usage("userns-exec", "--userns-uid and --userns-gid are required");
	if (x.userns.idmap_root)
		dl_usage("userns-exec", "unknown option `--idmap-root`");
	dl_status_init(status_fd);
	signal(SIGPIPE, SIG_IGN);
	x.parent = getpid();
	if (pipe2(failed, O_CLOEXEC | O_NONBLOCK) < 0) {
		dl_fail_errno(&e, "userns", "", "pipe2 `exec`");
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	x.failed_w = failed[1];
	if (dl_userns_call(&x.userns, exec_child, &x, &status, &e) < 0) {
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	if (read(failed[0], &byte, 1) == 1)
		return DL_EXIT_FAILED;
	dl_status_exited(status);
	return DL_EXIT_OK;
}
