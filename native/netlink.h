/* Link work over rtnetlink (no `ip` processes): bridges, veth pairs wired into
 * a network namespace, addresses and routes. Shared by `net` and `run`. */
#ifndef DL_NETLINK_H
#define DL_NETLINK_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define DL_NET_MAX_ADDRS 8

/* An IPv4 or IPv6 address with its prefix length (-1: none given). */
struct dl_ipaddr {
	int family;
	unsigned char addr[16];
	int prefix;
};

/* One veth pair: HOST stays in the caller's namespace, enslaved to BRIDGE;
 * PEER is made directly in the target namespace and configured there. */
struct dl_veth {
	const char *host;
	const char *bridge;
	const char *peer;
	unsigned char mac[6];
	bool has_mac;
	unsigned int mtu;
	struct dl_ipaddr addrs[DL_NET_MAX_ADDRS];
	size_t n_addrs;
	/* Default routes, at most one per family; none for an internal network. */
	struct dl_ipaddr gateways[2];
	size_t n_gateways;
};

/* Parses `A.B.C.D[/N]` or an IPv6 address `[/N]`. */
int dl_net_parse_addr(const char *s, struct dl_ipaddr *out);

/* Parses `aa:bb:cc:dd:ee:ff`. */
int dl_net_parse_mac(const char *s, unsigned char mac[6]);

/* Parses one veth option at ARGV[I] (`--veth HOST BRIDGE PEER MAC MTU`,
 * `--veth-addr CIDR`, `--veth-gateway IP`); returns how many words it took, 0
 * when ARGV[I] is none of them. Bad values are usage errors of OP. */
int dl_veth_parse(struct dl_veth *v, int argc, char **argv, int i, const char *op);

/* Creates bridge NAME (kept when it exists), adds ADDRS (kept when present), sets it up. */
int dl_net_bridge(const char *name, unsigned int mtu, const struct dl_ipaddr *addrs, size_t n, struct dl_error *e);

/* Deletes link NAME; a missing link is no error. */
int dl_net_delete(const char *name, struct dl_error *e);

/* Creates V's pair with its peer in the network namespace NETNS_FD, attached to
 * its bridge, both ends up, the peer's addresses and default routes set. A
 * failure after the pair exists deletes it. */
int dl_net_veth(const struct dl_veth *v, int netns_fd, struct dl_error *e);

#endif
