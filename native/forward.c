/* dockless-helper forward: a container's published ports (rootlesskit's
 * "builtin" port driver, Docker's userland proxy).
 *
 * The host sockets are bound first, in the caller's network namespace, so that
 * a port in use fails the launch before the container exists and no one can
 * take the port between the check and its use. Then the container's namespaces
 * arrive on stdin, the process joins them for good, and every socket it makes
 * from then on (the dialing side of each connection, a UDP client's socket) is
 * the container's: a connection to 127.0.0.1 reaches the container's loopback
 * whatever its network. Bytes move with splice(2) through a pipe per direction.
 * It exits when the container's pid 1 does (pidfd), with its parent unless
 * detached, and on SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "process.h"
#include "status.h"
#include "util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define MAX_PORTS 256
#define PIPE_BYTES (1 << 20)
#define UDP_IDLE_MS 60000
#define UDP_MAX_SESSIONS 4096

struct port {
	bool udp;
	int family;
	const char *host_ip;
	unsigned host_port;
	unsigned host_last; /* a range: the first free port from host_port to host_last */
	unsigned container_port;
	int fd;
};

struct forward_config {
	int status_fd;
	bool die_with_parent;
	pid_t parent_pid;
	unsigned ready_timeout_ms;
	const char *target_ip;
	size_t n_ports;
	struct port ports[MAX_PORTS];
};

enum kind { K_LISTEN, K_CONN, K_UDP_CLIENT, K_PIDFD };

/* What an epoll event points to. */
struct handle {
	enum kind kind;
	int side; /* K_CONN: 0 the host's end, 1 the container's */
	void *owner;
	uint32_t events; /* as registered, so that an unchanged interest costs no epoll_ctl */
};

struct conn {
	struct handle h[2];
	int fd[2];
	int pipe[2][2]; /* pipe[d]: bytes read from fd[d], to be written to fd[!d] */
	size_t queued[2];
	bool eof[2];
	bool connecting;
	bool dead;
	struct conn *next;
};

struct udp_session {
	struct handle h;
	struct port *port;
	int fd;
	struct sockaddr_storage client;
	socklen_t client_len;
	/* The host address the client sent to (a wildcard port's): the replies' source. */
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} local;
	bool has_local;
	struct timespec last;
	struct udp_session *next;
};

static int ep = -1;
static volatile sig_atomic_t terminated;
static struct conn *conns;
/* Closed during one batch of events, freed after it: a later event of the batch may point to them. */
static struct conn *dead;
static struct udp_session *sessions;
static size_t n_sessions;
static struct sockaddr_storage target4, target6;

static unsigned long parse_num(const char *opt, const char *s, unsigned long max)
{
	unsigned long v;

	if (dl_parse_ulong(s, 10, max, &v) < 0)
		dl_usage("forward", "%s: bad number `%s`", opt, s);
	return v;
}

static void parse_args(int argc, char **argv, struct forward_config *c)
{
	c->status_fd = 3;
	c->ready_timeout_ms = 10000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(a, "--status-fd") == 0 && more) {
			c->status_fd = (int)parse_num(a, argv[++i], INT_MAX);
		} else if (strcmp(a, "--die-with-parent") == 0 && more) {
			c->die_with_parent = true;
			c->parent_pid = (pid_t)parse_num(a, argv[++i], INT_MAX);
		} else if (strcmp(a, "--ready-timeout") == 0 && more) {
			c->ready_timeout_ms = (unsigned)parse_num(a, argv[++i], 600000);
		} else if (strcmp(a, "--target-ip") == 0 && more) {
			c->target_ip = argv[++i];
		} else if (strcmp(a, "--port") == 0 && i + 4 < argc) {
			struct port *p;
			unsigned char buf[sizeof(struct in6_addr)];

			if (c->n_ports == MAX_PORTS)
				dl_usage("forward", "more than %d ports", MAX_PORTS);
			p = &c->ports[c->n_ports++];
			if (strcmp(argv[i + 1], "tcp") == 0)
				p->udp = false;
			else if (strcmp(argv[i + 1], "udp") == 0)
				p->udp = true;
			else
				dl_usage("forward", "--port: protocol `%s` is not tcp or udp", argv[i + 1]);
			p->host_ip = argv[i + 2];
			if (inet_pton(AF_INET, p->host_ip, buf) == 1)
				p->family = AF_INET;
			else if (inet_pton(AF_INET6, p->host_ip, buf) == 1)
				p->family = AF_INET6;
			else
				dl_usage("forward", "--port: `%s` is not an IP address", p->host_ip);
			if (strchr(argv[i + 3], '-') == NULL) {
				p->host_port = p->host_last = (unsigned)parse_num(a, argv[i + 3], 65535);
			} else {
				char first[8];
				const char *dash = strchr(argv[i + 3], '-');
				size_t n = (size_t)(dash - argv[i + 3]);

				if (n == 0 || n >= sizeof first)
					dl_usage("forward", "--port: bad host port range `%s`", argv[i + 3]);
				memcpy(first, argv[i + 3], n);
				first[n] = '\0';
				p->host_port = (unsigned)parse_num(a, first, 65535);
				p->host_last = (unsigned)parse_num(a, dash + 1, 65535);
				if (p->host_port == 0 || p->host_last < p->host_port)
					dl_usage("forward", "--port: bad host port range `%s`", argv[i + 3]);
			}
			p->container_port = (unsigned)parse_num(a, argv[i + 4], 65535);
			if (p->container_port == 0)
				dl_usage("forward", "--port: container port 0");
			p->fd = -1;
			i += 4;
		} else {
			dl_usage("forward", "unknown option `%s`", a);
		}
	}
}

static void fill_addr(struct sockaddr_storage *ss, socklen_t *len, int family, const char *ip, unsigned port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s->sin_addr);
		*len = sizeof *s;
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s->sin6_addr);
		*len = sizeof *s;
	}
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int bind_port(struct port *p, struct dl_error *e)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;
	const char *proto = p->udp ? "udp" : "tcp";
	const char *l = p->family == AF_INET6 ? "[" : "", *r = p->family == AF_INET6 ? "]" : "";

	p->fd = socket(p->family, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return dl_fail_errno(e, "socket", "", "socket `%s`", proto);
	/* As every server does: a port whose last connections linger in TIME_WAIT is free. */
	if (!p->udp)
		setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (p->family == AF_INET6)
		setsockopt(p->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	/* On a wildcard address the kernel would pick a reply's source by its route to
	 * the client: a client that sent to another of the host's addresses drops it. */
	if (p->udp && p->family == AF_INET)
		setsockopt(p->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
	else if (p->udp)
		setsockopt(p->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
	/* A range: the first port no one holds, as Docker's allocator picks one. */
	for (unsigned port = p->host_port;; port++) {
		fill_addr(&ss, &len, p->family, p->host_ip, port);
		if (bind(p->fd, (struct sockaddr *)&ss, len) == 0)
			break;
		if (errno == EADDRINUSE && port < p->host_last)
			continue;
		if (p->host_last != p->host_port)
			return dl_fail_errno(e, "bind", "", "bind `%s%s%s:%u-%u/%s`", l, p->host_ip, r, p->host_port, p->host_last, proto);
		return dl_fail_errno(e, "bind", "", "bind `%s%s%s:%u/%s`", l, p->host_ip, r, p->host_port, proto);
	}
	if (!p->udp && listen(p->fd, 511) < 0)
		return dl_fail_errno(e, "listen", "", "listen `%s%s%s:%u/%s`", l, p->host_ip, r, p->host_port, proto);
	len = sizeof ss;
	if (getsockname(p->fd, (struct sockaddr *)&ss, &len) < 0)
		return dl_fail_errno(e, "bind", "", "getsockname `%s%s%s:%u/%s`", l, p->host_ip, r, p->host_port, proto);
	p->host_port = port_of(&ss);
	return 0;
}

static void status_port(const struct port *p)
{
	char line[256];
	int n = snprintf(line, sizeof line,
			 "{\"type\":\"port\",\"protocol\":\"%s\",\"hostIp\":\"%s\",\"host\":%u,\"container\":%u}\n",
			 p->udp ? "udp" : "tcp", p->host_ip, p->host_port, p->container_port);

	if (dl_status_fd() >= 0 && n > 0 && (size_t)n < sizeof line)
		dl_write_all(dl_status_fd(), line, (size_t)n);
}

static unsigned long long stat_start_time(pid_t pid, struct dl_error *e)
{
	unsigned long long start;

	if (dl_proc_start_time(pid, &start) < 0)
		return dl_fail(e, errno, "forward target", "", "read `/proc/%d/stat`", (int)pid), 0;
	return start;
}

/* stdin: PID, its start time, the net namespace's path, the user namespace's
 * path or "", then the outbound helper's argv or nothing; each NUL-terminated. */
struct target {
	pid_t pid;
	unsigned long long start;
	const char *netns;
	const char *userns;
	char **outbound;
};

static int read_target(struct target *t, struct dl_error *e)
{
	char *buf, *p, *end;
	size_t len, n = 0, cap = 8;
	char **fields;

	if (dl_read_to_end(STDIN_FILENO, &buf, &len) < 0)
		return dl_fail_errno(e, "read", "", "read `stdin`");
	if (len == 0)
		return 1;
	fields = dl_xcalloc(cap, sizeof *fields);
	for (p = buf, end = buf + len; p < end;) {
		char *z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			return dl_fail(e, EINVAL, "read", "", "read `stdin`: a field without its NUL");
		if (n + 2 > cap) {
			cap *= 2;
			fields = realloc(fields, cap * sizeof *fields);
			if (fields == NULL)
				return dl_fail(e, ENOMEM, "calloc", "", "realloc `fields`");
		}
		fields[n++] = p;
		p = z + 1;
	}
	fields[n] = NULL;
	if (n < 4)
		return dl_fail(e, EINVAL, "read", "", "read `stdin`: expected pid, start time, netns, userns");
	t->pid = (pid_t)strtol(fields[0], NULL, 10);
	t->start = strtoull(fields[1], NULL, 10);
	t->netns = fields[2];
	t->userns = fields[3];
	t->outbound = n > 4 ? &fields[4] : NULL;
	return 0;
}

/* Both opened before either is joined: once in the container's user namespace,
 * no process may open the shim's files any more (it is no longer in the shim's
 * user namespace, and ptrace access across them takes CAP_SYS_PTRACE in the host's). */
static int open_ns(const struct target *t, int *net, int *user, struct dl_error *e)
{
	*net = open(t->netns, O_RDONLY | O_CLOEXEC);
	if (*net < 0)
		return dl_fail_errno(e, "setns", t->netns, "open `%s`", t->netns);
	if (t->userns[0] != '\0') {
		*user = open(t->userns, O_RDONLY | O_CLOEXEC);
		if (*user < 0)
			return dl_fail_errno(e, "setns", t->userns, "open `%s`", t->userns);
	}
	return 0;
}

static int join(const struct target *t, int net, int user, struct dl_error *e)
{
	if (user >= 0 && setns(user, CLONE_NEWUSER) < 0)
		return dl_fail_errno(e, "setns", t->userns, "setns `%s`", t->userns);
	if (setns(net, CLONE_NEWNET) < 0)
		return dl_fail_errno(e, "setns", t->netns, "setns `%s`", t->netns);
	return 0;
}

/* The outbound helper's stderr, read for the error message when it fails. */
static int outbound_err = -1;

/* The helper gets the namespaces as its fds 3 (net) and 4 (user), which it
 * opens as /proc/self/fd/3 and /proc/self/fd/4: for the same reason as in
 * open_ns, it could not open the shim's once it joined the user namespace. */
static pid_t start_outbound(char **argv, int net, int user, struct dl_error *e)
{
	pid_t parent = getpid();
	int errp[2];
	pid_t pid;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return dl_fail_errno(e, "pipe", "", "pipe2 `%s`", argv[0]);
	pid = fork();
	if (pid < 0)
		return dl_fail_errno(e, "fork", "", "fork `%s`", argv[0]);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		dup2(errp[1], STDERR_FILENO);
		/* Through a number above both targets: NET or USER may already be 3 or 4. */
		net = fcntl(net, F_DUPFD, 10);
		user = user >= 0 ? fcntl(user, F_DUPFD, 10) : -1;
		if (net < 0 || dup2(net, 3) < 0 || (user >= 0 && dup2(user, 4) < 0))
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Debian 12's pasta takes `signal(SIGPIPE, SIG_IGN)` returning SIG_IGN (inherited from
		 * this process) for a failure, and exits "Couldn't install signal handlers". */
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		dprintf(STDERR_FILENO, "dockless-helper forward: execv `%s`: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(errp[1]);
	outbound_err = errp[0];
	fcntl(outbound_err, F_SETFL, O_NONBLOCK);
	return pid;
}

/* The end of what the outbound helper wrote on stderr, its lines joined by "; ". */
static const char *outbound_said(void)
{
	static char buf[4096];
	size_t len = 0;
	ssize_t n;
	char *p;

	while (outbound_err >= 0 && len < sizeof buf - 1 &&
	       (n = read(outbound_err, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	for (p = buf; *p; p++)
		if (*p == '\n')
			*p = ';';
	return len > 200 ? buf + len - 200 : buf;
}

static bool has_default_route(void)
{
	char buf[8192];
	_cleanup_close_ int fd = open("/proc/self/net/route", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *line;

	if (fd < 0)
		return false;
	n = dl_read_retry(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* Iface Destination Gateway …: a default route has destination 00000000. */
	for (line = strchr(buf, '\n'); line != NULL && line[1] != '\0'; line = strchr(line + 1, '\n')) {
		char iface[64], dest[16];
		if (sscanf(line + 1, "%63s %15s", iface, dest) == 2 && strcmp(dest, "00000000") == 0)
			return true;
	}
	return false;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends the outbound helper and waits for it: nothing of the container's network outlives this process. */
static void end_outbound(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The outbound helper (pasta, slirp4netns) is ready once the namespace has its
 * default route. An old pasta that cannot open /dev/net/tun hangs instead of
 * failing: hence the deadline. */
static int wait_outbound(pid_t pid, const char *name, unsigned timeout_ms, struct dl_error *e)
{
	long long deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		if (has_default_route())
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return dl_fail(e, ENETUNREACH, "outbound", "", "run `%s`: exited with %d before the network was set up: %s",
				       name, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), outbound_said());
		if (now_ms() >= deadline) {
			end_outbound(pid);
			return dl_fail(e, ETIMEDOUT, "outbound", "",
				       "run `%s`: no network after %u ms (can it open /dev/net/tun?) %s", name, timeout_ms, outbound_said());
		}
		usleep(5000);
	}
}

static void ep_set(int fd, struct handle *h, uint32_t events, bool add)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	if (!add && h->events == events)
		return;
	h->events = events;
	epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

static void conn_close(struct conn *c)
{
	struct conn **pp;

	for (int d = 0; d < 2; d++) {
		if (c->fd[d] >= 0)
			close(c->fd[d]);
		if (c->pipe[d][0] >= 0)
			close(c->pipe[d][0]);
		if (c->pipe[d][1] >= 0)
			close(c->pipe[d][1]);
	}
	for (pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->dead = true;
	c->next = dead;
	dead = c;
}

/* Closes both ends with a reset, as a refused or broken connection looks to the peer. */
static void conn_abort(struct conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (c->fd[0] >= 0)
		setsockopt(c->fd[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	conn_close(c);
}

static void conn_update(struct conn *c)
{
	uint32_t ev[2] = {0, 0};

	if (c->connecting) {
		ep_set(c->fd[1], &c->h[1], EPOLLOUT, false);
		ep_set(c->fd[0], &c->h[0], 0, false);
		return;
	}
	for (int d = 0; d < 2; d++) {
		if (c->queued[d] > 0)
			ev[!d] |= EPOLLOUT;
		else if (!c->eof[d])
			ev[d] |= EPOLLIN;
	}
	ep_set(c->fd[0], &c->h[0], ev[0] | EPOLLRDHUP, false);
	ep_set(c->fd[1], &c->h[1], ev[1] | EPOLLRDHUP, false);
}

/* Moves what it can in direction D; returns -1 when the connection broke. */
static int pump(struct conn *c, int d)
{
	for (;;) {
		ssize_t n;

		if (c->queued[d] > 0) {
			n = splice(c->pipe[d][0], NULL, c->fd[!d], NULL, c->queued[d], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EAGAIN)
					return 0;
				if (errno == EINTR)
					continue;
				return -1;
			}
			c->queued[d] -= (size_t)n;
			continue;
		}
		if (c->eof[d])
			return 0;
		n = splice(c->fd[d], NULL, c->pipe[d][1], NULL, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == 0) {
			c->eof[d] = true;
			shutdown(c->fd[!d], SHUT_WR);
			return 0;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->queued[d] += (size_t)n;
	}
}

static void conn_event(struct conn *c, int side, uint32_t events)
{
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;

		(void)side;
		getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			conn_abort(c);
			return;
		}
		c->connecting = false;
	}
	if (pump(c, 0) < 0 || pump(c, 1) < 0) {
		conn_abort(c);
		return;
	}
	if (c->eof[0] && c->eof[1] && c->queued[0] == 0 && c->queued[1] == 0) {
		conn_close(c);
		return;
	}
	conn_update(c);
}

/* One address for every listener, IPv4 or IPv6 alike: the container may listen on IPv4 only, as Docker's proxy assumes. */
static socklen_t target_addr(unsigned port, struct sockaddr_storage *ss)
{
	if (target4.ss_family == AF_INET) {
		*ss = target4;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return sizeof(struct sockaddr_in);
	}
	*ss = target6;
	((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	return sizeof(struct sockaddr_in6);
}

static void tcp_accept(struct port *p)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = target_addr(p->container_port, &ss);
		struct conn *c;
		int client, one = 1;

		client = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (client < 0)
			return;
		c = calloc(1, sizeof *c);
		if (c == NULL) {
			close(client);
			return;
		}
		c->fd[0] = client;
		c->fd[1] = -1;
		for (int d = 0; d < 2; d++) {
			c->pipe[d][0] = c->pipe[d][1] = -1;
			c->h[d] = (struct handle){.kind = K_CONN, .side = d, .owner = c};
		}
		c->next = conns;
		conns = c;
		c->fd[1] = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd[1] < 0 || pipe2(c->pipe[0], O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(c->pipe[1], O_NONBLOCK | O_CLOEXEC) < 0) {
			conn_abort(c);
			continue;
		}
		/* Larger pipes move more per splice; the default 64 KiB costs throughput. A refusal (above pipe-max-size) is no error. */
		fcntl(c->pipe[0][1], F_SETPIPE_SZ, PIPE_BYTES);
		fcntl(c->pipe[1][1], F_SETPIPE_SZ, PIPE_BYTES);
		setsockopt(c->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(c->fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->connecting = true;
		if (connect(c->fd[1], (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			conn_abort(c);
			continue;
		}
		ep_set(c->fd[0], &c->h[0], 0, true);
		ep_set(c->fd[1], &c->h[1], EPOLLOUT, true);
	}
}

static void session_close(struct udp_session *s)
{
	struct udp_session **pp;

	close(s->fd);
	for (pp = &sessions; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	n_sessions--;
	free(s);
}

static struct udp_session *session_for(struct port *p, const struct sockaddr_storage *from, socklen_t len)
{
	struct udp_session *s;
	struct sockaddr_storage ss;
	socklen_t tlen;

	for (s = sessions; s != NULL; s = s->next)
		if (s->port == p && s->client_len == len && memcmp(&s->client, from, len) == 0)
			return s;
	if (n_sessions >= UDP_MAX_SESSIONS) {
		/* The oldest goes: a flood of sources must not exhaust fds. */
		struct udp_session *oldest = sessions;
		for (s = sessions; s != NULL; s = s->next)
			if (s->last.tv_sec < oldest->last.tv_sec)
				oldest = s;
		session_close(oldest);
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	tlen = target_addr(p->container_port, &ss);
	s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Connected: only the container's replies come back on it. */
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&ss, tlen) < 0) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return NULL;
	}
	s->h = (struct handle){.kind = K_UDP_CLIENT, .owner = s};
	s->port = p;
	memcpy(&s->client, from, len);
	s->client_len = len;
	s->next = sessions;
	sessions = s;
	n_sessions++;
	ep_set(s->fd, &s->h, EPOLLIN, true);
	return s;
}

static void udp_from_host(struct port *p)
{
	static char buf[65536];

	for (;;) {
		struct sockaddr_storage from;
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
		struct msghdr m = {.msg_name = &from,
				   .msg_namelen = sizeof from,
				   .msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = control.buf,
				   .msg_controllen = sizeof control.buf};
		struct udp_session *s;
		struct cmsghdr *c;
		ssize_t n = recvmsg(p->fd, &m, 0);

		if (n < 0)
			return;
		s = session_for(p, &from, m.msg_namelen);
		if (s == NULL)
			continue;
		for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				memcpy(&s->local.v4, CMSG_DATA(c), sizeof s->local.v4);
				/* The source to answer from; the interface is left to the route. */
				s->local.v4.ipi_spec_dst = s->local.v4.ipi_addr;
				s->local.v4.ipi_ifindex = 0;
				s->has_local = true;
			} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				memcpy(&s->local.v6, CMSG_DATA(c), sizeof s->local.v6);
				/* A link-local address is only valid with its interface. */
				if (!IN6_IS_ADDR_LINKLOCAL(&s->local.v6.ipi6_addr))
					s->local.v6.ipi6_ifindex = 0;
				s->has_local = true;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &s->last);
		send(s->fd, buf, (size_t)n, 0);
	}
}

static void udp_from_container(struct udp_session *s)
{
	static char buf[65536];

	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = buf};
		struct msghdr m = {.msg_name = &s->client, .msg_namelen = s->client_len, .msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recv(s->fd, buf, sizeof buf, 0);

		if (n < 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &s->last);
		iov.iov_len = (size_t)n;
		if (s->has_local) {
			bool v4 = s->port->family == AF_INET;
			size_t size = v4 ? sizeof s->local.v4 : sizeof s->local.v6;
			struct cmsghdr *c;

			memset(&control, 0, sizeof control);
			m.msg_control = control.buf;
			m.msg_controllen = CMSG_SPACE(size);
			c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
			c->cmsg_type = v4 ? IP_PKTINFO : IPV6_PKTINFO;
			c->cmsg_len = CMSG_LEN(size);
			memcpy(CMSG_DATA(c), v4 ? (void *)&s->local.v4 : (void *)&s->local.v6, size);
		}
		sendmsg(s->port->fd, &m, 0);
	}
}

static void expire_sessions(void)
{
	struct timespec now;
	struct udp_session *s, *next;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if ((now.tv_sec - s->last.tv_sec) * 1000 > UDP_IDLE_MS)
			session_close(s);
	}
}

static int set_target(const char *ip, struct dl_error *e)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&target4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&target6;

	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return dl_fail(e, EINVAL, "forward target", "", "inet_pton `%s`", ip);
}

static void on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

static int serve(struct forward_config *c, int pidfd)
{
	struct handle listen_h[MAX_PORTS], pid_h = {.kind = K_PIDFD};
	struct epoll_event events[64];

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	for (size_t i = 0; i < c->n_ports; i++) {
		listen_h[i] = (struct handle){.kind = K_LISTEN, .owner = &c->ports[i]};
		ep_set(c->ports[i].fd, &listen_h[i], EPOLLIN, true);
	}
	ep_set(pidfd, &pid_h, EPOLLIN, true);
	for (;;) {
		int n = epoll_wait(ep, events, 64, sessions != NULL ? 5000 : -1);

		if (terminated)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct handle *h = events[i].data.ptr;

			switch (h->kind) {
			case K_PIDFD:
				return 0;
			case K_LISTEN: {
				struct port *p = h->owner;
				if (p->udp)
					udp_from_host(p);
				else
					tcp_accept(p);
				break;
			}
			case K_CONN:
				if (!((struct conn *)h->owner)->dead)
					conn_event(h->owner, h->side, events[i].events);
				break;
			case K_UDP_CLIENT:
				udp_from_container(h->owner);
				break;
			default:
				break;
			}
		}
		while (dead != NULL) {
			struct conn *next = dead->next;
			free(dead);
			dead = next;
		}
		if (sessions != NULL)
			expire_sessions();
	}
}

int cmd_forward(int argc, char **argv)
{
	static struct forward_config c;
	struct dl_error e;
	struct target t = {0};
	_cleanup_close_ int pidfd = -1, net = -1, user = -1;
	pid_t outbound = -1;
	int r;

	parse_args(argc, argv, &c);
	dl_status_init(c.status_fd);
	signal(SIGPIPE, SIG_IGN);
	if (c.die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c.parent_pid) {
			dl_fail(&e, 0, "die-with-parent", "", "getppid `%d`: the parent is gone", (int)c.parent_pid);
			goto fail;
		}
	}
	if (set_target(c.target_ip != NULL ? c.target_ip : "127.0.0.1", &e) < 0)
		goto fail;
	for (size_t i = 0; i < c.n_ports; i++) {
		if (bind_port(&c.ports[i], &e) < 0)
			goto fail;
		status_port(&c.ports[i]);
	}
	dl_status_simple("bound");

	r = read_target(&t, &e);
	if (r < 0)
		goto fail;
	if (r > 0)
		return DL_EXIT_OK; /* the caller gave up: no container */
	/* A quick command may be over already: then there is nothing to forward, and no failure. */
	pidfd = (int)syscall(SYS_pidfd_open, t.pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		goto gone;
	if (pidfd < 0) {
		dl_fail_errno(&e, "forward target", "", "pidfd_open `%d`", (int)t.pid);
		goto fail;
	}
	if (stat_start_time(t.pid, &e) != t.start)
		goto gone;
	if (open_ns(&t, &net, &user, &e) < 0) {
		/* The shim holding the namespaces ends with the container. */
		if (poll(&(struct pollfd){.fd = pidfd, .events = POLLIN}, 1, 0) == 1)
			goto gone;
		goto fail;
	}
	/* Forked before the joins: the outbound helper works from the host's namespaces. */
	if (t.outbound != NULL) {
		outbound = start_outbound(t.outbound, net, user, &e);
		if (outbound < 0)
			goto fail;
	}
	if (join(&t, net, user, &e) < 0)
		goto fail;
	/* A change of credentials (the user namespace) may clear it. */
	if (c.die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c.parent_pid)
			return DL_EXIT_OK;
	}
	if (outbound > 0 && wait_outbound(outbound, t.outbound[0], c.ready_timeout_ms, &e) < 0)
		goto fail;
	dl_status_simple("ready");
	/* SIGTERM (remove) ends it through the loop, so that the outbound helper is reaped first. */
	sigaction(SIGTERM, &(struct sigaction){.sa_handler = on_term}, NULL);
	if (serve(&c, pidfd) < 0) {
		dl_fail_errno(&e, "epoll_wait", "", "epoll_wait `forward`");
		goto fail;
	}
	end_outbound(outbound);
	return DL_EXIT_OK;
gone:
	dl_status_simple("ready");
	return DL_EXIT_OK;
fail:
	end_outbound(outbound);
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}
