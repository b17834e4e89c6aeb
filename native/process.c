#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process.h"
#include "status.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void *dl_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL) {
		struct dl_error e;

		dl_fail(&e, ENOMEM, "calloc", "", "calloc `%zu, %zu`", n, size);
		dl_status_error(&e);
		_exit(DL_EXIT_FAILED);
	}
	return p;
}

void dl_process_init(struct dl_process *p, int argc)
{
	p->cwd = "/";
	p->env = dl_xcalloc((size_t)argc + 1, sizeof *p->env);
}

static unsigned long parse_num(const char *op, const char *opt, const char *s, int base, unsigned long max)
{
	unsigned long v;

	if (dl_parse_ulong(s, base, max, &v) < 0)
		dl_usage(op, "%s: bad number `%s`", opt, s);
	return v;
}

static void parse_groups(struct dl_process *p, const char *list, const char *op)
{
	size_t n = 1;
	const char *s;

	for (s = list; *s; s++)
		n += *s == ',';
	p->groups = dl_xcalloc(n, sizeof *p->groups);
	p->n_groups = 0;
	p->groups_set = true;
	s = list;
	while (*s) {
		const char *end = strchrnul(s, ',');
		char word[32];
		size_t len = (size_t)(end - s);

		if (len == 0 || len >= sizeof word)
			dl_usage(op, "--groups: bad list `%s`", list);
		memcpy(word, s, len);
		word[len] = '\0';
		p->groups[p->n_groups++] = (gid_t)parse_num(op, "--groups", word, 10, UINT32_MAX - 1);
		s = *end ? end + 1 : end;
	}
}

int dl_process_parse(struct dl_process *p, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];

	if (strcmp(a, "--cwd") != 0 && strcmp(a, "--uid") != 0 && strcmp(a, "--gid") != 0 &&
	    strcmp(a, "--groups") != 0 && strcmp(a, "--env") != 0)
		return 0;
	if (i + 1 >= argc)
		dl_usage(op, "%s needs 1 argument", a);
	if (strcmp(a, "--cwd") == 0) {
		p->cwd = argv[i + 1];
	} else if (strcmp(a, "--uid") == 0) {
		p->uid = (uid_t)parse_num(op, a, argv[i + 1], 10, UINT32_MAX - 1);
	} else if (strcmp(a, "--gid") == 0) {
		p->gid = (gid_t)parse_num(op, a, argv[i + 1], 10, UINT32_MAX - 1);
	} else if (strcmp(a, "--groups") == 0) {
		parse_groups(p, argv[i + 1], op);
	} else {
		if (strchr(argv[i + 1], '=') == NULL)
			dl_usage(op, "--env: `%s` is not K=V", argv[i + 1]);
		p->env[p->n_env++] = argv[i + 1];
	}
	return 2;
}

static const char *env_path(const struct dl_process *p)
{
	/* The last PATH wins, as it would in a shell. */
	for (size_t i = p->n_env; i-- > 0;)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			return p->env[i] + 5;
	return DEFAULT_PATH;
}

_Noreturn void dl_process_exec(const struct dl_process *p)
{
	const char *file = p->cmd[0];
	int err;

	/* Ignored until here: the `started` line goes to a caller that may be gone
	 * (a container created by one process and started by another). */
	signal(SIGPIPE, SIG_DFL);

	if (strchr(file, '/')) {
		execve(file, p->cmd, p->env);
		err = errno;
	} else {
		const char *s = env_path(p);
		bool denied = false;

		err = ENOENT;
		for (;;) {
			const char *end = strchrnul(s, ':');
			size_t dlen = (size_t)(end - s), flen = strlen(file);
			char buf[PATH_MAX];

			/* An empty entry is written as `.`: one byte more than its length. */
			if ((dlen == 0 ? 1 : dlen) + 1 + flen < sizeof buf) {
				/* An empty PATH entry means the current directory. */
				if (dlen == 0) {
					buf[0] = '.';
					dlen = 1;
				} else {
					memcpy(buf, s, dlen);
				}
				buf[dlen] = '/';
				memcpy(buf + dlen + 1, file, flen + 1);
				execve(buf, p->cmd, p->env);
				if (errno == EACCES) {
					denied = true;
				} else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
					   errno != ETIMEDOUT) {
					err = errno;
					break;
				}
			}
			if (*end == '\0')
				break;
			s = end + 1;
		}
		if (err == ENOENT && denied)
			err = EACCES;
	}
	dprintf(STDERR_FILENO, "dockless: exec `%s`: %s\n", file, strerror(err));
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	/* Handlers do not survive execve but ignored signals do; SIGPIPE stays
	 * ignored until dl_process_exec. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGPIPE)
			sigaction(sig, &sa, NULL); /* EINVAL for glibc's reserved signals is fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Marks every fd from FIRST on close-on-exec (close_range's CLOSE_RANGE_CLOEXEC,
 * Linux 5.11; fd by fd before that). */
static void close_on_exec_from(unsigned int first)
{
	if (close_range(first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (int fd = (int)first; fd < (int)sysconf(_SC_OPEN_MAX); fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static bool is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

void dl_close_fds_except(int *keep, size_t n)
{
	unsigned int next = 3;

	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (size_t k = 0; k < n; k++) {
		if (keep[k] < (int)next)
			continue;
		if ((unsigned int)keep[k] > next && close_range(next, (unsigned int)keep[k] - 1, 0) < 0)
			for (int fd = (int)next; fd < keep[k]; fd++)
				close(fd);
		next = (unsigned int)keep[k] + 1;
	}
	if (close_range(next, ~0U, 0) < 0)
		for (int fd = (int)next; fd < (int)sysconf(_SC_OPEN_MAX); fd++)
			close(fd);
}

/* Before the container's process resolves any path of its own (cwd, the
 * command): every fd the helper opened on a host path (bind sources, the
 * target, namespaces, pidfds, cgroups) must be gone, not only close-on-exec, or
 * /proc/self/fd/N leads out of the root (runc's CVE-2024-21626). What stays is
 * the status fd and the report pipe, pipes that lead nowhere; a status fd that
 * is anything else is closed too. */
static void close_host_fds(int report_w)
{
	int status_fd = dl_status_fd();

	if (status_fd >= 0 && !is_pipe(status_fd)) {
		dl_status_init(-1);
		status_fd = -1;
	}
	if (!is_pipe(report_w))
		_exit(DL_EXIT_FAILED);
	dl_close_fds_except((int[]){status_fd, report_w}, 2);
}

/* chdir, then proof that the cwd is inside the root: getcwd fails (ENOENT) or
 * names an unreachable path for a directory outside it. */
static int enter_cwd(const char *cwd, struct dl_error *e)
{
	char buf[PATH_MAX];

	if (chdir(cwd) < 0)
		return dl_fail_errno(e, "chdir", cwd, "chdir `%s`", cwd);
	if (getcwd(buf, sizeof buf) == NULL)
		return dl_fail_errno(e, "chdir", cwd, "getcwd `%s`", cwd);
	if (buf[0] != '/')
		return dl_fail(e, ENOENT, "chdir", cwd, "getcwd `%s`: outside the container's root", cwd);
	return 0;
}

static int set_user(const struct dl_process *p, struct dl_error *e)
{
	if (p->groups_set) {
		if (setgroups(p->n_groups, p->groups) < 0)
			return dl_fail_errno(e, "setgroups", "", "setgroups `%zu groups`", p->n_groups);
	} else if (setgroups(0, NULL) < 0 && errno != EPERM) {
		return dl_fail_errno(e, "setgroups", "", "setgroups `none`");
	}
	if (setgid(p->gid) < 0)
		return dl_fail_errno(e, "setgid", "", "setgid `%u`", (unsigned)p->gid);
	if (setuid(p->uid) < 0)
		return dl_fail_errno(e, "setuid", "", "setuid `%u`", (unsigned)p->uid);
	return 0;
}

int dl_process_enter(const struct dl_process *p, const struct dl_security *sec, int report_w, int go_r, int mask,
		     struct dl_error *e)
{
	if (dl_security_before_user(sec, e) < 0 || set_user(p, e) < 0 || dl_security_after_user(sec, p->uid, e) < 0)
		return -1;
	/* A change of credentials clears the parent-death signal. */
	if (!p->keep_parent)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Nothing in the container runs before the init is under the filter: a
	 * byte or EOF when it is; if it failed, it has killed this process. */
	if (go_r >= 0) {
		char byte;
		dl_read_retry(go_r, &byte, 1);
	}
	close_host_fds(report_w);
	if (enter_cwd(p->cwd, e) < 0)
		return -1;
	if (mask >= 0)
		umask((mode_t)mask);
	reset_signals();
	/* The status fd and the report pipe go at execve; they stay until then, to
	 * report a failing seccomp step. */
	close_on_exec_from(3);
	return dl_security_seal(sec, e);
}
