// OS numbers the addon needs, from the system headers, with fallbacks where a header lacks one (-1: the OS has none).
#pragma once

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#if defined(__linux__)
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pfkeyv2.h>
#include <net/if.h>
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
#ifndef NETLINK_ROUTE
#define NETLINK_ROUTE -1
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK -1
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK -1
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK -1
#endif
// TUN (Linux <linux/if_tun.h>); the BSDs and macOS have other tun interfaces, which natt does not drive.
#ifndef IFF_TUN
#define IFF_TUN -1
#endif
#ifndef IFF_TAP
#define IFF_TAP -1
#endif
#ifndef IFF_NO_PI
#define IFF_NO_PI -1
#endif
#ifndef IFF_VNET_HDR
#define IFF_VNET_HDR -1
#endif
#ifndef IFF_TUN_EXCL
#define IFF_TUN_EXCL -1
#endif
#ifndef IFF_MULTI_QUEUE
#define IFF_MULTI_QUEUE -1
#endif
#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif

// Per-socket IPsec policy options (-1: the OS has none). Linux has both spellings: IP_IPSEC_POLICY takes PF_KEY's
// sadb_x_policy (af_key), IP_XFRM_POLICY takes xfrm_userpolicy_info (xfrm_user); the BSDs have IP_IPSEC_POLICY only.
#if defined(__linux__)
#define NATT_IP_IPSEC_POLICY 16
#define NATT_IP_XFRM_POLICY 17
#define NATT_IPV6_IPSEC_POLICY 34
#define NATT_IPV6_XFRM_POLICY 35
#else
#ifdef IP_IPSEC_POLICY
#define NATT_IP_IPSEC_POLICY IP_IPSEC_POLICY
#else
#define NATT_IP_IPSEC_POLICY -1
#endif
#ifdef IPV6_IPSEC_POLICY
#define NATT_IPV6_IPSEC_POLICY IPV6_IPSEC_POLICY
#else
#define NATT_IPV6_IPSEC_POLICY -1
#endif
#define NATT_IP_XFRM_POLICY -1
#define NATT_IPV6_XFRM_POLICY -1
#endif

// Packet capture: AF_PACKET sockets (Linux only).
#if defined(__linux__)
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#define NATT_AF_PACKET AF_PACKET
#define NATT_SOL_PACKET SOL_PACKET
#define NATT_ETH_P_ALL ETH_P_ALL
#define NATT_PACKET_STATISTICS PACKET_STATISTICS
#else
#define NATT_AF_PACKET -1
#define NATT_SOL_PACKET -1
#define NATT_ETH_P_ALL -1
#define NATT_PACKET_STATISTICS -1
#endif
#ifdef SO_TIMESTAMPNS
#define NATT_SO_TIMESTAMPNS SO_TIMESTAMPNS
#else
#define NATT_SO_TIMESTAMPNS -1
#endif

// UDP segmentation offloads (Linux): UDP_SEGMENT (send, >= 4.18) and UDP_GRO (receive, >= 5.0), at level SOL_UDP.
#if defined(__linux__)
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#endif
