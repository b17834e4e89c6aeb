/* The container's io: served by the shim itself (`run`, in its wait for pid 1)
 * or by the io process, a child of the exec shim (`exec --tty`, and `run` where
 * the kernel has no pidfd_open), outside the container. It holds the
 * container's end of its stdio so that the container never waits for the
 * caller: it reads the workload's stdout and
 * stderr pipes (or a TTY master), writes each line to the container's log
 * (json-lines, rotated), relays the output to the shim's own stdout/stderr for
 * an attached caller, relays input (the shim's stdin, a stdin FIFO) to the
 * container, and applies resize records from a control FIFO or pipe. See
 * PROTOCOL.md, "Logs, TTY and stdin". */
#ifndef DL_LOGIO_H
#define DL_LOGIO_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct dl_io {
	const char *log_path;
	unsigned long long log_max_size;
	unsigned long log_max_files;
	bool live;                      /* relay output to this process's fds 1 and 2 */
	unsigned long long live_buffer; /* bytes held per live stream before it is ended; 0: wait for the reader */
	bool tty;
	unsigned short rows, cols;
	bool stdin_relay; /* relay this process's fd 0 to the container */
	const char *stdin_fifo;
	const char *control_fifo;
	int control_fd;

	pid_t pid;
	int complete_r; /* EOF once the io process has written the last log line */
	int done_w;     /* closed: the container is over, drain and finish */
	int tty_sock;   /* run: pid 1 sends the master here */
	int pidfd;      /* run: pid 1's, when the shim serves the io itself */
	bool owns_stdio;
};

/* Defaults: no io served. */
void dl_io_init(struct dl_io *io);

/* If ARGV[I] is an io option (`--log`, `--log-max-size`, `--log-max-files`,
 * `--live`, `--live-buffer`, `--tty`, `--tty-size`, `--stdin`, `--stdin-fifo`,
 * `--control-fifo`, `--control-fd`), parses it and returns how many words it
 * took; 0 if it is not one. */
int dl_io_parse(struct dl_io *io, int argc, char **argv, int i, const char *op);

/* Whether `run` serves the io (else stdio passes straight through). */
bool dl_io_enabled(const struct dl_io *io);

/* run, before pid 1 is cloned: opens the log, the FIFOs and the pipes, and
 * leaves this process's fds 0, 1, 2 as the container's ends, for pid 1 to
 * inherit. With --tty, IO->tty_sock is the socket pid 1 sends the master on
 * (dl_io_send_tty). */
int dl_io_start_run(struct dl_io *io, struct dl_error *e);

/* run, once pid 1 is cloned and before anything of it runs: opens PID1's pidfd
 * for dl_io_serve, or without one (before Linux 5.3) forks the io process. */
int dl_io_watch_run(struct dl_io *io, pid_t pid1, struct dl_error *e);

/* run: serves the io (log, live relay, input, control) until pid 1 has
 * exited, then returns for the shim to reap it. At once with an io process. */
void dl_io_serve(struct dl_io *io);

/* run, in pid 1 after the container's mounts: opens its pty, sends the master
 * to the shim (or the io process) and returns the slave in *SLAVE. */
int dl_io_send_tty(struct dl_io *io, int *slave, struct dl_error *e);

/* exec --tty: forks the io process relaying MASTER and this process's stdio
 * (and --control-fd); MASTER stays open here for the caller to close. */
int dl_io_start_exec(struct dl_io *io, int master, struct dl_error *e);

/* Once the container (the exec'd process) has ended: lets go of the
 * container's ends of the stdio, drains what is left (or tells the io process
 * to, and waits) until the log holds the last line. Output an attached reader
 * has not taken yet is handed over by a process of its own (the io process, or
 * a child forked for it), so that the shim need not wait for the reader. */
void dl_io_finish(struct dl_io *io);

#endif
