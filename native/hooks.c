/* createContainer hooks, run by pid 1 (hooks.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hooks.h"
#include "process.h"
#include "status.h"
#include "util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* A state larger than this is not a runtime-spec state. */
#define STATE_MAX (1 << 20)

void dl_hooks_init(struct dl_hooks *h, int argc)
{
	h->fd = -1;
	h->cap = argc + 1;
	h->list = dl_xcalloc((size_t)h->cap, sizeof *h->list);
	h->n = 0;
}

static struct dl_hook *last(struct dl_hooks *h, const char *opt, const char *op)
{
	if (h->n == 0)
		dl_usage(op, "%s needs a --hook before it", opt);
	return &h->list[h->n - 1];
}

int dl_hooks_parse(struct dl_hooks *h, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];
	unsigned long v;

	if (strcmp(a, "--hooks-fd") == 0) {
		if (i + 1 >= argc || dl_parse_ulong(argv[i + 1], 10, INT_MAX, &v) < 0 || v < 3)
			dl_usage(op, "--hooks-fd needs a descriptor number above 2");
		h->fd = (int)v;
		return 2;
	}
	if (strcmp(a, "--hook") == 0) {
		struct dl_hook *k = &h->list[h->n++];
		if (i + 2 >= argc || argv[i + 1][0] != '/')
			dl_usage(op, "--hook needs an absolute path and a timeout");
		if (dl_parse_ulong(argv[i + 2], 10, UINT_MAX / 1000, &v) < 0)
			dl_usage(op, "--hook: bad timeout `%s`", argv[i + 2]);
		k->path = argv[i + 1];
		k->timeout = (unsigned int)v;
		k->argv = dl_xcalloc((size_t)h->cap, sizeof *k->argv);
		k->env = dl_xcalloc((size_t)h->cap, sizeof *k->env);
		return 3;
	}
	if (strcmp(a, "--hook-arg") == 0 || strcmp(a, "--hook-env") == 0) {
		struct dl_hook *k = last(h, a, op);
		if (i + 1 >= argc)
			dl_usage(op, "%s needs 1 argument", a);
		if (a[7] == 'a')
			k->argv[k->argc++] = argv[i + 1];
		else
			k->env[k->envc++] = argv[i + 1];
		return 2;
	}
	return 0;
}

static _Noreturn void hook_child(const struct dl_hook *k, int in, int err_w)
{
	sigset_t none;
	int saved;

	if (dup2(in, STDIN_FILENO) < 0)
		goto fail;
	dl_close_fds_except((int[]){err_w}, 1);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(k->path, (char *const *)(k->argc > 0 ? k->argv : (const char *[]){k->path, NULL}), (char *const *)k->env);
fail:
	saved = errno;
	dl_write_all(err_w, &saved, sizeof saved);
	_exit(127);
}

/* Writes what is left of the state to IN (non-blocking) while it waits: a hook
 * that does not read its stdin must not hold pid 1 past its timeout on a state
 * larger than the pipe. */
static int wait_hook(pid_t pid, unsigned int timeout, int *in, const char *state, size_t len, int *status,
		     int *timed_out)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct timespec start, now;
	size_t sent = 0;

	*timed_out = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = *in, .events = POLLOUT}};
		long left = -1;

		while (*in >= 0 && sent < len) {
			ssize_t n = write(*in, state + sent, len - sent);
			if (n > 0) {
				sent += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			/* EAGAIN: the hook has not read yet; EPIPE: it will not, which is no failure of ours. */
			if (n < 0 && errno == EAGAIN)
				break;
			sent = len;
		}
		if (*in >= 0 && sent == len) {
			close(*in);
			*in = -1;
			p[1].fd = -1;
		}
		if (timeout > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = (long)timeout * 1000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0) {
				*timed_out = 1;
				kill(pid, SIGKILL);
				break;
			}
		}
		if (pidfd < 0) {
			/* Without a pidfd (a kernel before 5.3), a 10 ms tick. */
			if (waitpid(pid, status, WNOHANG) == pid)
				return 0;
			if (left < 0 || left > 10)
				left = 10;
		} else if (*in < 0 && timeout == 0) {
			break;
		}
		int ready = poll(p, 2, (int)left);
		if (ready > 0 && (p[0].revents & POLLIN))
			break;
	}
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int run_one(const struct dl_hook *k, size_t i, const char *state, size_t len, struct dl_error *e)
{
	_cleanup_close_ int in_r = -1, in_w = -1, err_r = -1, err_w = -1;
	int fds[2], status = 0, timed_out, child_errno;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return dl_fail_errno(e, "hook", k->path, "pipe2 `hook`");
	in_r = fds[0];
	in_w = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return dl_fail_errno(e, "hook", k->path, "pipe2 `hook`");
	err_r = fds[0];
	err_w = fds[1];
	pid = fork();
	if (pid < 0)
		return dl_fail_errno(e, "hook", k->path, "fork `%s`", k->path);
	if (pid == 0)
		hook_child(k, in_r, err_w);
	close(in_r);
	in_r = -1;
	close(err_w);
	err_w = -1;
	if (dl_read_retry(err_r, &child_errno, sizeof child_errno) == (ssize_t)sizeof child_errno) {
		waitpid(pid, NULL, 0);
		return dl_fail(e, child_errno, "hook", k->path, "hooks.createContainer[%zu]: execve `%s`", i, k->path);
	}
	if (fcntl(in_w, F_SETFL, O_NONBLOCK) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return dl_fail_errno(e, "hook", k->path, "fcntl `hook`");
	}
	if (wait_hook(pid, k->timeout, &in_w, state, len, &status, &timed_out) < 0)
		return dl_fail_errno(e, "hook", k->path, "waitpid `%s`", k->path);
	if (timed_out)
		return dl_fail(e, ETIMEDOUT, "hook", k->path, "hooks.createContainer[%zu]: `%s` failed: killed after its timeout of %u s",
			       i, k->path, k->timeout);
	if (WIFSIGNALED(status))
		return dl_fail(e, 0, "hook", k->path, "hooks.createContainer[%zu]: `%s` failed: killed by signal %d", i, k->path,
			       WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return dl_fail(e, 0, "hook", k->path, "hooks.createContainer[%zu]: `%s` failed: exit code %d", i, k->path,
			       WEXITSTATUS(status));
	return 0;
}

int dl_hooks_run(struct dl_hooks *h, struct dl_error *e)
{
	_cleanup_free_ char *state = NULL;
	size_t len = 0;

	if (h->fd < 0)
		return 0;
	dl_status_simple("hooks");
	/* EOF without a state: the caller's own hooks failed, or it is gone. */
	if (dl_read_to_end(h->fd, &state, &len) < 0)
		return dl_fail_errno(e, "hook", "", "read `hooks-fd`");
	if (len == 0 || len > STATE_MAX)
		return dl_fail(e, len == 0 ? EPIPE : EFBIG, "hook", "", "read `hooks-fd`");
	close(h->fd);
	h->fd = -1;
	for (size_t i = 0; i < h->n; i++)
		if (run_one(&h->list[i], i, state, len, e) < 0)
			return -1;
	return 0;
}
