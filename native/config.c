/* The arguments of an op over a descriptor instead of argv: every user can read
 * /proc/PID/cmdline, and the run configuration holds env values and host paths. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

/* Reads all of FD from its start, as a pipe's reader or a re-exec'd helper would. */
static int read_config(int fd, char **buf, size_t *len)
{
	if (lseek(fd, 0, SEEK_SET) == 0)
		return dl_read_to_end(fd, buf, len);
	if (errno != ESPIPE)
		return -1;
	if (dl_read_to_end(fd, buf, len) < 0)
		return -1;
	/* A pipe reads once: keep the bytes at the same number as a sealed memfd, so that a
	 * helper that re-execs itself reads the same configuration again. */
	int mfd = memfd_create("dockless-config", MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	if (dl_write_all(mfd, *buf, *len) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0 ||
	    dup2(mfd, fd) < 0) {
		int saved = errno;
		close(mfd);
		errno = saved;
		return -1;
	}
	close(mfd);
	return 0;
}

void dl_config_argv(int *argc, char ***argv)
{
	char **in = *argv, **out, *buf;
	unsigned long fd;
	size_t len, n = 0, k = 0;

	if (*argc < 3 || strcmp(in[2], "--config-fd") != 0)
		return;
	/* `--netns-fd M` after it: the fork server's, passed on ahead of the configuration. */
	if ((*argc != 4 && (*argc != 6 || strcmp(in[4], "--netns-fd") != 0)) || dl_parse_ulong(in[3], 10, INT_MAX, &fd) < 0 ||
	    fd < 3)
		dl_usage(in[1], "--config-fd N (3 or above) must be the only option");
	if (read_config((int)fd, &buf, &len) < 0)
		dl_usage(in[1], "--config-fd %lu: read: %s", fd, strerror(errno));
	if (len > 0 && buf[len - 1] != '\0')
		dl_usage(in[1], "--config-fd %lu: the last argument is not NUL-terminated", fd);
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\0';
	out = calloc(n + 5, sizeof *out);
	if (out == NULL)
		dl_usage(in[1], "--config-fd %lu: out of memory", fd);
	out[k++] = in[0];
	out[k++] = in[1];
	for (int i = 4; i < *argc; i++)
		out[k++] = in[i];
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		out[k++] = buf + i;
	*argc = (int)k;
	*argv = out;
}
