#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reexec.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define DL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

static int open_copy(void)
{
	/* MFD_EXEC (Linux 6.3) says what we mean and keeps the kernel from warning;
	 * older kernels refuse the flag they do not know. */
	int fd = memfd_create("dockless-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);

	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("dockless-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return fd;
}

int dl_reexec_sealed(char **argv, struct dl_error *e)
{
	_cleanup_close_ int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int copy = -1;
	struct stat st;
	off_t done = 0;
	int seals;

	if (exe < 0)
		return dl_fail_errno(e, "reexec", "/proc/self/exe", "open `/proc/self/exe`");
	/* The sealed copy is its own proof: no marker in argv or the environment
	 * that a caller could set to skip this. */
	seals = fcntl(exe, F_GET_SEALS);
	if (seals >= 0 && (seals & DL_SEALS) == DL_SEALS)
		return 0;
	if (fstat(exe, &st) < 0)
		return dl_fail_errno(e, "reexec", "/proc/self/exe", "fstat `/proc/self/exe`");
	copy = open_copy();
	if (copy < 0)
		return dl_fail_errno(e, "reexec", "", "memfd_create `dockless-helper`");
	while (done < st.st_size) {
		ssize_t n = sendfile(copy, exe, NULL, (size_t)(st.st_size - done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return dl_fail(e, n < 0 ? errno : EIO, "reexec", "/proc/self/exe", "sendfile `/proc/self/exe`");
		done += n;
	}
	if (fcntl(copy, F_ADD_SEALS, DL_SEALS) < 0)
		return dl_fail_errno(e, "reexec", "", "fcntl `F_ADD_SEALS`");
	execveat(copy, "", argv, environ, AT_EMPTY_PATH);
	return dl_fail_errno(e, "reexec", "", "execveat `memfd`");
}
