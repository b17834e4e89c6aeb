/* probe: a tiny static program that integration tests put inside throwaway rootfs
 * directories and ask one question per run: `probe QUESTION [ARGS…]`.
 *
 * Answers go to stdout. A failure exits 1 and prints the errno name (EPERM): on
 * stdout for the probes that try an action and answer `ok` (mount, write, mknod,
 * kill, sethostname, unshare-user, ptrace, open-fd, open, chown, mkdir,
 * init-module, capset-raise, and ptrace-keyctl, which answers the injected
 * syscall's result), on stderr for the probes that print data (cat, ls, stat,
 * readlink, status, rlimit, keyring, …), so that their stdout holds only data. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <sys/user.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static int fail_to(FILE *f, int err)
{
	const char *name = strerrorname_np(err);

	if (name)
		fprintf(f, "%s\n", name);
	else
		fprintf(f, "E%d\n", err);
	return 1;
}

/* An action failed: its answer is the errno name. */
static int fail_errno(int err)
{
	return fail_to(stdout, err);
}

/* A data probe failed: stdout stays data-only. */
static int fail_data(int err)
{
	return fail_to(stderr, err);
}

static int need(int argc, int n)
{
	if (argc < n + 2) {
		fprintf(stderr, "probe: missing argument\n");
		exit(2);
	}
	return 0;
}

static int cat_fd(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return fail_data(errno);
	return n < 0 ? fail_data(errno) : 0;
}

static int cat_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return fail_data(errno);
	rc = cat_fd(fd);
	close(fd);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the names in DIR, sorted, one per line; with NUMERIC only all-digit names. */
static int list_dir(const char *path, int numeric, int skip_fd)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char *names[4096];
	size_t n = 0;

	if (d == NULL)
		return fail_data(errno);
	while ((de = readdir(d)) != NULL && n < sizeof names / sizeof names[0]) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (numeric && strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		if (skip_fd >= 0 && atoi(de->d_name) == skip_fd)
			continue;
		names[n++] = strdup(de->d_name);
	}
	if (numeric) {
		/* numeric order for pids and fds */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && atol(names[j - 1]) > atol(names[j]); j--) {
				char *t = names[j];
				names[j] = names[j - 1];
				names[j - 1] = t;
			}
	} else {
		qsort(names, n, sizeof names[0], cmp_str);
	}
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	closedir(d);
	return 0;
}

static const char *file_type(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "dir";
	case S_IFLNK:
		return "symlink";
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	}
	return "unknown";
}

/* What an attacker with CAP_SYS_PTRACE does to get around the container's
 * seccomp filter: attach to PID, make it run keyctl(KEYCTL_GET_KEYRING_ID) (a
 * syscall Docker's profile denies) and print its answer: the id, or the errno
 * name of the refusal. The tracee is put back as it was. */
static int ptrace_keyctl(pid_t pid)
{
#if defined(__x86_64__)
	struct user_regs_struct saved, regs;
	long word;
	int status, rc = 0;

	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
		return fail_errno(errno);
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0 || waitpid(pid, &status, __WALL) < 0 ||
	    ptrace(PTRACE_GETREGS, pid, NULL, &saved) < 0) {
		rc = fail_errno(errno);
		goto out;
	}
	/* Stopped in a syscall (the init waits in rt_sigtimedwait): the `syscall`
	 * instruction (0f 05) is right before the instruction pointer. */
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, pid, (void *)(saved.rip - 2), NULL);
	if (errno != 0 || (word & 0xffff) != 0x050f) {
		fprintf(stdout, "not in a syscall\n");
		rc = 1;
		goto out;
	}
	regs = saved;
	regs.rip = saved.rip - 2;
	regs.orig_rax = (unsigned long long)-1;
	regs.rax = SYS_keyctl;
	regs.rdi = KEYCTL_GET_KEYRING_ID;
	regs.rsi = (unsigned long long)(long long)KEY_SPEC_SESSION_KEYRING;
	regs.rdx = 0;
	if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) < 0) {
		rc = fail_errno(errno);
		goto out;
	}
	/* To the syscall's entry, then to its exit. */
	for (int stop = 0; stop < 2; stop++) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) < 0 || waitpid(pid, &status, __WALL) < 0) {
			rc = fail_errno(errno);
			goto out;
		}
		if (!WIFSTOPPED(status)) {
			fprintf(stdout, "tracee gone\n");
			return 1;
		}
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0) {
		rc = fail_errno(errno);
		goto out;
	}
	if ((long long)regs.rax < 0 && (long long)regs.rax > -4096)
		rc = fail_errno((int)-(long long)regs.rax);
	else
		printf("%lld\n", (long long)regs.rax);
	/* Put back so that its interrupted wait is restarted. */
	if ((long long)saved.orig_rax >= 0 && (long long)saved.rax <= -512 && (long long)saved.rax >= -516) {
		saved.rax = saved.orig_rax;
		saved.rip -= 2;
	}
	ptrace(PTRACE_SETREGS, pid, NULL, &saved);
out:
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return rc;
#else
	(void)pid;
	printf("unsupported\n");
	return 1;
#endif
}

static void on_term(int sig)
{
	(void)sig;
}

static int signal_number(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		     {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
		     {"CONT", SIGCONT}, {"ALRM", SIGALRM}, {"CHLD", SIGCHLD}, {"PIPE", SIGPIPE}};

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(names[i].name, s) == 0)
			return names[i].sig;
	return atoi(s);
}


/* NAME's IPv4 address from /etc/hosts (what the runtime keeps current on a
 * network), or NAME itself as an address; a static libc has no NSS to ask. */
static int hosts_lookup(const char *name, struct in_addr *out)
{
	char line[512];
	FILE *f;

	if (inet_pton(AF_INET, name, out) == 1)
		return 0;
	f = fopen("/etc/hosts", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *save = NULL, *ip = strtok_r(line, " \t\n", &save), *w;
		if (ip == NULL || ip[0] == '#')
			continue;
		while ((w = strtok_r(NULL, " \t\n", &save)) != NULL) {
			if (strcmp(w, name) == 0 && inet_pton(AF_INET, ip, out) == 1) {
				fclose(f);
				return 0;
			}
		}
	}
	fclose(f);
	return -1;
}

/* A server on 0.0.0.0:PORT: `echo` sends every byte back; `sink` reads to EOF and answers the byte count. */
static int serve_tcp(int port, int sink)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGCHLD, SIG_IGN);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0)
		return fail_data(errno);
	printf("listening\n");
	for (;;) {
		static char buf[1 << 16];
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			unsigned long long total = 0;
			ssize_t n;
			while ((n = read(c, buf, sizeof buf)) > 0) {
				total += (unsigned long long)n;
				if (!sink && write(c, buf, (size_t)n) != n)
					_exit(1);
			}
			if (sink)
				dprintf(c, "%llu\n", total);
			_exit(0);
		}
		close(c);
	}
}

static int echo_udp(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
		return fail_data(errno);
	printf("listening\n");
	for (;;) {
		char buf[2048], out[2100];
		struct sockaddr_in from;
		socklen_t len = sizeof from;
		ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		buf[n] = '\0';
		n = snprintf(out, sizeof out, "echo:%s", buf);
		sendto(s, out, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
}

/* Connects to HOST:PORT, sends MSG, closes its side and prints what comes back. */
static int ask_tcp(const char *host, int port, const char *msg)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	char buf[4096];
	ssize_t n;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return fail_errno(EINVAL);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		return fail_errno(errno);
	if (write(s, msg, strlen(msg)) < 0)
		return fail_errno(errno);
	shutdown(s, SHUT_WR);
	while ((n = read(s, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	printf("\n");
	return 0;
}

/* Sends MIB MiB to HOST:PORT (a sink-tcp), and prints the byte count the sink read and the seconds it took. */
static int send_tcp(const char *host, int port, int mib)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	static char buf[1 << 20];
	char reply[64];
	struct timespec t0, t1;
	ssize_t n;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return fail_errno(EINVAL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		return fail_errno(errno);
	for (int i = 0; i < mib; i++)
		for (size_t off = 0; off < sizeof buf; off += (size_t)n)
			if ((n = write(s, buf + off, sizeof buf - off)) <= 0)
				return fail_errno(errno);
	shutdown(s, SHUT_WR);
	n = read(s, reply, sizeof reply - 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	reply[n > 0 ? n - 1 : 0] = '\0';
	printf("%s %.6f\n", reply, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	const char *q = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(q, "hostname") == 0) {
		char buf[256];
		if (gethostname(buf, sizeof buf) < 0)
			return fail_data(errno);
		printf("%s\n", buf);
	} else if (strcmp(q, "pid") == 0) {
		printf("%d\n", (int)getpid());
	} else if (strcmp(q, "ppid") == 0) {
		printf("%d\n", (int)getppid());
	} else if (strcmp(q, "uid") == 0) {
		printf("%u %u\n", (unsigned)getuid(), (unsigned)getgid());
	} else if (strcmp(q, "id") == 0) {
		gid_t groups[256];
		int n = getgroups(256, groups);
		if (n < 0)
			return fail_data(errno);
		printf("%u %u", (unsigned)getuid(), (unsigned)getgid());
		for (int i = 0; i < n; i++)
			printf("%s%u", i ? "," : " ", (unsigned)groups[i]);
		printf("\n");
	} else if (strcmp(q, "cwd") == 0) {
		char buf[4096];
		if (getcwd(buf, sizeof buf) == NULL)
			return fail_data(errno);
		printf("%s\n", buf);
	} else if (strcmp(q, "env") == 0) {
		need(argc, 1);
		const char *v = getenv(argv[2]);
		if (v == NULL) {
			printf("unset\n");
			return 1;
		}
		printf("%s\n", v);
	} else if (strcmp(q, "cat") == 0) {
		need(argc, 1);
		return cat_path(argv[2]);
	} else if (strcmp(q, "write") == 0) {
		need(argc, 2);
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail_errno(errno);
		if (write(fd, argv[3], strlen(argv[3])) < 0)
			return fail_errno(errno);
		if (close(fd) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "ls") == 0) {
		need(argc, 1);
		return list_dir(argv[2], 0, -1);
	} else if (strcmp(q, "stat") == 0) {
		struct stat st;
		need(argc, 1);
		if (lstat(argv[2], &st) < 0)
			return fail_data(errno);
		printf("%o %u %u %s", (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid,
		       file_type(st.st_mode));
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			printf(" %u:%u", major(st.st_rdev), minor(st.st_rdev));
		printf("\n");
	} else if (strcmp(q, "exit") == 0) {
		need(argc, 1);
		return atoi(argv[2]);
	} else if (strcmp(q, "sleep") == 0) {
		need(argc, 1);
		double s = atof(argv[2]);
		struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	} else if (strcmp(q, "mounts") == 0) {
		return cat_path("/proc/self/mountinfo");
	} else if (strcmp(q, "fds") == 0) {
		/* opendir's own fd is left out */
		DIR *d = opendir("/proc/self/fd");
		if (d == NULL)
			return fail_data(errno);
		int own = dirfd(d);
		closedir(d);
		return list_dir("/proc/self/fd", 1, own);
	} else if (strcmp(q, "mount") == 0) {
		need(argc, 2);
		if (mount(argv[2], argv[3], argv[2], 0, NULL) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "mknod") == 0) {
		/* mknod PATH: a char device 1:3; mknod PATH c|b MAJOR MINOR: that node */
		need(argc, 1);
		mode_t type = S_IFCHR;
		dev_t dev = makedev(1, 3);
		if (argc >= 6) {
			type = strcmp(argv[3], "b") == 0 ? S_IFBLK : S_IFCHR;
			dev = makedev((unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]));
		}
		if (mknod(argv[2], type | 0666, dev) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "open") == 0) {
		/* open PATH r|w|rw: open it that way and read a byte when readable */
		need(argc, 2);
		int flags = strcmp(argv[3], "w") == 0 ? O_WRONLY : strcmp(argv[3], "rw") == 0 ? O_RDWR : O_RDONLY;
		int fd = open(argv[2], flags | O_CLOEXEC);
		char byte;
		if (fd < 0)
			return fail_errno(errno);
		if (flags != O_WRONLY && read(fd, &byte, 1) < 0)
			return fail_errno(errno);
		close(fd);
		printf("ok\n");
	} else if (strcmp(q, "readlink") == 0) {
		char buf[4096];
		need(argc, 1);
		ssize_t n = readlink(argv[2], buf, sizeof buf - 1);
		if (n < 0)
			return fail_data(errno);
		buf[n] = '\0';
		printf("%s\n", buf);
	} else if (strcmp(q, "chown") == 0) {
		need(argc, 3);
		if (chown(argv[2], (uid_t)atoi(argv[3]), (gid_t)atoi(argv[4])) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "mkdir") == 0) {
		need(argc, 1);
		if (mkdir(argv[2], 0755) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "shmget") == 0) {
		/* shmget KEY: makes a SysV shared memory segment of KEY (decimal) in the ipc namespace */
		need(argc, 1);
		int id = shmget((key_t)atoi(argv[2]), 4096, IPC_CREAT | 0600);
		if (id < 0)
			return fail_errno(errno);
		printf("%d\n", id);
	} else if (strcmp(q, "init-module") == 0) {
		/* Loading any module: the permission check comes before the image is looked at. */
		static const char image[64];
		if (syscall(SYS_init_module, image, sizeof image, "") < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "finit-module") == 0) {
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		if (syscall(SYS_finit_module, fd, "", 0) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "capset-raise") == 0) {
		/* capset-raise N: add capability N to the permitted and effective sets */
		need(argc, 1);
		struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
		struct __user_cap_data_struct data[2];
		int cap = atoi(argv[2]);
		if (syscall(SYS_capget, &hdr, data) < 0)
			return fail_errno(errno);
		data[cap / 32].permitted |= 1u << (cap % 32);
		data[cap / 32].effective |= 1u << (cap % 32);
		if (syscall(SYS_capset, &hdr, data) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "status") == 0) {
		/* status FIELD: the value of one /proc/self/status line, e.g. CapEff */
		FILE *f = fopen("/proc/self/status", "re");
		char line[512];
		size_t n;
		need(argc, 1);
		if (f == NULL)
			return fail_data(errno);
		n = strlen(argv[2]);
		while (fgets(line, sizeof line, f))
			if (strncmp(line, argv[2], n) == 0 && line[n] == ':') {
				char *v = line + n + 1;
				while (*v == ' ' || *v == '\t')
					v++;
				fputs(v, stdout);
				fclose(f);
				return 0;
			}
		fclose(f);
		return fail_data(ENOENT);
	} else if (strcmp(q, "rlimit") == 0) {
		/* rlimit nofile|nproc|core|stack: "soft hard", -1 for unlimited */
		static const struct {
			const char *name;
			int resource;
		} names[] = {{"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"core", RLIMIT_CORE}, {"stack", RLIMIT_STACK}};
		struct rlimit rl;
		need(argc, 1);
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strcmp(names[i].name, argv[2]) == 0) {
				if (getrlimit(names[i].resource, &rl) < 0)
					return fail_data(errno);
				printf("%lld %lld\n", rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
				       rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
				return 0;
			}
		return fail_data(EINVAL);
	} else if (strcmp(q, "hog") == 0) {
		/* hog MB: allocate and touch MB MiB, one MiB at a time; `ok` if it got them all */
		need(argc, 1);
		long mb = atol(argv[2]);
		for (long i = 0; i < mb; i++) {
			char *p = malloc(1 << 20);
			if (p == NULL)
				return fail_errno(ENOMEM);
			memset(p, 1, 1 << 20);
		}
		printf("ok\n");
	} else if (strcmp(q, "udp-echo") == 0) {
		/* udp-echo PORT: prints each datagram received on PORT and answers `echo:` + it, forever */
		struct sockaddr_in a = {.sin_family = AF_INET};
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		need(argc, 1);
		a.sin_port = htons((uint16_t)atoi(argv[2]));
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
			return fail_errno(errno);
		for (;;) {
			char buf[512], reply[520];
			struct sockaddr_in from;
			socklen_t len = sizeof from;
			ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
			if (n < 0)
				return fail_errno(errno);
			buf[n] = '\0';
			printf("%s\n", buf);
			fflush(stdout);
			n = snprintf(reply, sizeof reply, "echo:%s", buf);
			sendto(fd, reply, (size_t)n, 0, (struct sockaddr *)&from, len);
		}
	} else if (strcmp(q, "udp-send") == 0) {
		/* udp-send NAME PORT MSG: sends MSG until an answer comes (30 tries, 200 ms apart), prints it */
		struct sockaddr_in a = {.sin_family = AF_INET};
		struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		need(argc, 3);
		if (hosts_lookup(argv[2], &a.sin_addr) < 0)
			return fail_errno(ENOENT);
		a.sin_port = htons((uint16_t)atoi(argv[3]));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		for (int i = 0; i < 30; i++) {
			char buf[512];
			ssize_t n;
			sendto(fd, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
			n = recv(fd, buf, sizeof buf - 1, 0);
			if (n > 0) {
				buf[n] = '\0';
				printf("%s\n", buf);
				return 0;
			}
		}
		return fail_errno(ETIMEDOUT);
	} else if (strcmp(q, "fork-bomb") == 0) {
		/* fork-bomb: fork children that sleep until fork fails (at most 4096, so that a
		 * missing limit does not take the host down); prints "N ERRNO", then waits to be killed */
		int n = 0, err = 0;
		while (n < 4096) {
			pid_t pid = fork();
			if (pid == 0)
				for (;;)
					pause();
			if (pid < 0) {
				err = errno;
				break;
			}
			n++;
		}
		printf("%d %s\n", n, err ? strerrorname_np(err) : "none");
		for (;;)
			pause();
	} else if (strcmp(q, "kill") == 0) {
		need(argc, 2);
		if (kill(atoi(argv[2]), signal_number(argv[3])) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "spawn-zombie") == 0) {
		/* A child that exits at once and a grandchild orphaned to pid 1; neither
		 * is waited for here, so only pid 1 can reap them. */
		pid_t child = fork();
		if (child < 0)
			return fail_data(errno);
		if (child == 0) {
			if (fork() == 0) {
				usleep(10000);
				_exit(0);
			}
			_exit(0);
		}
		printf("%d\n", (int)child);
		usleep(50000);
	} else if (strcmp(q, "signal-wait") == 0) {
		sigset_t set;
		int sig;
		signal(SIGTERM, on_term);
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		printf("ready\n");
		if (sigwait(&set, &sig) != 0)
			return 1;
		printf("got SIGTERM\n");
	} else if (strcmp(q, "ps") == 0) {
		return list_dir("/proc", 1, -1);
	} else if (strcmp(q, "isatty") == 0) {
		printf("%d %d %d\n", isatty(0), isatty(1), isatty(2));
	} else if (strcmp(q, "caps") == 0) {
		FILE *f = fopen("/proc/self/status", "re");
		char line[512];
		if (f == NULL)
			return fail_data(errno);
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapBnd:", 7) == 0)
				fputs(line, stdout);
		fclose(f);
	} else if (strcmp(q, "sethostname") == 0) {
		need(argc, 1);
		if (sethostname(argv[2], strlen(argv[2])) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "unshare-user") == 0) {
		if (unshare(CLONE_NEWUSER) < 0)
			return fail_errno(errno);
		printf("ok\n");
	} else if (strcmp(q, "ptrace") == 0) {
		need(argc, 1);
		pid_t pid = atoi(argv[2]);
		if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0)
			return fail_errno(errno);
		waitpid(pid, NULL, 0);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		printf("ok\n");
	} else if (strcmp(q, "ptrace-keyctl") == 0) {
		need(argc, 1);
		return ptrace_keyctl(atoi(argv[2]));
	} else if (strcmp(q, "keyring") == 0) {
		long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
		if (id < 0)
			return fail_data(errno);
		printf("%ld\n", id);
	} else if (strcmp(q, "open-fd") == 0) {
		need(argc, 1);
		if (fcntl(atoi(argv[2]), F_GETFD) < 0)
			return fail_errno(errno);
		printf("open\n");
	} else if (strcmp(q, "serve-tcp") == 0 || strcmp(q, "sink-tcp") == 0) {
		need(argc, 1);
		return serve_tcp(atoi(argv[2]), q[1] == 'i');
	} else if (strcmp(q, "echo-udp") == 0) {
		need(argc, 1);
		return echo_udp(atoi(argv[2]));
	} else if (strcmp(q, "send-tcp") == 0) {
		need(argc, 3);
		return send_tcp(argv[2], atoi(argv[3]), atoi(argv[4]));
	} else if (strcmp(q, "ask-tcp") == 0) {
		need(argc, 3);
		return ask_tcp(argv[2], atoi(argv[3]), argv[4]);
	} else {
		fprintf(stderr, "usage: probe hostname|pid|ppid|uid|id|cwd|env NAME|cat PATH|write PATH TEXT|ls DIR|"
				"stat PATH|exit N|sleep S|mounts|fds|mount TYPE TARGET|mknod PATH [c|b MAJOR MINOR]|kill PID SIG|"
				"spawn-zombie|signal-wait|ps|isatty|caps|sethostname NAME|unshare-user|ptrace PID|"
				"open-fd N|open PATH r|w|rw|readlink PATH|chown PATH UID GID|mkdir PATH|init-module|"
				"finit-module|capset-raise N|status FIELD|rlimit NAME|hog MB|fork-bomb|ptrace-keyctl PID|keyring|"
				"serve-tcp PORT|sink-tcp PORT|echo-udp PORT|ask-tcp HOST PORT MSG|send-tcp HOST PORT MIB\n");
		return 2;
	}
	return 0;
}
