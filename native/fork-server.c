/* fork-server: forks `run` and `exec` on its owner's request, so that the owner
 * (a Node process whose own fork costs grow with its heap) forks once. Each op
 * is still a process of its own that parses its own arguments; this process
 * only stands in for the owner's fork+exec. Contract: native/PROTOCOL.md. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "events.h"
#include "error.h"
#include "ns.h"
#include "reexec.h"
#include "util.h"

#define REQ_FORK 1
#define REQ_KILL 2
#define REQ_RM 3
#define REQ_MOVE 4

#define FLAG_DETACHED 0x1
#define FLAG_STDIN 0x2
#define FLAG_STDOUT 0x4
#define FLAG_STDERR 0x8
#define FLAG_CONTROL 0x10

#define MAX_INPUTS 8
/* Paths in one REQ_RM: a trash batch, far fewer in practice. */
#define MAX_RM_PATHS 4096
/* Renames in one REQ_MOVE: a removal's state and data directories. */
#define MAX_MOVES 16
#define MAX_REQUEST (64u << 20)
/* stdio, status, inputs, control */
#define MAX_SLOTS (4 + MAX_INPUTS + 1)

struct op {
	uint32_t id;
	pid_t pid;
};

/* Network namespaces made while idle, each handed whole to one `run` (never
 * back): a new one is most of the cost of a container's clone (copy_net_ns). */
#define NETNS_POOL 4
/* Idle this long (ms) before each one is made: not in the moments right after a
 * fork, when the new op wants the CPU, and not at all while requests keep
 * coming (each run then makes its own, in parallel, as without a pool). */
#define NETNS_IDLE_MS 2

static struct op *ops;
static size_t n_ops, cap_ops;
static int ipc_fd = -1, request_fd = -1, devnull = -1;
static int netns_pool[NETNS_POOL], n_netns, host_netns = -1;
/* The server's own argv strings, rewritten in each child to read as the op's (`ps`). */
static char *title;
static size_t title_len;
/* Whether the server is a child subreaper (see cmd_fork_server). */
static bool subreaper;

/* One line on the owner's channel, with at most one descriptor: Node takes the
 * descriptors of one read together, so each travels alone (see PROTOCOL.md). */
static int send_line(const char *line, int fd)
{
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	while (iov.iov_len > 0) {
		ssize_t n = sendmsg(ipc_fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	return 0;
}

/* The owner is gone or its channel broken: nothing left to serve. */
static void send_or_exit(const char *line, int fd)
{
	if (send_line(line, fd) < 0)
		_exit(DL_EXIT_FAILED);
}

static int read_exact(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = dl_read_retry(fd, (char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void close_from(unsigned int first)
{
	if (syscall(SYS_close_range, first, ~0U, 0) == 0)
		return;
	/* close_range is Linux 5.9. */
	for (int fd = (int)first; fd < 1024; fd++)
		close(fd);
}

/* In the forked child: the descriptors at 0…N-1 as the owner would have spawned
 * them, nothing else of this process's open, then the op as main would run it. */
static __attribute__((noreturn)) void child_main(const char *op, int *slots, int n, int config_fd, bool detached, bool netns_last)
{
	sigset_t none;
	int moved[MAX_SLOTS + 1];
	char config[16], netns[16];
	char *argv[] = {"dockless-helper", (char *)op, "--config-fd", config, NULL, NULL, NULL};
	int argc = 4;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (detached)
		setsid();
	/* Above every target first, so that no dup2 below overwrites a source still needed. */
	for (int k = 0; k < n; k++) {
		moved[k] = fcntl(slots[k], F_DUPFD_CLOEXEC, n);
		if (moved[k] < 0)
			_exit(DL_EXIT_FAILED);
	}
	for (int k = 0; k < n; k++)
		if (dup2(moved[k], k) < 0)
			_exit(DL_EXIT_FAILED);
	close_from((unsigned int)n);
	snprintf(config, sizeof config, "%d", config_fd);
	if (title != NULL) {
		memset(title, 0, title_len);
		snprintf(title, title_len, "dockless-helper%c%s%c--config-fd%c%s", 0, op, 0, 0, config);
	}
	/* The last slot, when the server gave one, is a pooled network namespace (PROTOCOL.md). */
	if (netns_last) {
		snprintf(netns, sizeof netns, "%d", n - 1);
		argv[argc++] = "--netns-fd";
		argv[argc++] = netns;
	}
	dl_main_argv = argv;
	dl_orphans_reaped = subreaper;
	exit(dl_dispatch(argc, argv));
}

static void closep_all(int *fds, int n)
{
	for (int k = 0; k < n; k++)
		if (fds[k] >= 0 && fds[k] != devnull)
			close(fds[k]);
}

static int add_op(uint32_t id, pid_t pid)
{
	if (n_ops == cap_ops) {
		size_t cap = cap_ops ? cap_ops * 2 : 64;
		struct op *more = realloc(ops, cap * sizeof *more);
		if (more == NULL)
			return -1;
		ops = more;
		cap_ops = cap;
	}
	ops[n_ops++] = (struct op){.id = id, .pid = pid};
	return 0;
}

static void report_error(uint32_t id, int err, const char *step)
{
	char line[160];
	snprintf(line, sizeof line, "{\"t\":\"error\",\"id\":%u,\"errno\":%d,\"step\":\"%s\"}\n", id, err, step);
	send_or_exit(line, -1);
}

static void serve_fork(uint32_t id, const uint32_t *h, size_t hlen, const char *rest, size_t restlen)
{
	uint32_t flags, n_inputs, op_len;
	/* One more than the owner's: a pooled network namespace for a `run`. */
	int child[MAX_SLOTS + 1], owner[MAX_SLOTS + 1];
	int n = 0, err = 0;
	const char *step = "socketpair";
	char op[16], line[200];
	size_t off;
	pid_t pid;

	if (hlen < 3)
		goto bad;
	flags = h[0];
	n_inputs = h[1];
	op_len = h[2];
	if (n_inputs == 0 || n_inputs > MAX_INPUTS || hlen != 3 + n_inputs || op_len == 0 || op_len >= sizeof op || op_len > restlen)
		goto bad;
	memcpy(op, rest, op_len);
	op[op_len] = '\0';
	/* Only the ops that a container's owner forks on and on (rm: each removal's
	 * trash): the rest stay one spawn each. */
	if (strcmp(op, "run") != 0 && strcmp(op, "exec") != 0 && strcmp(op, "rm") != 0)
		goto bad;
	off = op_len;
	for (uint32_t i = 0; i < n_inputs; i++) {
		if (h[3 + i] > restlen - off)
			goto bad;
		off += h[3 + i];
	}
	if (off != restlen)
		goto bad;

	bool netns = false;

	for (int k = 0; k < MAX_SLOTS + 1; k++)
		child[k] = owner[k] = -1;
	/* 0-2: stdio, 3: status; the same socket pairs as libuv makes for spawn's 'pipe'. */
	for (int k = 0; k < 4; k++) {
		int sv[2];
		if (k < 3 && !(flags & (FLAG_STDIN << k))) {
			child[k] = devnull;
			continue;
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			goto fail;
		child[k] = sv[0];
		owner[k] = sv[1];
	}
	n = 4;
	/* Inputs are read to their end from offset 0 (see `--config-fd`): a memfd holds them whole. */
	step = "memfd_create";
	off = op_len;
	for (uint32_t i = 0; i < n_inputs; i++, n++) {
		child[n] = memfd_create("dockless-input", MFD_CLOEXEC);
		if (child[n] < 0 || dl_write_all(child[n], rest + off, h[3 + i]) < 0 || lseek(child[n], 0, SEEK_SET) < 0)
			goto fail;
		off += h[3 + i];
	}
	if (flags & FLAG_CONTROL) {
		int sv[2];
		step = "socketpair";
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			goto fail;
		child[n] = sv[0];
		owner[n] = sv[1];
		n++;
	}
	/* A run's own, taken from the pool: the child gets it as its last descriptor. */
	if (strcmp(op, "run") == 0 && n_netns > 0) {
		child[n++] = netns_pool[--n_netns];
		netns = true;
	}
	step = "fork";
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0)
		child_main(op, child, n, 4 + (int)n_inputs - 1, flags & FLAG_DETACHED, netns);
	closep_all(child, n);
	if (add_op(id, pid) < 0) {
		/* Untracked, its exit could never be reported: better not to have it. */
		kill(pid, SIGKILL);
		closep_all(owner, n);
		report_error(id, ENOMEM, "calloc");
		return;
	}
	/* The pid rides on each descriptor's message (the status pipe is always one):
	 * no message of its own for Node to parse. */
	for (int k = 0; k < n; k++) {
		if (owner[k] < 0)
			continue;
		/* Node's side of the pair, made non-blocking as libuv makes its own. */
		fcntl(owner[k], F_SETFL, fcntl(owner[k], F_GETFL) | O_NONBLOCK);
		snprintf(line, sizeof line,
			 "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":{\"t\":\"fd\",\"id\":%u,\"fd\":%d,\"pid\":%d}}\n", id,
			 k, (int)pid);
		send_or_exit(line, owner[k]);
		close(owner[k]);
	}
	return;
fail:
	err = errno;
	closep_all(child, n > 4 ? n : 4);
	closep_all(owner, n > 4 ? n : 4);
	report_error(id, err, step);
	return;
bad:
	report_error(id, EINVAL, "request");
}

/* REQ_RM: the helper's `rm` of the NUL-ended absolute paths in REST, forked with
 * no descriptor of the owner's (stdio /dev/null, no status fd): the owner hears
 * only its `exit` (code 0: all gone), and makes no socket for it. */
static void serve_rm(uint32_t id, char *rest, size_t restlen)
{
	char **argv;
	size_t n = 0;
	pid_t pid;

	if (restlen == 0 || rest[restlen - 1] != '\0')
		goto bad;
	for (size_t i = 0; i < restlen; i++)
		if (rest[i] == '\0')
			n++;
	if (n > MAX_RM_PATHS)
		goto bad;
	argv = calloc(n + 4, sizeof *argv);
	if (argv == NULL) {
		report_error(id, ENOMEM, "calloc");
		return;
	}
	argv[0] = "dockless-helper";
	argv[1] = "rm";
	argv[2] = "--";
	for (size_t i = 0, k = 3; i < restlen; k++) {
		argv[k] = rest + i;
		i += strlen(rest + i) + 1;
	}
	pid = fork();
	if (pid < 0) {
		report_error(id, errno, "fork");
		free(argv);
		return;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int k = 0; k < 3; k++)
			if (dup2(devnull, k) < 0)
				_exit(DL_EXIT_FAILED);
		/* Nothing of the server's or its ops' open: fd 3, the status fd, is closed, so status goes nowhere. */
		close_from(3);
		if (title != NULL) {
			memset(title, 0, title_len);
			snprintf(title, title_len, "dockless-helper%crm", 0);
		}
		dl_main_argv = argv;
		exit(dl_dispatch((int)n + 3, argv));
	}
	free(argv);
	if (add_op(id, pid) < 0) {
		kill(pid, SIGKILL);
		report_error(id, ENOMEM, "calloc");
	}
	return;
bad:
	report_error(id, EINVAL, "request");
}

/* REQ_MOVE: a removal's last steps, here rather than on the owner's thread pool:
 * REST is FILE, LINE, then SRC, DST pairs, each NUL-ended. LINE (an event, when
 * not empty) is appended to the events file FILE first, then each SRC is renamed
 * to DST, in order; the reply names each rename's errno (0: done). */
static void serve_move(uint32_t id, char *rest, size_t restlen)
{
	char *s[2 + 2 * MAX_MOVES], reply[64 + 12 * MAX_MOVES];
	size_t n = 0, at;

	if (restlen == 0 || rest[restlen - 1] != '\0')
		goto bad;
	for (size_t i = 0; i < restlen; i += strlen(rest + i) + 1) {
		if (n == sizeof s / sizeof *s)
			goto bad;
		s[n++] = rest + i;
	}
	if (n < 2 || n % 2 != 0)
		goto bad;
	if (s[0][0] != '\0' && s[1][0] != '\0')
		dl_events_append(s[0], s[1], strlen(s[1]));
	at = (size_t)snprintf(reply, sizeof reply, "{\"t\":\"moved\",\"id\":%u,\"errnos\":[", id);
	for (size_t k = 2; k < n; k += 2) {
		int err = rename(s[k], s[k + 1]) < 0 ? errno : 0;
		at += (size_t)snprintf(reply + at, sizeof reply - at, "%s%d", k > 2 ? "," : "", err);
	}
	snprintf(reply + at, sizeof reply - at, "]}\n");
	send_or_exit(reply, -1);
	return;
bad:
	report_error(id, EINVAL, "request");
}

static void serve_kill(uint32_t id, const uint32_t *h, size_t hlen)
{
	if (hlen != 1 || h[0] == 0 || h[0] >= 65)
		return;
	/* Only a child not yet reaped: its pid cannot have been reused. */
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].id == id)
			kill(ops[i].pid, (int)h[0]);
}

/* A request: u32 length of the rest, u32 kind, u32 id, then kind's u32 fields
 * and bytes (PROTOCOL.md). Returns -1 when the owner closed its end. */
static int serve_request(void)
{
	uint32_t len, head[2 + 3 + MAX_INPUTS], hlen;
	char *rest;

	if (read_exact(request_fd, &len, sizeof len) < 0)
		return -1;
	if (len < 8 || len > MAX_REQUEST)
		_exit(DL_EXIT_USAGE);
	if (read_exact(request_fd, head, 8) < 0)
		return -1;
	len -= 8;
	if (head[0] == REQ_KILL) {
		if (len != 4 || read_exact(request_fd, head + 2, 4) < 0)
			_exit(DL_EXIT_USAGE);
		serve_kill(head[1], head + 2, 1);
		return 0;
	}
	if (head[0] == REQ_RM || head[0] == REQ_MOVE) {
		rest = malloc(len ? len : 1);
		if (rest == NULL)
			_exit(DL_EXIT_FAILED);
		if (read_exact(request_fd, rest, len) < 0) {
			free(rest);
			return -1;
		}
		if (head[0] == REQ_RM)
			serve_rm(head[1], rest, len);
		else
			serve_move(head[1], rest, len);
		free(rest);
		return 0;
	}
	if (head[0] != REQ_FORK || len < 8)
		_exit(DL_EXIT_USAGE);
	if (read_exact(request_fd, head + 2, 8) < 0)
		return -1;
	hlen = 3 + head[3];
	if (head[3] > MAX_INPUTS || len < hlen * 4)
		_exit(DL_EXIT_USAGE);
	if (read_exact(request_fd, head + 4, (hlen - 2) * 4) < 0)
		return -1;
	len -= hlen * 4;
	rest = malloc(len ? len : 1);
	if (rest == NULL) {
		report_error(head[1], ENOMEM, "calloc");
		/* The stream must stay in step: the bytes are read, not kept. */
		char sink[4096];
		while (len > 0) {
			size_t chunk = len < sizeof sink ? len : sizeof sink;
			if (read_exact(request_fd, sink, chunk) < 0)
				return -1;
			len -= (uint32_t)chunk;
		}
		return 0;
	}
	if (read_exact(request_fd, rest, len) < 0) {
		free(rest);
		return -1;
	}
	serve_fork(head[1], head + 2, hlen, rest, len);
	free(rest);
	return 0;
}

/* Every child that ended: an op, whose exit goes to the owner, or a process an
 * op left behind and the server adopted as subreaper, which is only reaped. The
 * server waits for no child by pid, so no status is taken from under a wait. */
static void reap(void)
{
	int status;
	pid_t pid;
	char line[120];

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < n_ops; i++) {
			if (ops[i].pid != pid)
				continue;
			snprintf(line, sizeof line, "{\"t\":\"exit\",\"id\":%u,\"code\":%d,\"signal\":%d}\n", ops[i].id,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			ops[i] = ops[--n_ops];
			send_or_exit(line, -1);
			break;
		}
	}
}

/* One more namespace for the pool: made by this process and left at once, so
 * that nothing of its own (nor any op it forks) is ever in it. Its loopback is
 * brought up here too, which `run`'s pid 1 then need not do (PROTOCOL.md,
 * `--netns-fd`). Root only: with no CAP_SYS_ADMIN (rootless) the pool stays
 * empty and `run` makes its own. */
static void netns_refill(void)
{
	struct dl_error e;
	int fd = -1;

	if (unshare(CLONE_NEWNET) < 0)
		goto off;
	if (dl_ns_loopback_up(&e) == 0)
		fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	/* Back in the owner's namespace, or no op may be forked from here again. */
	if (setns(host_netns, CLONE_NEWNET) < 0)
		_exit(DL_EXIT_FAILED);
	if (fd < 0)
		goto off;
	netns_pool[n_netns++] = fd;
	return;
off:
	/* Not allowed here (or out of descriptors, or no loopback to bring up): no pool, each run makes its own. */
	close(host_netns);
	host_netns = -1;
}

static int parse_fd(const char *s)
{
	unsigned long v;
	if (dl_parse_ulong(s, 10, INT_MAX, &v) < 0 || v < 3)
		dl_usage("fork-server", "bad descriptor `%s` (3 or above)", s);
	return (int)v;
}

int cmd_fork_server(int argc, char **argv)
{
	unsigned long parent = 0;
	sigset_t chld;
	struct dl_error e;
	char line[80], sink[512];
	int sfd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ipc-fd") == 0 && i + 1 < argc) {
			ipc_fd = parse_fd(argv[++i]);
		} else if (strcmp(argv[i], "--request-fd") == 0 && i + 1 < argc) {
			request_fd = parse_fd(argv[++i]);
		} else if (strcmp(argv[i], "--parent-pid") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &parent) < 0 || parent == 0)
				dl_usage("fork-server", "--parent-pid: bad number `%s`", argv[i]);
		} else {
			dl_usage("fork-server", "unknown option `%s`", argv[i]);
		}
	}
	if (ipc_fd < 0 || request_fd < 0 || parent == 0)
		dl_usage("fork-server", "--ipc-fd, --request-fd and --parent-pid are required");
	/* Dies with its owner, even by SIGKILL; the socket's EOF covers a thread that forked and left. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (pid_t)parent)
		return DL_EXIT_FAILED;
	/* A process an op leaves behind to finish on its own (run's teardown of a
	 * mount namespace) is adopted here and reaped, not by the pid namespace's
	 * init, which may never reap (Node as pid 1 in a CI container). Not
	 * inherited by the ops (fork clears it). */
	subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
	/* Node's channel variables; the ops had an empty environment when spawned, and still have. */
	clearenv();
	/* Every op forked from here is then a sealed copy too, and `run` need not seal itself. */
	if (dl_reexec_sealed(dl_main_argv, &e) < 0) {
		snprintf(line, sizeof line, "{\"t\":\"failed\",\"errno\":%d}\n", e.err);
		send_line(line, -1);
		return DL_EXIT_FAILED;
	}
	title = dl_main_argv[0];
	title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - title);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	host_netns = geteuid() == 0 ? open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (devnull < 0 || sfd < 0) {
		snprintf(line, sizeof line, "{\"t\":\"failed\",\"errno\":%d}\n", errno);
		send_line(line, -1);
		return DL_EXIT_FAILED;
	}
	/* Both are the owner's to read and write alone: an op gets neither (they are CLOEXEC and closed in the child). */
	fcntl(ipc_fd, F_SETFD, FD_CLOEXEC);
	fcntl(request_fd, F_SETFD, FD_CLOEXEC);
	fcntl(ipc_fd, F_SETFL, fcntl(ipc_fd, F_GETFL) & ~O_NONBLOCK);
	snprintf(line, sizeof line, "{\"t\":\"ready\",\"pid\":%d}\n", (int)getpid());
	send_or_exit(line, -1);

	for (;;) {
		struct pollfd p[3] = {{.fd = request_fd, .events = POLLIN}, {.fd = ipc_fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		bool refill = host_netns >= 0 && n_netns < NETNS_POOL;
		int ready = poll(p, 3, refill ? NETNS_IDLE_MS : -1);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			return DL_EXIT_FAILED;
		}
		/* Only once nothing has come for a while: a request is never held up for the pool. */
		if (ready == 0) {
			netns_refill();
			continue;
		}
		if (p[2].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			reap();
		}
		/* Node acknowledges each descriptor; nothing else comes this way. */
		if (p[1].revents) {
			ssize_t r = recv(ipc_fd, sink, sizeof sink, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				return DL_EXIT_OK;
		}
		if (p[0].revents && serve_request() < 0)
			return DL_EXIT_OK;
	}
}
