/* dockless-helper net: link work over rtnetlink for networks and for links
 * added to a namespace that already exists (a pod's, held by `pause`, or a
 * running container's). A container started with its link comes from `run`
 * itself (--veth), which saves this op's spawn. */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "netlink.h"
#include "status.h"
#include "util.h"

int cmd_net(int argc, char **argv)
{
	struct dl_veth v = {0};
	struct dl_ipaddr addrs[DL_NET_MAX_ADDRS];
	size_t n_addrs = 0;
	const char *action, *name = NULL, *netns = NULL;
	unsigned long mtu = 0, status_fd = 3;
	struct dl_error e;
	int r = 0, taken;

	if (argc < 2)
		dl_usage("net", "usage: net bridge|delete|veth [OPTIONS…]");
	action = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--status-fd") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &status_fd) < 0)
				dl_usage("net", "--status-fd needs a number");
		} else if (strcmp(a, "--name") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else if (strcmp(a, "--addr") == 0 && i + 1 < argc) {
			if (n_addrs == DL_NET_MAX_ADDRS || dl_net_parse_addr(argv[++i], &addrs[n_addrs]) < 0 ||
			    addrs[n_addrs].prefix < 0)
				dl_usage("net", "--addr: bad address `%s`", argv[i]);
			n_addrs++;
		} else if (strcmp(a, "--mtu") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, 65535, &mtu) < 0)
				dl_usage("net", "--mtu: bad MTU `%s`", argv[i]);
		} else if (strcmp(a, "--netns") == 0 && i + 1 < argc) {
			netns = argv[++i];
		} else if ((taken = dl_veth_parse(&v, argc, argv, i, "net")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("net", "unknown option `%s`", a);
		}
	}
	if (strcmp(action, "bridge") == 0 || strcmp(action, "delete") == 0) {
		if (name == NULL || name[0] == '\0' || strlen(name) > 15)
			dl_usage("net", "%s needs --name (at most 15 bytes)", action);
	} else if (strcmp(action, "veth") == 0) {
		if (v.host == NULL || netns == NULL)
			dl_usage("net", "veth needs --veth and --netns");
	} else {
		dl_usage("net", "unknown action `%s`", action);
	}
	dl_status_init((int)status_fd);

	if (action[0] == 'b') {
		r = dl_net_bridge(name, (unsigned int)mtu, addrs, n_addrs, &e);
	} else if (action[0] == 'd') {
		r = dl_net_delete(name, &e);
	} else {
		_cleanup_close_ int fd = open(netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = dl_fail_errno(&e, "setns", netns, "open `%s`", netns);
		else
			r = dl_net_veth(&v, fd, &e);
	}
	if (r < 0) {
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	dl_status_simple("done");
	return DL_EXIT_OK;
}
