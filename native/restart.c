#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "restart.h"
#include "util.h"

/* Docker's backoff: 100 ms, doubled after each restart up to a minute, back to
 * 100 ms once a run lasted 10 s. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 60000
#define BACKOFF_RESET_MS 10000

enum { REPORT_DIED = 1, REPORT_RESTARTED = 2 };

struct restart_report {
	int32_t kind;
	int32_t value; /* DIED: the wait status; RESTARTED: the restart count */
};

int dl_restart_parse(struct dl_restart *r, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];
	unsigned long v;

	if (strcmp(a, "--restart") != 0 && strcmp(a, "--restart-max") != 0 && strcmp(a, "--restart-file") != 0)
		return 0;
	if (i + 1 >= argc)
		dl_usage(op, "%s needs 1 argument", a);
	if (strcmp(a, "--restart-file") == 0) {
		r->file = argv[i + 1];
	} else if (strcmp(a, "--restart-max") == 0) {
		if (dl_parse_ulong(argv[i + 1], 10, INT32_MAX, &v) < 0)
			dl_usage(op, "--restart-max: bad number `%s`", argv[i + 1]);
		r->max = v;
	} else if (strcmp(argv[i + 1], "no") == 0) {
		r->policy = DL_RESTART_NO;
	} else if (strcmp(argv[i + 1], "on-failure") == 0) {
		r->policy = DL_RESTART_ON_FAILURE;
	} else if (strcmp(argv[i + 1], "always") == 0) {
		r->policy = DL_RESTART_ALWAYS;
	} else if (strcmp(argv[i + 1], "unless-stopped") == 0) {
		r->policy = DL_RESTART_UNLESS_STOPPED;
	} else {
		dl_usage(op, "--restart: unknown policy `%s` (no, on-failure, always or unless-stopped)", argv[i + 1]);
	}
	return 2;
}

int dl_restart_open(struct dl_restart *r, struct dl_error *e)
{
	int p[2];

	r->pipe_r = r->pipe_w = -1;
	if (r->policy == DL_RESTART_NO)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return dl_fail_errno(e, "pipe", "", "pipe2 `restart`");
	r->pipe_r = p[0];
	r->pipe_w = p[1];
	return 0;
}

static long long now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reap_all(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid > 0 || (pid < 0 && errno == EINTR))
			continue;
		return;
	}
}

/* The backoff, still the container's init: reaps orphans; true when a stop signal came. */
static bool sleep_backoff(long long ms)
{
	long long end = now_ms(CLOCK_MONOTONIC) + ms;
	sigset_t all;

	sigfillset(&all);
	for (;;) {
		long long left = end - now_ms(CLOCK_MONOTONIC);
		struct timespec ts;
		int sig;

		if (left <= 0)
			return false;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		sig = sigtimedwait(&all, NULL, &ts);
		if (sig < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			/* A profile that denies the wait: a plain sleep, without stops. */
			nanosleep(&ts, NULL);
			return false;
		}
		if (sig == SIGCHLD)
			reap_all();
		else if (dl_init_is_stop_signal(sig))
			return true;
	}
}

static bool should_restart(const struct dl_restart *r, int status, bool stopped, unsigned long count)
{
	int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

	if (stopped)
		return false;
	switch (r->policy) {
	case DL_RESTART_ALWAYS:
	case DL_RESTART_UNLESS_STOPPED:
		return true;
	case DL_RESTART_ON_FAILURE:
		return code != 0 && (r->max == 0 || count < r->max);
	default:
		return false;
	}
}

static void report(const struct dl_restart *r, int kind, int value)
{
	struct restart_report rep = {.kind = kind, .value = value};

	if (r->pipe_w >= 0)
		dl_write_all(r->pipe_w, &rep, sizeof rep);
}

int dl_restart_loop(struct dl_restart *r, pid_t first, pid_t (*respawn)(void *), void *arg)
{
	long long delay = 0;
	unsigned long count = 0;
	pid_t pid = first;

	for (;;) {
		long long started = now_ms(CLOCK_MONOTONIC);
		bool stopped = false;
		int status = dl_init_loop(pid, &stopped);

		if (!should_restart(r, status, stopped, count))
			return status;
		report(r, REPORT_DIED, status);
		/* A fresh process tree, as a container that stops and starts again
		 * has: what the workload left (and execs) go too. Never in a pid
		 * namespace this container only joined. */
		if (getpid() == 1) {
			kill(-1, SIGKILL);
			for (;;) {
				pid_t gone = waitpid(-1, NULL, 0);
				if (gone < 0 && errno != EINTR)
					break;
			}
		}
		if (now_ms(CLOCK_MONOTONIC) - started >= BACKOFF_RESET_MS)
			delay = 0;
		delay = delay == 0 ? BACKOFF_FIRST_MS : delay * 2;
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
		if (sleep_backoff(delay))
			return status;
		pid = respawn(arg);
		if (pid < 0)
			return status;
		count++;
		report(r, REPORT_RESTARTED, (int)count);
	}
}

/* The OOM kills counted by the container's memory cgroup (the `oom_kill` line
 * of v2 memory.events or v1 memory.oom_control): one file, named by the
 * caller, which knows the memory hierarchy; trying both names in every
 * hierarchy cost a dozen failed cgroupfs lookups before the exit was reported. */
static long oom_kills(const struct dl_shim_watch *w)
{
	char buf[1024];
	const char *at;
	ssize_t n;
	int fd;

	if (w->oom_file == NULL)
		return 0;
	fd = open(w->oom_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = dl_read_retry(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	at = strstr(buf, "oom_kill ");
	if (at != NULL && (at == buf || at[-1] == '\n'))
		return strtol(at + 9, NULL, 10);
	return 0;
}

static void exit_attrs(char *buf, size_t size, int status)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "\"exitCode\":%d,\"signal\":%d", 128 + WTERMSIG(status), WTERMSIG(status));
	else
		snprintf(buf, size, "\"exitCode\":%d", WEXITSTATUS(status));
}

static void record_death(struct dl_shim_watch *w, int status)
{
	char attrs[96];
	long oom = oom_kills(w);

	if (oom > w->oom_seen) {
		w->oom_seen = oom;
		dl_events_write(w->events, "oom", "");
	}
	exit_attrs(attrs, sizeof attrs, status);
	dl_events_write(w->events, "die", attrs);
}

static void write_restart_file(const struct dl_restart *r, unsigned long count, bool restarting, int status)
{
	char buf[256];
	int n;

	if (r->file == NULL)
		return;
	n = snprintf(buf, sizeof buf, "{\"restartCount\":%lu,\"restarting\":%s,\"time\":%lld", count,
		     restarting ? "true" : "false", now_ms(CLOCK_REALTIME));
	if (restarting) {
		char attrs[96];
		exit_attrs(attrs, sizeof attrs, status);
		n += snprintf(buf + n, sizeof buf - (size_t)n, ",%s", attrs);
	}
	n += snprintf(buf + n, sizeof buf - (size_t)n, "}\n");
	dl_write_file_replace(r->file, buf, (size_t)n);
}

static void *watch_main(void *arg)
{
	struct dl_shim_watch *w = arg;
	struct restart_report rep;
	unsigned long count = 0;

	while (dl_read_retry(w->restart->pipe_r, &rep, sizeof rep) == (ssize_t)sizeof rep) {
		if (rep.kind == REPORT_DIED) {
			record_death(w, rep.value);
			write_restart_file(w->restart, count, true, rep.value);
		} else if (rep.kind == REPORT_RESTARTED) {
			char attrs[48];
			count = (unsigned long)rep.value;
			write_restart_file(w->restart, count, false, 0);
			snprintf(attrs, sizeof attrs, "\"restartCount\":%lu", count);
			dl_events_write(w->events, "restart", attrs);
		}
	}
	return NULL;
}

void dl_shim_watch_start(struct dl_shim_watch *w)
{
	if (w->restart->pipe_w >= 0) {
		close(w->restart->pipe_w);
		w->restart->pipe_w = -1;
	}
	if (w->restart->pipe_r < 0)
		return;
	/* Without the thread, restarts still happen; only their record is missing. */
	w->running = pthread_create(&w->thread, NULL, watch_main, w) == 0;
}

void dl_shim_watch_finish(struct dl_shim_watch *w, int wait_status)
{
	if (w->running)
		pthread_join(w->thread, NULL);
	w->running = false;
	record_death(w, wait_status);
}
