/* Order, and why:
 *
 * 1. setrlimit first, while the process may still hold CAP_SYS_RESOURCE.
 * 2. no_new_privs, so that nothing exec'd later gains privileges.
 * 3. The bounding set, while the process still holds CAP_SETPCAP.
 * 4. (run.c) setgroups, setgid, setuid: a uid other than 0 loses its permitted
 *    and effective sets here, as with runc (no PR_SET_KEEPCAPS); the bounding
 *    set stays, so a setuid-root binary gets no more than it.
 * 5. capset: the permitted and effective sets, inheritable (and ambient) none.
 * 6. seccomp last, right before execve, so that the helper's own syscalls are
 *    not filtered. Without no_new_privs the kernel only lets CAP_SYS_ADMIN
 *    install a filter, so then it goes in before step 3, as runc does; the
 *    remaining steps' syscalls must be allowed by the profile (Docker's are).
 *
 * The init (--init) takes no_new_privs, the filter and the bounding set too,
 * once the workload is forked: a container process that may ptrace it (with
 * CAP_SYS_PTRACE) must not find a way around the filter there. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/keyctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "security.h"
#include "util.h"

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{"as", RLIMIT_AS},	       {"core", RLIMIT_CORE},	  {"cpu", RLIMIT_CPU},
	{"data", RLIMIT_DATA},	       {"fsize", RLIMIT_FSIZE},	  {"locks", RLIMIT_LOCKS},
	{"memlock", RLIMIT_MEMLOCK},   {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
	{"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},	  {"rss", RLIMIT_RSS},
	{"rtprio", RLIMIT_RTPRIO},     {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING},
	{"stack", RLIMIT_STACK},
};

void dl_security_defaults(struct dl_security *s)
{
	memset(s, 0, sizeof *s);
	s->seccomp_fd = -1;
}

static rlim_t parse_rlim(const char *opt, const char *s)
{
	unsigned long v;

	if (strcmp(s, "unlimited") == 0)
		return RLIM_INFINITY;
	if (dl_parse_ulong(s, 10, ULONG_MAX - 1, &v) < 0)
		dl_usage("run", "%s: bad limit `%s` (a number or `unlimited`)", opt, s);
	return (rlim_t)v;
}

int dl_security_parse(struct dl_security *s, int argc, char **argv, int i)
{
	const char *a = argv[i];
	unsigned long v;

	if (strcmp(a, "--no-new-privs") == 0) {
		s->no_new_privs = true;
		return 1;
	}
	if (strcmp(a, "--no-new-keyring") == 0) {
		s->keep_keyring = true;
		return 1;
	}
	if (strcmp(a, "--caps") == 0) {
		if (i + 1 >= argc)
			dl_usage("run", "--caps needs 1 argument");
		if (strlen(argv[i + 1]) > 16 || dl_parse_ulong(argv[i + 1], 16, ULONG_MAX, &v) < 0)
			dl_usage("run", "--caps: bad mask `%s` (1 to 16 hex digits)", argv[i + 1]);
		s->has_caps = true;
		s->caps = (uint64_t)v;
		return 2;
	}
	if (strcmp(a, "--seccomp-fd") == 0) {
		if (i + 1 >= argc)
			dl_usage("run", "--seccomp-fd needs 1 argument");
		if (dl_parse_ulong(argv[i + 1], 10, INT_MAX, &v) < 0 || v < 3)
			dl_usage("run", "--seccomp-fd: bad fd `%s` (3 or above)", argv[i + 1]);
		s->seccomp_fd = (int)v;
		return 2;
	}
	if (strcmp(a, "--rlimit") == 0) {
		struct dl_rlimit *r;
		size_t k;

		if (i + 3 >= argc)
			dl_usage("run", "--rlimit needs 3 arguments");
		for (k = 0; k < sizeof rlimit_names / sizeof rlimit_names[0]; k++)
			if (strcmp(rlimit_names[k].name, argv[i + 1]) == 0)
				break;
		if (k == sizeof rlimit_names / sizeof rlimit_names[0])
			dl_usage("run", "--rlimit: unknown resource `%s`", argv[i + 1]);
		if (s->rlimits == NULL) {
			s->rlimits = calloc((size_t)argc, sizeof *s->rlimits);
			if (s->rlimits == NULL)
				dl_usage("run", "out of memory");
		}
		r = &s->rlimits[s->n_rlimits++];
		r->resource = rlimit_names[k].resource;
		r->name = rlimit_names[k].name;
		r->value.rlim_cur = parse_rlim(a, argv[i + 2]);
		r->value.rlim_max = parse_rlim(a, argv[i + 3]);
		if (r->value.rlim_cur > r->value.rlim_max)
			dl_usage("run", "--rlimit %s: soft limit above the hard limit", r->name);
		return 4;
	}
	return 0;
}

int dl_security_load(struct dl_security *s, struct dl_error *e)
{
	if (s->seccomp_fd < 0)
		return 0;
	return dl_seccomp_read(s->seccomp_fd, &s->seccomp, e);
}

static void format_rlim(char *buf, size_t size, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, size, "unlimited");
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
}

static int apply_rlimit(const struct dl_rlimit *r, struct dl_error *e)
{
	char soft[32], hard[32], now[32];
	struct rlimit cur;

	if (setrlimit(r->resource, &r->value) == 0)
		return 0;
	format_rlim(soft, sizeof soft, r->value.rlim_cur);
	format_rlim(hard, sizeof hard, r->value.rlim_max);
	if (errno == EPERM && getrlimit(r->resource, &cur) == 0) {
		format_rlim(now, sizeof now, cur.rlim_max);
		/* The usual cause: raising a hard limit takes CAP_SYS_RESOURCE. */
		return dl_fail(e, EPERM, "setrlimit", "", "setrlimit `%s` soft %s hard %s: above the hard limit %s",
			       r->name, soft, hard, now);
	}
	return dl_fail_errno(e, "setrlimit", "", "setrlimit `%s` soft %s hard %s", r->name, soft, hard);
}

int dl_security_before_user(const struct dl_security *s, struct dl_error *e)
{
	for (size_t i = 0; i < s->n_rlimits; i++)
		if (apply_rlimit(&s->rlimits[i], e) < 0)
			return -1;
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return dl_fail_errno(e, "prctl", "", "prctl `PR_SET_NO_NEW_PRIVS`");
	if (!s->no_new_privs && s->seccomp.len > 0 && !s->sealed && dl_seccomp_install(&s->seccomp, e) < 0)
		return -1;
	if (s->has_caps && dl_caps_drop_bounding(s->caps, e) < 0)
		return -1;
	return 0;
}

int dl_security_after_user(const struct dl_security *s, uid_t uid, struct dl_error *e)
{
	if (!s->has_caps)
		return 0;
	return dl_caps_set(uid == 0 ? s->caps : 0, e);
}

int dl_security_seal(const struct dl_security *s, struct dl_error *e)
{
	if (s->no_new_privs && s->seccomp.len > 0 && !s->sealed)
		return dl_seccomp_install(&s->seccomp, e);
	return 0;
}

int dl_security_init(const struct dl_security *s, struct dl_error *e)
{
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return dl_fail_errno(e, "prctl", "", "prctl `PR_SET_NO_NEW_PRIVS`");
	/* Without no_new_privs only CAP_SYS_ADMIN may install a filter: before the
	 * drop, as in the workload. The workload is forked already, so the init's
	 * no_new_privs and filter reach no process but the init. */
	if (!s->no_new_privs && s->seccomp.len > 0 && dl_seccomp_install(&s->seccomp, e) < 0)
		return -1;
	if (s->has_caps) {
		if (dl_caps_drop_bounding(s->caps, e) < 0)
			return -1;
		/* The init only waits and forwards signals; CAP_KILL lets it signal a
		 * workload that runs as another user, even when the container lacks it.
		 * An init that re-forks the workload needs what the workload's
		 * steps need (setuid, capset): the container's root's set, no more. */
		if (dl_caps_set((UINT64_C(1) << DL_CAP_KILL) | (s->init_keeps_caps ? s->caps : 0), e) < 0)
			return -1;
	}
	if (s->no_new_privs && s->seccomp.len > 0)
		return dl_seccomp_install(&s->seccomp, e);
	return 0;
}

int dl_security_keyring(const struct dl_security *s, struct dl_error *e)
{
	if (s->keep_keyring)
		return 0;
	/* A NULL name makes a new anonymous keyring: joining one by name would join
	 * any keyring of that name the container's user can already search. */
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS)
		return dl_fail_errno(e, "keyctl", "", "keyctl `KEYCTL_JOIN_SESSION_KEYRING`");
	return 0;
}
