#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp.h"
#include "util.h"

int dl_seccomp_read(int fd, struct dl_seccomp *p, struct dl_error *e)
{
	_cleanup_close_ int owned = fd;
	char *buf;
	size_t len;

	if (dl_read_to_end(owned, &buf, &len) < 0)
		return dl_fail_errno(e, "seccomp", "", "read `fd %d`", fd);
	if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		free(buf);
		return dl_fail(e, EINVAL, "seccomp", "", "read `fd %d`: %zu bytes is not a program of 1 to %d instructions",
			       fd, len, BPF_MAXINSNS);
	}
	p->insns = buf;
	p->len = len / sizeof(struct sock_filter);
	return 0;
}

int dl_seccomp_install(const struct dl_seccomp *p, struct dl_error *e)
{
	struct sock_fprog prog = {.len = (unsigned short)p->len, .filter = p->insns};

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return dl_fail_errno(e, "seccomp", "", "seccomp `SECCOMP_SET_MODE_FILTER` (%zu instructions)", p->len);
	return 0;
}
