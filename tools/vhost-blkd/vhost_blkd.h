/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blkd: a vhost-user-blk back-end that gives the rings to the
 * in-kernel /dev/vhost-blk. The daemon handles control messages only; the
 * kernel serves every request. Shared by the files of the daemon.
 */
#ifndef VHOST_BLKD_H
#define VHOST_BLKD_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <linux/vhost.h>
#include <linux/vhost_blk.h>
#include <linux/virtio_blk.h>

#include "../libvblk/vuser.h"

struct vud_opts {
	const char *socket;
	const char *backend;
	const char *serial;
	const char *vhost_dev;		/* default /dev/vhost-blk */
	unsigned int queues;		/* offered to the front-end */
	unsigned int workers;		/* 0: the kernel's default */
	unsigned int busyloop_us;	/* busy polling of every ring, 0: off */
	unsigned int max_conns;		/* 0: serve until signalled */
	bool readonly;
	int backend_fd;			/* opened once, lent to each device */
};

/* One region of the front-end's memory, mapped into the daemon. */
struct vud_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t fe_addr;		/* the front-end's own address */
	uint64_t mmap_offset;
	uint8_t *map;			/* our mapping of [0, mmap_offset + size) */
	size_t map_len;
};

struct vud_mem {
	unsigned int nregions;
	struct vud_region r[VU_MAX_FDS];
};

struct vud_vq {
	unsigned int num;		/* 0: not set */
	struct vu_addr addr;		/* front-end addresses */
	bool addr_set;
	bool enabled;			/* SET_VRING_ENABLE */
	bool running;			/* the kernel holds our kick fd */
	int kick_fd;			/* -1: none */
};

struct vud_conn {
	const struct vud_opts *o;
	int sock;
	int vhost;			/* /dev/vhost-blk of this connection */
	struct vhost_blk_config kcfg;	/* what the backend offers */
	uint64_t kfeatures;		/* VHOST_GET_FEATURES */
	uint64_t acked;			/* SET_FEATURES */
	bool features_set;
	uint64_t proto;			/* SET_PROTOCOL_FEATURES */
	struct vud_mem mem;
	struct vud_mem mem_old;		/* a table the kernel may still use */
	uint8_t *log;			/* SET_LOG_BASE mapping */
	size_t log_len;			/* bytes of the whole mapping */
	size_t log_off;
	struct vud_vq vq[VHOST_BLK_MAX_VQS];
	int fds[VU_MAX_FDS];		/* received with the current message */
	unsigned int nfds;
};

#define VUD_BIT(n)	(1ULL << (n))

/*
 * A message as the daemon handles it: struct vu_msg is the packed wire
 * layout, whose payload is not aligned for its 64-bit fields; sock.c
 * copies between the two.
 */
struct vud_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vu_state state;
		struct vu_addr addr;
		struct vu_mem mem;
		struct vu_config config;
		struct vu_log log;
	} p;
};

/* log.c */
void vud_log_init(const char *socket);
__attribute__((format(printf, 1, 2)))
void vud_log(const char *fmt, ...);

/* sock.c */
int vud_listen(const char *path);
int vud_accept(int lfd);
int vud_recv(struct vud_conn *c, struct vud_msg *m);
int vud_send(struct vud_conn *c, const struct vud_msg *m);
int vud_take_fd(struct vud_conn *c);
void vud_drop_fds(struct vud_conn *c);
bool vud_is_eventfd(int fd);

/* backend.c */
int vud_backend_open(struct vud_opts *o);
int vud_kdev_open(struct vud_conn *c);
void vud_kdev_close(struct vud_conn *c);
int vud_kioctl(struct vud_conn *c, unsigned long req, const char *name,
	       void *arg);
#define VUD_IOCTL(c, req, arg)	vud_kioctl(c, req, #req, arg)
int vud_backend_pause(struct vud_conn *c);
int vud_backend_resume(struct vud_conn *c);
uint64_t vud_offered_features(const struct vud_conn *c);
uint64_t vud_offered_protocol(void);
void vud_config_fill(const struct vud_conn *c, struct virtio_blk_config *cfg);

/* mem.c */
int vud_mem_set(struct vud_conn *c, const struct vud_msg *m);
void vud_mem_free(struct vud_conn *c);
void *vud_mem_map_fe(const struct vud_conn *c, uint64_t fe_addr,
		     uint64_t len);
int vud_log_set(struct vud_conn *c, const struct vud_msg *m);
void vud_log_free(struct vud_conn *c);
bool vud_log_covers(const struct vud_conn *c, uint64_t gpa_end);
bool vud_log_covers_mem(const struct vud_conn *c);

/* vring.c */
void vud_vqs_init(struct vud_conn *c);
void vud_vqs_free(struct vud_conn *c);
int vud_vq_index(const struct vud_conn *c, uint64_t idx, const char *what);
int vud_vq_set_num(struct vud_conn *c, const struct vu_state *s);
int vud_vq_set_base(struct vud_conn *c, const struct vu_state *s);
int vud_vq_get_base(struct vud_conn *c, struct vu_state *s);
int vud_vq_set_addr(struct vud_conn *c, const struct vu_addr *a);
int vud_vq_set_kick(struct vud_conn *c, uint64_t arg);
int vud_vq_set_file(struct vud_conn *c, uint64_t arg, bool call);
int vud_vq_set_enable(struct vud_conn *c, const struct vu_state *s);
int vud_vqs_sync(struct vud_conn *c);
int vud_vqs_readdress(struct vud_conn *c);
bool vud_vqs_log_ok(const struct vud_conn *c);

/* msg.c */
int vud_msg_handle(struct vud_conn *c, struct vud_msg *m);

/* conn.c */
int vud_serve(const struct vud_opts *o, int sock);

#endif /* VHOST_BLKD_H */
