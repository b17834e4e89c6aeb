#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ns.h"
#include "status.h"
#include "util.h"

static const struct {
	const char *name;
	int flag;
} ns_names[] = {
	{"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"uts", CLONE_NEWUTS},
	{"ipc", CLONE_NEWIPC},  {"net", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP}, {"user", CLONE_NEWUSER},
};

int dl_ns_flag(const char *name)
{
	for (size_t i = 0; i < sizeof ns_names / sizeof ns_names[0]; i++)
		if (strcmp(ns_names[i].name, name) == 0)
			return ns_names[i].flag;
	return 0;
}

int dl_ns_parse_list(const char *list, int *flags, const char **bad)
{
	static char word[32];
	const char *p = list;

	*flags = 0;
	while (*p) {
		const char *end = strchrnul(p, ',');
		size_t n = (size_t)(end - p);
		int flag;

		if (n >= sizeof word)
			n = sizeof word - 1;
		memcpy(word, p, n);
		word[n] = '\0';
		if (n > 0) {
			flag = dl_ns_flag(word);
			if (flag == 0) {
				*bad = word;
				return -1;
			}
			*flags |= flag;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

int dl_ns_join(int fd, int flag, const char *path, struct dl_error *e)
{
	if (setns(fd, flag) < 0)
		return dl_fail_errno(e, "setns", path, "setns `%s`", path);
	return 0;
}

int dl_ns_loopback_up(struct dl_error *e)
{
	struct ifreq ifr;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return dl_fail_errno(e, "loopback", "", "socket `AF_INET`");
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return dl_fail_errno(e, "loopback", "", "ioctl `SIOCGIFFLAGS lo`");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return dl_fail_errno(e, "loopback", "", "ioctl `SIOCSIFFLAGS lo`");
	return 0;
}

int dl_ns_sethostname(const char *name, struct dl_error *e)
{
	if (sethostname(name, strlen(name)) < 0)
		return dl_fail_errno(e, "sethostname", "", "sethostname `%s`", name);
	return 0;
}

int dl_ns_report(pid_t pid, bool user, struct dl_error *e)
{
	char path[64], line[256];
	int net_fd, user_fd = -1, n;

	snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
	net_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (net_fd < 0)
		return dl_fail_errno(e, "setns", "", "open `%s`", path);
	if (user) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
		user_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (user_fd < 0)
			return dl_fail_errno(e, "setns", "", "open `%s`", path);
	}
	n = snprintf(line, sizeof line, "{\"type\":\"netns\",\"net\":\"/proc/%d/fd/%d\"", (int)getpid(), net_fd);
	if (user_fd >= 0)
		n += snprintf(line + n, sizeof line - (size_t)n, ",\"user\":\"/proc/%d/fd/%d\"", (int)getpid(), user_fd);
	n += snprintf(line + n, sizeof line - (size_t)n, "}\n");
	if (dl_status_fd() >= 0)
		dl_write_all(dl_status_fd(), line, (size_t)n);
	return 0;
}
