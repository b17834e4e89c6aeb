#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

#include "tty.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int dl_tty_open(unsigned short rows, unsigned short cols, int *master, struct dl_error *e)
{
	_cleanup_close_ int fd = -1;
	struct statfs sf;
	int unlock = 0;

	/* The instance's own ptmx, not /dev/ptmx: a symlink there is the image's to choose. */
	fd = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "tty", "/dev/pts/ptmx", "open `/dev/pts/ptmx`");
	if (fstatfs(fd, &sf) < 0)
		return dl_fail_errno(e, "tty", "/dev/pts/ptmx", "fstatfs `/dev/pts/ptmx`");
	if (sf.f_type != DEVPTS_SUPER_MAGIC)
		return dl_fail(e, EINVAL, "tty", "/dev/pts/ptmx", "open `/dev/pts/ptmx`: not on a devpts filesystem");
	if (ioctl(fd, TIOCSPTLCK, &unlock) < 0)
		return dl_fail_errno(e, "tty", "/dev/pts/ptmx", "ioctl `TIOCSPTLCK`");
	if (rows > 0 && cols > 0 && dl_tty_resize(fd, rows, cols) < 0)
		return dl_fail_errno(e, "tty", "/dev/pts/ptmx", "ioctl `TIOCSWINSZ`");
	*master = dl_steal_fd(&fd);
	return 0;
}

int dl_tty_peer(int master, int *slave, struct dl_error *e)
{
	int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return dl_fail_errno(e, "tty", "", "ioctl `TIOCGPTPEER`");
	*slave = fd;
	return 0;
}

int dl_tty_enter(int slave, struct dl_error *e)
{
	int fd;

	if (setsid() < 0)
		return dl_fail_errno(e, "tty", "", "setsid `tty`");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return dl_fail_errno(e, "tty", "", "ioctl `TIOCSCTTY`");
	for (fd = 0; fd <= 2; fd++)
		if (slave != fd && dup2(slave, fd) < 0)
			return dl_fail_errno(e, "tty", "", "dup2 `tty`");
	if (slave > 2)
		close(slave);
	return 0;
}

int dl_tty_resize(int master, unsigned short rows, unsigned short cols)
{
	struct winsize ws = {.ws_row = rows, .ws_col = cols};

	return ioctl(master, TIOCSWINSZ, &ws);
}
