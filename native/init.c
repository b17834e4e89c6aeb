#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "init.h"

int dl_init_loop(pid_t workload)
{
	sigset_t all;

	sigfillset(&all);
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
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
