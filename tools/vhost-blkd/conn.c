// SPDX-License-Identifier: GPL-2.0
/*
 * One connection: a fresh /dev/vhost-blk for it, messages until the
 * front-end goes away or misbehaves, then everything released. Closing
 * the kernel device drains the rings; nothing of one connection is kept
 * for the next.
 */
#include <string.h>
#include <unistd.h>

#include "vhost_blkd.h"

static void conn_release(struct vud_conn *c)
{
	vud_drop_fds(c);
	vud_kdev_close(c);	/* first: the kernel stops using our maps */
	vud_vqs_free(c);
	vud_mem_free(c);
	vud_log_free(c);
	close(c->sock);
}

/* 0 when the front-end closed cleanly, <0 when it was cut off. */
int vud_serve(const struct vud_opts *o, int sock)
{
	static struct vud_conn conn;
	struct vud_conn *c = &conn;
	unsigned long n = 0;
	struct vud_msg m;
	int rc;

	memset(c, 0, sizeof(*c));
	c->o = o;
	c->sock = sock;
	vud_vqs_init(c);
	rc = vud_kdev_open(c);
	if (rc) {
		close(sock);
		return rc;
	}
	for (;;) {
		rc = vud_recv(c, &m);
		if (rc <= 0)
			break;
		n++;
		rc = vud_msg_handle(c, &m);
		if (rc)
			break;
	}
	if (rc)
		vud_log("connection closed after %lu messages (error)", n);
	else
		vud_log("front-end disconnected after %lu messages", n);
	conn_release(c);
	return rc;
}
