#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oci.h"
#include "tty.h"
#include "userns.h"
#include "util.h"

int dl_console_connect(const char *path, int *sock, struct dl_error *e)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof addr.sun_path)
		return dl_fail(e, ENAMETOOLONG, "console socket", path, "connect `%s`", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dl_fail_errno(e, "console socket", path, "socket `%s`", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return dl_fail_errno(e, "console socket", path, "connect `%s`", path);
	}
	*sock = fd;
	return 0;
}

int dl_console_send(int sock, unsigned short rows, unsigned short cols, int *slave, struct dl_error *e)
{
	_cleanup_close_ int master = -1;

	if (dl_tty_open(rows, cols, &master, e) < 0 || dl_tty_peer(master, slave, e) < 0)
		return -1;
	if (dl_send_fd(sock, master) < 0)
		return dl_fail_errno(e, "console socket", "", "sendmsg `console socket`");
	close(sock);
	return 0;
}

int dl_sysctl_write(const char *key, const char *value, struct dl_error *e)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t n = (size_t)snprintf(path, sizeof path, "/proc/sys/%s", key);

	if (n >= sizeof path || strstr(key, "..") != NULL || strchr(key, '/') != NULL)
		return dl_fail(e, EINVAL, "sysctl", key, "sysctl `%s`: bad key", key);
	for (char *p = path + strlen("/proc/sys/"); *p; p++)
		if (*p == '.')
			*p = '/';
	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "sysctl", key, "open `%s`", path);
	if (dl_write_all(fd, value, strlen(value)) < 0)
		return dl_fail_errno(e, "sysctl", key, "write `%s`", path);
	return 0;
}
