/* A container's pseudo-terminal: made in the container's own devpts instance,
 * so that its process sees /dev/pts/N of its own /dev, never a host pty. */
#ifndef DL_TTY_H
#define DL_TTY_H

#include "error.h"

/* Opens a new pty master of the devpts instance mounted at /dev/pts of this
 * process's root (refusing anything that is not a devpts `ptmx`), unlocked,
 * sized ROWS x COLS when both are non-zero. */
int dl_tty_open(unsigned short rows, unsigned short cols, int *master, struct dl_error *e);

/* The slave of MASTER, opened through the master (TIOCGPTPEER, Linux 4.13), so
 * that no path in the container is looked up for it. */
int dl_tty_peer(int master, int *slave, struct dl_error *e);

/* Makes SLAVE this process's controlling terminal, in a session of its own, and
 * its stdin, stdout and stderr; SLAVE itself is closed when above 2. */
int dl_tty_enter(int slave, struct dl_error *e);

/* Sets MASTER's window size; the kernel sends SIGWINCH to the foreground group. */
int dl_tty_resize(int master, unsigned short rows, unsigned short cols);

#endif
