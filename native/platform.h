// OS numbers the addon needs, from the system headers, with fallbacks where a header lacks one (-1: the OS has none).
#pragma once

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#if defined(__linux__)
#include <linux/netlink.h>
#include <linux/pfkeyv2.h>
#elif defined(__NetBSD__) || defined(__FreeBSD__) || defined(__APPLE__)
#include <net/pfkeyv2.h>
#endif

#ifndef UDP_ENCAP
#if defined(__FreeBSD__)
#define UDP_ENCAP 1
#elif defined(__linux__) || defined(__NetBSD__)
#define UDP_ENCAP 100
#else
#define UDP_ENCAP -1
#endif
#endif

#ifndef UDP_ENCAP_ESPINUDP_NON_IKE
#define UDP_ENCAP_ESPINUDP_NON_IKE 1
#endif
#ifndef UDP_ENCAP_ESPINUDP
#define UDP_ENCAP_ESPINUDP 2
#endif

#ifndef AF_KEY
#ifdef PF_KEY
#define AF_KEY PF_KEY
#else
#define AF_KEY -1
#endif
#endif
#ifndef PF_KEY_V2
#define PF_KEY_V2 -1
#endif
#ifndef AF_NETLINK
#define AF_NETLINK -1
#endif
#ifndef NETLINK_XFRM
#define NETLINK_XFRM -1
#endif
