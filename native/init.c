#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "init.h"

static int wait_only(pid_t workload)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);

		if (pid == workload)
			return status;
		if (pid < 0 && errno != EINTR) {
			kill(workload, SIGKILL);
			return W_EXITCODE(255, 0);
		}
	}
}

bool dl_init_is_stop_signal(int sig)
{
	return sig != SIGCHLD && sig != SIGWINCH && sig != SIGCONT && sig != SIGURG;
}

int dl_init_loop(pid_t workload, bool *stopped)
{
	sigset_t all;

	sigfillset(&all);
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			/* The init runs under the container's seccomp filter: a profile that
			 * denies rt_sigtimedwait gets no signal forwarding, but no busy loop. */
			return wait_only(workload);
		}
		if (sig != SIGCHLD) {
			if (stopped != NULL && dl_init_is_stop_signal(sig))
				*stopped = true;
			/* ESRCH (the workload is already a zombie) is fine: SIGCHLD is on its way. */
			kill(workload, sig);
			continue;
		}
		/* SIGCHLD coalesces: reap until nothing is left to reap. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid < 0 && errno == EINTR)
				continue;
			if (pid <= 0)
				break;
			if (pid == workload)
				return status;
		}
	}
}
