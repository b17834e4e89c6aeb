/* `start`, `kill`, `delete`, `pause`, `resume` on the state Node's `create`
 * left (src/oci-runtime/lifecycle.ts does the same, and is where anything
 * unusual is handed: hooks, a cgroup that is not empty, a frozen container). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"

/* One positional argument (the id) and the flags in FLAGS (each "-x\0--xx"); returns the id or NULL. */
static const char *parse_args(int argc, char **argv, const char *short_flag, const char *long_flag, bool *flag,
			      const char **second)
{
	const char *id = NULL;
	if (second != NULL)
		*second = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (short_flag != NULL && (strcmp(a, short_flag) == 0 || strcmp(a, long_flag) == 0)) {
			*flag = true;
		} else if (a[0] == '-' && a[1] != '\0') {
			return NULL;
		} else if (id == NULL) {
			id = a;
		} else if (second != NULL && *second == NULL) {
			*second = a;
		} else {
			return NULL;
		}
	}
	return id;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const char *state_dir(const struct dlrt_globals *g, const char *id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", g->root, id);
	return buf;
}

int dlrt_cmd_start(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	const char *id = parse_args(argc, argv, NULL, NULL, NULL, NULL);
	if (id == NULL)
		return DLRT_DEFER;
	struct dlrt_record r;
	int rc = dlrt_load(g, id, &r, e);
	if (rc < 0)
		return rc;
	enum dlrt_status s = dlrt_status_of(&r, g->root);
	bool start_hooks = r.start_hooks;
	dlrt_free_record(&r);
	if (s != DLRT_CREATED)
		return dl_fail(e, 0, "start", id, "start container %s: the container is %s, not created", id,
			       dlrt_status_name(s));
	if (start_hooks)
		return DLRT_DEFER;
	char dir[4096], fifo[4200];
	snprintf(fifo, sizeof(fifo), "%s/exec.fifo", state_dir(g, id, dir, sizeof(dir)));
	/* O_NONBLOCK: pid 1 holds the FIFO open for reading, so this opens at once; if it died meanwhile, ENXIO. */
	_cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		return DLRT_DEFER;
	if (unlink(fifo) < 0 && errno != ENOENT)
		return DLRT_DEFER;
	return 0;
}

static const struct {
	const char *name;
	int number;
} SIGNALS[] = {
	{ "HUP", SIGHUP },	 { "INT", SIGINT },	  { "QUIT", SIGQUIT },	   { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },	 { "ABRT", SIGABRT },	  { "IOT", SIGIOT },	   { "BUS", SIGBUS },
	{ "FPE", SIGFPE },	 { "KILL", SIGKILL },	  { "USR1", SIGUSR1 },	   { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },	 { "PIPE", SIGPIPE },	  { "ALRM", SIGALRM },	   { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD },	 { "STKFLT", SIGSTKFLT }, { "CONT", SIGCONT },	   { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },	 { "TTIN", SIGTTIN },	  { "TTOU", SIGTTOU },	   { "URG", SIGURG },
	{ "XCPU", SIGXCPU },	 { "XFSZ", SIGXFSZ },	  { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
	{ "WINCH", SIGWINCH },	 { "IO", SIGIO },	  { "POLL", SIGPOLL },	   { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

/* The signal NAME (with or without SIG, any case) or number; -1 for one Node would refuse or word differently. */
static int parse_signal(const char *value)
{
	if (*value >= '0' && *value <= '9') {
		char *end;
		long n = strtol(value, &end, 10);
		return *end == '\0' && n >= 0 && n <= 64 ? (int)n : -1;
	}
	char up[32];
	size_t n = strlen(value);
	if (n >= sizeof(up))
		return -1;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)((value[i] >= 'a' && value[i] <= 'z') ? value[i] - 32 : value[i]);
	const char *name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
	for (size_t i = 0; i < sizeof(SIGNALS) / sizeof(SIGNALS[0]); i++)
		if (strcmp(name, SIGNALS[i].name) == 0)
			return SIGNALS[i].number;
	return -1;
}

int dlrt_cmd_kill(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	bool all = false;
	const char *signal_arg;
	const char *id = parse_args(argc, argv, "-a", "--all", &all, &signal_arg);
	if (id == NULL)
		return DLRT_DEFER;
	int sig = parse_signal(signal_arg ? signal_arg : "SIGTERM");
	if (sig < 0)
		return DLRT_DEFER;
	struct dlrt_record r;
	int rc = dlrt_load(g, id, &r, e);
	if (rc < 0)
		return rc;
	enum dlrt_status s = dlrt_status_of(&r, g->root);
	if (s == DLRT_STOPPED || s == DLRT_CREATING) {
		dlrt_free_record(&r);
		return dl_fail(e, 0, "kill", id, "kill container %s: the container is %s", id, dlrt_status_name(s));
	}
	if (all) {
		_cleanup_free_ long *pids = NULL;
		long n = dlrt_cgroup_pids(&r, &pids);
		if (n < 0)
			kill((pid_t)r.pid, sig);
		for (long i = 0; i < n; i++)
			kill((pid_t)pids[i], sig);
	} else if (kill((pid_t)r.pid, sig) < 0) {
		rc = DLRT_DEFER;
	}
	dlrt_free_record(&r);
	return rc;
}

/* Removes the tree at NAME under DIRFD without following symlinks. */
static int remove_tree(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (remove_tree(dirfd(d), de->d_name) < 0)
			rc = -1;
	}
	closedir(d);
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int dlrt_cmd_delete(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	bool force = false;
	const char *id = parse_args(argc, argv, "-f", "--force", &force, NULL);
	if (id == NULL || !dlrt_valid_id(id))
		return DLRT_DEFER;
	struct dlrt_record r;
	int rc = dlrt_read_record(g->root, id, &r);
	/* runc's rule: forcing the deletion of a container that is gone already is no error. */
	if (rc == -ENOENT && force)
		return 0;
	if (rc < 0)
		return dlrt_load(g, id, &r, e);
	enum dlrt_status s = dlrt_status_of(&r, g->root);
	if ((s == DLRT_RUNNING || s == DLRT_PAUSED) && !force) {
		dlrt_free_record(&r);
		return dl_fail(e, 0, "delete", id, "delete container %s: the container is %s; stop it first or use --force",
			       id, dlrt_status_name(s));
	}
	/* Node thaws a frozen cgroup before it kills, and runs the poststop hooks. */
	if (r.poststop || s == DLRT_PAUSED) {
		dlrt_free_record(&r);
		return DLRT_DEFER;
	}
	if (s != DLRT_STOPPED && r.pid > 0) {
		_cleanup_free_ long *pids = NULL;
		long n = dlrt_cgroup_pids(&r, &pids);
		for (long i = 0; i < n; i++)
			kill((pid_t)pids[i], SIGKILL);
		kill((pid_t)r.pid, SIGKILL);
		long deadline = now_ms() + 10000;
		while (dlrt_is_alive(r.pid, r.pid_start) && now_ms() < deadline)
			sleep_ms(10);
	}
	for (size_t i = 0; i < r.n_cgroups; i++) {
		/* A cgroup with processes or children left: Node's removal kills and retries. */
		if (rmdir(r.cgroups[i].dir) < 0 && errno != ENOENT) {
			dlrt_free_record(&r);
			return DLRT_DEFER;
		}
	}
	/* The default parent goes with its last container; a busy one stays. */
	for (size_t i = 0; i < r.n_cgroups; i++) {
		char *slash = strrchr(r.cgroups[i].dir, '/');
		if (slash == NULL)
			continue;
		*slash = '\0';
		const char *parent = strrchr(r.cgroups[i].dir, '/');
		if (parent != NULL && strcmp(parent + 1, "dockless-runtime") == 0)
			rmdir(r.cgroups[i].dir);
	}
	dlrt_free_record(&r);
	if (remove_tree(AT_FDCWD, state_dir(g, id, (char[4096]){ 0 }, 4096)) < 0)
		return DLRT_DEFER;
	return 0;
}

static int set_frozen(const struct dlrt_globals *g, int argc, char **argv, bool frozen, struct dl_error *e)
{
	const char *id = parse_args(argc, argv, NULL, NULL, NULL, NULL);
	if (id == NULL)
		return DLRT_DEFER;
	const char *verb = frozen ? "pause" : "resume";
	struct dlrt_record r;
	int rc = dlrt_load(g, id, &r, e);
	if (rc < 0)
		return rc;
	enum dlrt_status s = dlrt_status_of(&r, g->root), want = frozen ? DLRT_RUNNING : DLRT_PAUSED;
	const struct dlrt_cgroup *f = dlrt_freezer(&r);
	if (s != want) {
		rc = dl_fail(e, 0, verb, id, "%s container %s: the container is %s, not %s", verb, id, dlrt_status_name(s),
			     dlrt_status_name(want));
	} else if (f == NULL) {
		rc = DLRT_DEFER;
	} else {
		char control[4200];
		snprintf(control, sizeof(control), "%s/%s", f->dir, f->version == 1 ? "freezer.state" : "cgroup.freeze");
		const char *value = f->version == 1 ? (frozen ? "FROZEN" : "THAWED") : (frozen ? "1" : "0");
		const char *done = frozen ? "FROZEN" : "THAWED";
		long deadline = now_ms() + 10000;
		rc = DLRT_DEFER;
		for (int attempt = 0; now_ms() <= deadline; attempt++) {
			/* v1: a write of FROZEN that finds a task it cannot freeze yet leaves FREEZING; writing again retries it. */
			_cleanup_close_ int fd = open(control, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, value, strlen(value)) < 0)
				break;
			const char *now = dlrt_freezer_state(f);
			if (now != NULL && strcmp(now, done) == 0) {
				rc = 0;
				break;
			}
			sleep_ms(attempt < 6 ? 1L << attempt : 50);
		}
		/* Out of time or refused: Node's setFrozen tries again and words the error. */
	}
	dlrt_free_record(&r);
	return rc;
}

int dlrt_cmd_pause(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	return set_frozen(g, argc, argv, true, e);
}

int dlrt_cmd_resume(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	return set_frozen(g, argc, argv, false, e);
}
