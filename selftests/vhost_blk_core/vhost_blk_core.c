// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_core: a minimal guest for /dev/vhost-blk, to check the kernel
 * module on its own (the full guest-side library is tools/libvblk).
 *
 *   vhost_blk_core [--workers N] BACKEND
 *
 * Guest memory is a memfd; split rings of 64 entries on 3 virtqueues.
 * Prints KTAP: every request type, data compared with the backend read
 * directly, the hostile requests with their expected status, the dirty
 * log of an IN request, unset/reset of the backend, a descriptor loop.
 *
 *   vhost_blk_core --activation BACKEND
 *	rings that cannot start make the activating call fail (EFAULT)
 *   vhost_blk_core --busyloop BACKEND
 *	VHOST_SET_VRING_BUSYLOOP_TIMEOUT: requests nobody kicks are served
 *   vhost_blk_core --iotlb-workers BACKEND
 *	worker changes while IOTLB updates resolve misses
 *   vhost_blk_core --dirty-load BACKEND
 *	LOG_ALL switched while reads on every queue are in flight
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <pthread.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/vhost.h>
#include "../../include/uapi/linux/vhost_blk.h"

#define MEM_SIZE	(16u << 20)
#define QSZ		64
#define NVQ		3
#define DATA		(1u << 20)	/* gpa of the data area */
#define SER		"vhost-blk-core-test!"	/* 20 bytes, no NUL */

struct vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t gpa;		/* of desc; avail +0x1000, used +0x2000 */
	int kick, call, err;
	uint16_t avail_idx, used_idx;
};

static uint8_t *mem;
static int dev = -1;
static struct vq vqs[NVQ];
static int nfail, ntest;
/*
 * As a Linux guest: SIZE_MAX accepted, so size_max binds every segment
 * (a driver that does not accept it may send larger ones: hostile.c).
 */
static uint64_t features = 1ULL << VIRTIO_F_VERSION_1 |
			   1ULL << VIRTIO_BLK_F_SIZE_MAX;

static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", cond ? "" : "not ", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		nfail++;
}

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *gpa(uint64_t a)
{
	return mem + a;
}

static int iova_rings;	/* ring addresses are IOVAs (== gpa), not HVAs */

/*
 * Program vq i: rings in guest memory, or the used ring at the host
 * address `used` when it is not NULL. Returns what SET_VRING_KICK, the
 * last call (the one that may start the ring), returned: 0 or -errno.
 */
static int setup_vq_used(int i, void *used)
{
	struct vq *q = &vqs[i];
	struct vhost_vring_state num = { i, QSZ }, base = { i, 0 };
	struct vhost_vring_file f = { i, -1 };
	struct vhost_vring_addr a = { .index = i };

	memset(q, 0, sizeof(*q));
	q->gpa = 0x10000 + i * 0x4000;
	q->desc = gpa(q->gpa);
	q->avail = gpa(q->gpa + 0x1000);
	q->used = gpa(q->gpa + 0x2000);
	memset(q->desc, 0, 0x3000);
	a.desc_user_addr = iova_rings ? q->gpa : (uintptr_t)q->desc;
	a.avail_user_addr = iova_rings ? q->gpa + 0x1000 : (uintptr_t)q->avail;
	a.used_user_addr = iova_rings ? q->gpa + 0x2000 : (uintptr_t)q->used;
	if (used)
		a.used_user_addr = (uintptr_t)used;
	a.log_guest_addr = q->gpa + 0x2000;
	a.flags = 1 << VHOST_VRING_F_LOG;
	if (ioctl(dev, VHOST_SET_VRING_NUM, &num) ||
	    ioctl(dev, VHOST_SET_VRING_BASE, &base) ||
	    ioctl(dev, VHOST_SET_VRING_ADDR, &a))
		die("vring setup");
	q->kick = eventfd(0, EFD_NONBLOCK);
	q->call = eventfd(0, EFD_NONBLOCK);
	q->err = eventfd(0, EFD_NONBLOCK);
	f.fd = q->call;
	if (ioctl(dev, VHOST_SET_VRING_CALL, &f))
		die("SET_VRING_CALL");
	f.fd = q->err;
	if (ioctl(dev, VHOST_SET_VRING_ERR, &f))
		die("SET_VRING_ERR");
	f.fd = q->kick;
	return ioctl(dev, VHOST_SET_VRING_KICK, &f) ? -errno : 0;
}

static void setup_vq(int i)
{
	errno = -setup_vq_used(i, NULL);
	if (errno)
		die("SET_VRING_KICK");
}

/* Point the used ring of vq i elsewhere; returns 0 or -errno. */
static int set_used(int i, void *used)
{
	struct vq *q = &vqs[i];
	struct vhost_vring_addr a = {
		.index = i,
		.desc_user_addr = (uintptr_t)q->desc,
		.avail_user_addr = (uintptr_t)q->avail,
		.used_user_addr = used ? (uintptr_t)used : (uintptr_t)q->used,
		.log_guest_addr = q->gpa + 0x2000,
		.flags = 1 << VHOST_VRING_F_LOG,
	};

	return ioctl(dev, VHOST_SET_VRING_ADDR, &a) ? -errno : 0;
}

static uint8_t *log_bits;

static void open_dev(void)
{
	struct vhost_memory *m;
	uint64_t lb;

	dev = open("/dev/vhost-blk", O_RDWR);
	if (dev < 0)
		die("open /dev/vhost-blk");
	if (ioctl(dev, VHOST_SET_OWNER))
		die("SET_OWNER");
	m = calloc(1, sizeof(*m) + sizeof(m->regions[0]));
	m->nregions = 1;
	m->regions[0].guest_phys_addr = 0;
	m->regions[0].memory_size = MEM_SIZE;
	m->regions[0].userspace_addr = (uintptr_t)mem;
	if (ioctl(dev, VHOST_SET_MEM_TABLE, m))
		die("SET_MEM_TABLE");
	free(m);
	lb = (uintptr_t)log_bits;
	if (ioctl(dev, VHOST_SET_LOG_BASE, &lb))
		die("SET_LOG_BASE");
	if (ioctl(dev, VHOST_SET_FEATURES, &features))
		die("SET_FEATURES");
}

static int set_backend(int fd)
{
	return ioctl(dev, VHOST_BLK_SET_BACKEND, &fd) ? -errno : 0;
}

/* A descriptor: gpa, length, device-writable. */
struct seg {
	uint64_t a;
	uint32_t len;
	int wr;
};

static int kick_off;	/* post() leaves the kick out (busy polling) */

static void post(int qi, const struct seg *s, int n, int loop)
{
	struct vq *q = &vqs[qi];
	int i;

	for (i = 0; i < n; i++) {
		q->desc[i].addr = s[i].a;
		q->desc[i].len = s[i].len;
		q->desc[i].flags = (s[i].wr ? VRING_DESC_F_WRITE : 0) |
				   (i + 1 < n || loop ? VRING_DESC_F_NEXT : 0);
		q->desc[i].next = loop && i + 1 == n ? 0 : i + 1;
	}
	q->avail->ring[q->avail_idx % QSZ] = 0;
	__atomic_store_n(&q->avail->idx, ++q->avail_idx, __ATOMIC_RELEASE);
	if (!kick_off)
		eventfd_write(q->kick, 1);
}

/* Wait for the next used entry; returns its length or -1 on timeout. */
static int reap(int qi, int ms)
{
	struct vq *q = &vqs[qi];
	struct pollfd p = { q->call, POLLIN, 0 };
	eventfd_t v;
	int len;

	while (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) ==
	       q->used_idx) {
		if (poll(&p, 1, ms) <= 0)
			return -1;
		eventfd_read(q->call, &v);
	}
	len = q->used->ring[q->used_idx % QSZ].len;
	q->used_idx++;
	return len;
}

#define HDR	0x8000	/* gpa of the header, per vq: + qi * 0x100 */
#define ST	0x9000	/* gpa of the status byte, per vq */

/* One request; returns the status byte or -1 (no completion). */
static int timeout_ms = 5000;

static int rq(int qi, uint32_t type, uint64_t sector, uint64_t data,
	      uint32_t len, int data_wr)
{
	struct virtio_blk_outhdr *h = gpa(HDR + qi * 0x100);
	uint8_t *st = gpa(ST + qi * 0x100);
	struct seg s[3];
	int n = 0;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*st = 0xee;
	s[n++] = (struct seg){ HDR + qi * 0x100, sizeof(*h), 0 };
	if (len)
		s[n++] = (struct seg){ data, len, data_wr };
	s[n++] = (struct seg){ ST + qi * 0x100, 1, 1 };
	post(qi, s, n, 0);
	if (reap(qi, timeout_ms) < 0)
		return -1;
	return *st;
}

static void fill(uint64_t a, uint32_t len, unsigned int seed)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		mem[a + i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static int backend_read(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	ssize_t r;

	if (fd < 0)
		fd = open(path, O_RDONLY);
	r = pread(fd, buf, len, off);
	close(fd);
	return r == (ssize_t)len ? 0 : -1;
}

static void test_rw(const char *path, uint64_t cap)
{
	static uint8_t direct[65536] __attribute__((aligned(4096)));
	uint32_t lens[] = { 512, 4096, 65536 };
	unsigned int i;
	int s1, s2;

	for (i = 0; i < 3; i++) {
		uint64_t sec = 8 + i * 256;

		fill(DATA, lens[i], i + 1);
		s1 = rq(0, VIRTIO_BLK_T_OUT, sec, DATA, lens[i], 0);
		memset(gpa(DATA + 0x40000), 0, lens[i]);
		s2 = rq(0, VIRTIO_BLK_T_IN, sec, DATA + 0x40000, lens[i], 1);
		ok(s1 == 0 && s2 == 0 &&
		   !memcmp(gpa(DATA), gpa(DATA + 0x40000), lens[i]),
		   "write+read %u bytes (status %d %d)", lens[i], s1, s2);
		ok(!backend_read(path, direct, lens[i], sec * 512) &&
		   !memcmp(direct, gpa(DATA), lens[i]),
		   "backend holds the %u bytes written", lens[i]);
	}
	/* Last sectors of the device: inside, then one past. */
	fill(DATA, 4096, 9);
	ok(rq(0, VIRTIO_BLK_T_OUT, cap - 8, DATA, 4096, 0) == 0,
	   "write of the last 4k");
	ok(rq(0, VIRTIO_BLK_T_IN, cap - 7, DATA, 4096, 1) ==
	   VIRTIO_BLK_S_IOERR, "read one sector past the end: IOERR");
	ok(rq(0, VIRTIO_BLK_T_IN, ~0ULL - 3, DATA, 4096, 1) ==
	   VIRTIO_BLK_S_IOERR, "sector near 2^64 (overflow): IOERR");
	ok(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0, "flush");
}

static void test_id(void)
{
	struct vhost_blk_serial s;
	int st;

	memcpy(s.id, SER, sizeof(s.id));
	ok(!ioctl(dev, VHOST_BLK_SET_SERIAL, &s), "SET_SERIAL");
	memset(gpa(DATA), 0, 64);
	st = rq(0, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, 1);
	ok(st == 0 && !memcmp(gpa(DATA), SER, 20), "GET_ID returns the serial");
}

static void test_zeroes(uint32_t max_wz)
{
	struct virtio_blk_discard_write_zeroes *d = gpa(DATA + 0x80000);
	static const uint8_t zero[8192];
	struct seg s[3];
	int st;

	if (!max_wz) {
		ok(1, "# SKIP write zeroes not offered");
		ok(1, "# SKIP write zeroes not offered");
		return;
	}
	fill(DATA, 8192, 5);
	rq(0, VIRTIO_BLK_T_OUT, 64, DATA, 8192, 0);
	d->sector = 64;
	d->num_sectors = 16;
	d->flags = 0;
	*(struct virtio_blk_outhdr *)gpa(HDR) =
		(struct virtio_blk_outhdr){ VIRTIO_BLK_T_WRITE_ZEROES, 0, 0 };
	*(uint8_t *)gpa(ST) = 0xee;
	s[0] = (struct seg){ HDR, 16, 0 };
	s[1] = (struct seg){ DATA + 0x80000, sizeof(*d), 0 };
	s[2] = (struct seg){ ST, 1, 1 };
	post(0, s, 3, 0);
	st = reap(0, 5000) < 0 ? -1 : *(uint8_t *)gpa(ST);
	memset(gpa(DATA), 0xaa, 8192);
	rq(0, VIRTIO_BLK_T_IN, 64, DATA, 8192, 1);
	ok(st == 0 && !memcmp(gpa(DATA), zero, 8192),
	   "write zeroes (status %d) reads back zeroes", st);
	d->flags = 0x80;
	*(struct virtio_blk_outhdr *)gpa(HDR) =
		(struct virtio_blk_outhdr){ VIRTIO_BLK_T_WRITE_ZEROES, 0, 0 };
	*(uint8_t *)gpa(ST) = 0xee;
	post(0, s, 3, 0);
	reap(0, 5000);
	ok(*(uint8_t *)gpa(ST) == VIRTIO_BLK_S_UNSUPP,
	   "write zeroes with unknown flag: UNSUPP");
}

static void test_hostile(void)
{
	struct seg s[3];
	int len;

	ok(rq(0, 77, 0, DATA, 512, 1) == VIRTIO_BLK_S_UNSUPP,
	   "unknown type: UNSUPP");
	ok(rq(0, VIRTIO_BLK_T_IN, 3, DATA + 100, 512, 1) == 0,
	   "unaligned buffer: served (only sector and length are bound)");
	ok(rq(0, VIRTIO_BLK_T_IN, 0, DATA, 100, 1) == VIRTIO_BLK_S_IOERR,
	   "length not a multiple of 512: IOERR");
	ok(rq(0, VIRTIO_BLK_T_IN, 0, DATA, 0, 0) == 0,
	   "empty read: OK");
	ok(rq(0, VIRTIO_BLK_T_IN, 0, DATA, 256u << 10, 1) ==
	   VIRTIO_BLK_S_IOERR, "segment above size_max: IOERR");
	ok(rq(0, VIRTIO_BLK_T_OUT, 0, DATA, 512, 1) == VIRTIO_BLK_S_IOERR,
	   "write with device-writable data: IOERR");
	ok(rq(0, VIRTIO_BLK_T_IN, 0, DATA, 512, 0) == VIRTIO_BLK_S_IOERR,
	   "read with device-readable data: IOERR");

	/* 8-byte header. */
	*(uint32_t *)gpa(HDR) = VIRTIO_BLK_T_IN;
	*(uint8_t *)gpa(ST) = 0xee;
	s[0] = (struct seg){ HDR, 8, 0 };
	s[1] = (struct seg){ ST, 1, 1 };
	post(0, s, 2, 0);
	len = reap(0, 5000);
	ok(len == 1 && *(uint8_t *)gpa(ST) == VIRTIO_BLK_S_IOERR,
	   "short header: IOERR");
	/* Status byte read-only: nothing can be written, length 0. */
	*(uint8_t *)gpa(ST) = 0xee;
	s[0] = (struct seg){ HDR, 16, 0 };
	s[1] = (struct seg){ ST, 1, 0 };
	post(0, s, 2, 0);
	len = reap(0, 5000);
	ok(len == 0 && *(uint8_t *)gpa(ST) == 0xee,
	   "read-only status: returned with length 0, untouched");
	/* Status missing. */
	s[0] = (struct seg){ HDR, 16, 0 };
	post(0, s, 1, 0);
	ok(reap(0, 5000) == 0, "missing status: returned with length 0");
	/* Device still serves. */
	ok(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0,
	   "queue still works after hostile requests");
}

static void test_log(void)
{
	uint64_t f = features | (1ULL << VHOST_F_LOG_ALL);
	uint64_t dpage = (DATA + 0x20000) / 4096;
	uint64_t upage = (vqs[0].gpa + 0x2000) / 4096;
	int st;

	ok(!ioctl(dev, VHOST_SET_FEATURES, &f), "SET_FEATURES with LOG_ALL");
	memset(log_bits, 0, MEM_SIZE / 4096 / 8);
	st = rq(0, VIRTIO_BLK_T_IN, 8, DATA + 0x20000, 8192, 1);
	ok(st == 0 && (log_bits[dpage / 8] & (1 << dpage % 8)) &&
	   (log_bits[(dpage + 1) / 8] & (1 << (dpage + 1) % 8)),
	   "IN data pages dirty-logged");
	ok(log_bits[upage / 8] & (1 << upage % 8), "used ring dirty-logged");
	ok(log_bits[(ST / 4096) / 8] & (1 << (ST / 4096) % 8),
	   "status byte dirty-logged");
	memset(log_bits, 0, MEM_SIZE / 4096 / 8);
	rq(0, VIRTIO_BLK_T_OUT, 8, DATA + 0x20000, 8192, 0);
	ok(!(log_bits[dpage / 8] & (1 << dpage % 8)),
	   "OUT data pages not logged");
	ioctl(dev, VHOST_SET_FEATURES, &features);
}

/* n (<= 20) requests of len bytes on queue q, not waited for. */
static void post_many(int q, int n, uint32_t type, uint64_t sector,
		      uint32_t len)
{
	struct vq *v = &vqs[q];
	int k;

	for (k = 0; k < n; k++) {
		uint64_t h = 0xa000 + q * 0x800 + k * 0x40;
		struct virtio_blk_outhdr *hp = gpa(h);
		int d = k * 3;

		*(uint8_t *)gpa(h + 0x20) = 0xee;
		hp->type = type;
		hp->ioprio = 0;
		hp->sector = sector + k * (len >> 9);
		v->desc[d] = (struct vring_desc){ h, 16, VRING_DESC_F_NEXT,
						  d + 1 };
		v->desc[d + 1] = (struct vring_desc){
			DATA + 0x100000 + q * 0x200000 + k * 0x10000, len,
			VRING_DESC_F_NEXT |
			(type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0),
			d + 2 };
		v->desc[d + 2] = (struct vring_desc){ h + 0x20, 1,
						      VRING_DESC_F_WRITE, 0 };
		v->avail->ring[v->avail_idx % QSZ] = d;
		__atomic_store_n(&v->avail->idx, ++v->avail_idx,
				 __ATOMIC_RELEASE);
	}
	eventfd_write(v->kick, 1);
}

/* Statuses of post_many's requests that are not 0 (0xee: not written). */
static int bad_status(int q, int n)
{
	int k, bad = 0;

	for (k = 0; k < n; k++)
		bad += *(uint8_t *)gpa(0xa000 + q * 0x800 + k * 0x40 + 0x20) != 0;
	return bad;
}

/* Many requests on two queues at once. */
static void test_mq(void)
{
	int i, q, k, bad = 0, done = 0;

	for (i = 0; i < 5; i++) {
		for (q = 0; q < 2; q++)
			post_many(q, 16, VIRTIO_BLK_T_IN, 1024 + i * 256, 8192);
		for (q = 0; q < 2; q++) {
			for (k = 0; k < 16; k++) {
				if (reap(q, 5000) < 0)
					bad++;
				else
					done++;
			}
			bad += bad_status(q, 16);
		}
	}
	ok(!bad && done == 160, "160 reads on 2 queues (%d done, %d bad)",
	   done, bad);
}

/* Unset under load: nothing may complete once SET_BACKEND -1 returned. */
static void test_drain(int fd)
{
	uint16_t at_unset, later;
	int n = 20, left;

	post_many(0, n, VIRTIO_BLK_T_OUT, 4096, 65536);
	ok(set_backend(-1) == 0, "SET_BACKEND -1 under load");
	at_unset = __atomic_load_n(&vqs[0].used->idx, __ATOMIC_ACQUIRE);
	usleep(300000);
	later = __atomic_load_n(&vqs[0].used->idx, __ATOMIC_ACQUIRE);
	ok(at_unset == later, "nothing completes after the unset returned "
	   "(%u of %d done)", (uint16_t)(at_unset - vqs[0].used_idx), n);
	ok(set_backend(fd) == 0, "SET_BACKEND again");
	for (left = n; left && reap(0, 5000) >= 0; left--)
		;
	ok(!left && !bad_status(0, n), "all %d requests done once the "
	   "backend is back", n);
}

/* The owner dies (SIGKILL) or closes the device with I/O in flight. */
static void test_exit(const char *path, int how)
{
	pid_t pid = fork();
	int st = -1, fd, i;

	if (!pid) {
		open_dev();
		for (i = 0; i < 2; i++)
			setup_vq(i);
		fd = open(path, O_RDWR);
		if (fd < 0 || set_backend(fd))
			_exit(3);
		post_many(0, 20, VIRTIO_BLK_T_OUT, 8192, 65536);
		post_many(1, 20, VIRTIO_BLK_T_IN, 8192, 65536);
		if (how)
			kill(getpid(), SIGKILL);
		close(dev);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	ok(how ? WIFSIGNALED(st) : WIFEXITED(st) && !WEXITSTATUS(st),
	   "owner %s with I/O in flight", how ? "killed" : "closes");
}

static void test_loop(void)
{
	struct seg s[2] = { { HDR + 0x200, 16, 0 }, { ST + 0x200, 1, 1 } };
	struct pollfd p = { vqs[2].err, POLLIN, 0 };

	post(2, s, 2, 1);
	ok(poll(&p, 1, 5000) == 1 && reap(2, 200) < 0,
	   "descriptor loop: vq error signalled, nothing used");
}

static int iotlb_update(uint64_t iova, uint64_t size)
{
	struct vhost_msg_v2 m = { .type = VHOST_IOTLB_MSG_V2 };

	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = (uintptr_t)mem + iova;
	m.iotlb.perm = VHOST_ACCESS_RW;
	m.iotlb.type = VHOST_IOTLB_UPDATE;
	return write(dev, &m, sizeof(m)) == sizeof(m) ? 0 : -1;
}

/* VIRTIO_F_ACCESS_PLATFORM: addresses are IOVAs resolved by the IOTLB. */
static void test_iotlb(const char *path)
{
	uint64_t bf = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
	struct pollfd p;
	struct vhost_msg_v2 m;
	int fd, r, st;

	features |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	iova_rings = 1;
	dev = open("/dev/vhost-blk", O_RDWR);
	r = dev >= 0 && !ioctl(dev, VHOST_SET_BACKEND_FEATURES, &bf);
	if (r) {
		close(dev);
		open_dev();	/* SET_FEATURES with ACCESS_PLATFORM */
		ioctl(dev, VHOST_SET_BACKEND_FEATURES, &bf);
		/* Rings and headers mapped, the data area not yet. */
		r = !iotlb_update(0, DATA);
	}
	ok(r, "IOTLB: features and first mapping accepted");
	setup_vq(0);
	fd = open(path, O_RDWR);
	set_backend(fd);
	close(fd);
	fill(DATA, 4096, 7);
	*(uint8_t *)gpa(ST) = 0xee;
	{
		struct virtio_blk_outhdr *h = gpa(HDR);
		struct seg s[3] = { { HDR, 16, 0 }, { DATA, 4096, 0 },
				    { ST, 1, 1 } };

		*h = (struct virtio_blk_outhdr){ VIRTIO_BLK_T_OUT, 0, 16 };
		post(0, s, 3, 0);
	}
	p = (struct pollfd){ dev, POLLIN, 0 };
	r = poll(&p, 1, 5000) == 1 && read(dev, &m, sizeof(m)) == sizeof(m);
	ok(r && m.type == VHOST_IOTLB_MSG_V2 &&
	   m.iotlb.type == VHOST_IOTLB_MISS && m.iotlb.iova >= DATA &&
	   m.iotlb.iova < DATA + 4096, "IOTLB: miss reported for the data "
	   "(iova 0x%llx)", (unsigned long long)m.iotlb.iova);
	ok(!iotlb_update(DATA, MEM_SIZE - DATA) && reap(0, 5000) >= 0 &&
	   *(uint8_t *)gpa(ST) == 0, "IOTLB: the request completes after "
	   "the update");
	memset(gpa(DATA + 0x10000), 0, 4096);
	st = rq(0, VIRTIO_BLK_T_IN, 16, DATA + 0x10000, 4096, 1);
	ok(st == 0 && !memcmp(gpa(DATA), gpa(DATA + 0x10000), 4096),
	   "IOTLB: read back through IOVAs");
	{
		uint64_t f = features | (1ULL << VHOST_F_LOG_ALL);
		uint64_t pg = (DATA + 0x30000) / 4096;

		/* SET_FEATURES starts a new, empty IOTLB (as vhost-net). */
		ioctl(dev, VHOST_SET_FEATURES, &f);
		iotlb_update(0, MEM_SIZE);
		memset(log_bits, 0, MEM_SIZE / 4096 / 8);
		st = rq(0, VIRTIO_BLK_T_IN, 16, DATA + 0x30000, 4096, 1);
		ok(st == 0 && (log_bits[pg / 8] & (1 << pg % 8)) &&
		   (log_bits[(ST / 4096) / 8] & (1 << (ST / 4096) % 8)),
		   "IOTLB: IN data and status dirty-logged");
	}
	close(dev);
}

/*
 * Activation errors reach the caller: a ring that cannot start (its used
 * ring is read-only memory, so the device cannot write the used flags)
 * makes the call that would start it fail with EFAULT; SET_BACKEND then
 * leaves no backend set. A ring set up later, once a backend is set,
 * starts with its SET_VRING_KICK or SET_VRING_ADDR: that call fails.
 */
static void test_activation(const char *path)
{
	struct vhost_blk_config cfg;
	void *ro;
	int fd, r;

	printf("1..8\n");
	ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open(path, O_RDWR);
	if (ro == MAP_FAILED || fd < 0)
		die("activation setup");
	open_dev();
	setup_vq(0);
	setup_vq(1);
	ok(!set_used(1, ro), "used ring of vq 1 moved to read-only memory");
	r = set_backend(fd);
	ok(r == -EFAULT, "SET_BACKEND with a ring that cannot start: EFAULT "
	   "(got %d)", r);
	ok(ioctl(dev, VHOST_BLK_GET_CONFIG, &cfg) && errno == ENXIO,
	   "no backend is left set after the failed SET_BACKEND");
	ok(!set_used(1, NULL) && !set_backend(fd) &&
	   rq(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0,
	   "ring repaired: SET_BACKEND succeeds and vq 1 serves");
	r = setup_vq_used(2, ro);
	ok(r == -EFAULT, "vq 2 set up after the backend, ring cannot start: "
	   "SET_VRING_KICK fails with EFAULT (got %d)", r);
	ok(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0 &&
	   rq(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0,
	   "the other queues still serve");
	r = set_used(2, NULL);
	ok(r == 0, "vq 2 repaired: SET_VRING_ADDR starts it (got %d)", r);
	ok(rq(2, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0, "vq 2 serves");
	close(dev);
	close(fd);
}

static int iotlb_msg(uint8_t type, uint64_t iova, uint64_t size)
{
	struct vhost_msg_v2 m = { .type = VHOST_IOTLB_MSG_V2 };

	m.iotlb.iova = iova;
	m.iotlb.size = size;
	m.iotlb.uaddr = (uintptr_t)mem + iova;
	m.iotlb.perm = VHOST_ACCESS_RW;
	m.iotlb.type = type;
	return write(dev, &m, sizeof(m)) == sizeof(m) ? 0 : -1;
}

/* Read every IOTLB message waiting; returns how many there were. */
static int iotlb_drain(void)
{
	struct pollfd p = { dev, POLLIN, 0 };
	struct vhost_msg_v2 m;
	int n = 0;

	while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) &&
	       read(dev, &m, sizeof(m)) == sizeof(m))
		n++;
	return n;
}

static volatile int traffic_stop;
static int traffic_updates;

/* IOTLB traffic: misses read, the data area mapped and unmapped again. */
static void *iotlb_traffic(void *arg)
{
	(void)arg;
	while (!traffic_stop) {
		iotlb_drain();
		iotlb_msg(VHOST_IOTLB_UPDATE, DATA, MEM_SIZE - DATA);
		traffic_updates++;
		usleep(300);
		if (traffic_updates % 2)
			iotlb_msg(VHOST_IOTLB_INVALIDATE, DATA, MEM_SIZE - DATA);
	}
	return NULL;
}

/*
 * Worker changes (VHOST_BLK_SET_WORKERS) while IOTLB updates resolve
 * misses: the update queues the vq's IOTLB work on the core worker, which
 * then queues the vq's kick on the worker being replaced. First, the
 * deterministic part: a miss still unread when the backend is unset is
 * dropped with it (nothing left for an update to wake); a new backend asks
 * again and the request completes.
 */
#define IOTLB_ROUNDS	60
static void test_iotlb_workers(const char *path)
{
	uint64_t bf = 1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2;
	struct pollfd p;
	pthread_t t;
	int fd, i, n, done = 0, bad = 0, wfail = 0;
	uint32_t w;

	printf("1..5\n");
	features |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	iova_rings = 1;
	open_dev();
	if (ioctl(dev, VHOST_SET_BACKEND_FEATURES, &bf) ||
	    iotlb_msg(VHOST_IOTLB_UPDATE, 0, DATA))
		die("IOTLB setup");
	setup_vq(0);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(path);
	ok(!set_backend(fd), "SET_BACKEND with an IOTLB");
	{
		struct virtio_blk_outhdr *h = gpa(HDR);
		struct seg s[3] = { { HDR, 16, 0 }, { DATA, 4096, 0 },
				    { ST, 1, 1 } };

		*(uint8_t *)gpa(ST) = 0xee;
		*h = (struct virtio_blk_outhdr){ VIRTIO_BLK_T_OUT, 0, 16 };
		post(0, s, 3, 0);
	}
	p = (struct pollfd){ dev, POLLIN, 0 };
	n = poll(&p, 1, 5000);
	set_backend(-1);
	p = (struct pollfd){ dev, POLLIN, 0 };
	ok(n == 1 && poll(&p, 1, 0) == 0,
	   "a miss unread when the backend is unset is dropped (%s)",
	   n == 1 ? "miss seen before" : "no miss seen at all");
	iotlb_drain();
	set_backend(fd);
	p = (struct pollfd){ dev, POLLIN, 0 };
	n = poll(&p, 1, 5000) == 1 && iotlb_drain() > 0;
	ok(n && !iotlb_msg(VHOST_IOTLB_UPDATE, DATA, MEM_SIZE - DATA) &&
	   reap(0, 5000) >= 0 && *(uint8_t *)gpa(ST) == 0,
	   "a new backend asks again; the request completes after the update");
	set_backend(-1);

	pthread_create(&t, NULL, iotlb_traffic, NULL);
	for (i = 0; i < IOTLB_ROUNDS; i++) {
		if (set_backend(fd)) {
			bad++;
			continue;
		}
		fill(DATA + (i % 8) * 4096, 4096, i);
		if (rq(0, VIRTIO_BLK_T_OUT, 64 + i * 8, DATA + (i % 8) * 4096,
		       4096, 0) == 0)
			done++;
		else
			bad++;
		set_backend(-1);
		w = i % 3 + 1;
		wfail += !!ioctl(dev, VHOST_BLK_SET_WORKERS, &w);
	}
	traffic_stop = 1;
	pthread_join(t, NULL);
	ok(!bad && done == IOTLB_ROUNDS, "%d writes served through missing "
	   "IOTLB entries while workers changed (%d failed, %d updates)",
	   done, bad, traffic_updates);
	ok(!wfail, "SET_WORKERS under IOTLB traffic (%d failed)", wfail);
	close(dev);
	close(fd);
}

/*
 * VHOST_SET_VRING_BUSYLOOP_TIMEOUT: after a request, the worker keeps
 * polling the ring, so requests nobody kicks are taken within the
 * timeout; without it they wait for a kick.
 */
#define BUSY_REQS	20
static void test_busyloop(const char *path)
{
	struct vhost_vring_state bl = { 0, 3000000 };	/* 3 s */
	static uint8_t back[4096] __attribute__((aligned(4096)));
	int fd, st, i, bad = 0;

	printf("1..5\n");
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(path);
	open_dev();
	setup_vq(0);
	set_backend(fd);
	/* the worker has looked at the ring and waits for kicks */
	rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
	usleep(200000);
	kick_off = 1;
	timeout_ms = 500;
	st = rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0);
	eventfd_write(vqs[0].kick, 1);
	ok(st == -1 && reap(0, 5000) >= 0 && *(uint8_t *)gpa(ST) == 0,
	   "without busy polling a request waits for its kick");
	set_backend(-1);
	ok(!ioctl(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &bl),
	   "SET_VRING_BUSYLOOP_TIMEOUT 3 s");
	set_backend(fd);
	kick_off = 0;
	timeout_ms = 5000;
	ok(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0, "a kicked flush");
	kick_off = 1;
	timeout_ms = 2500;
	for (i = 0; i < BUSY_REQS; i++) {
		uint64_t sec = 512 + (i % 10) * 8;

		if (i < 10) {
			fill(DATA + i * 4096, 4096, i + 40);
			bad += rq(0, VIRTIO_BLK_T_OUT, sec, DATA + i * 4096,
				  4096, 0) != 0;
		} else {
			memset(gpa(DATA + 0x40000), 0, 4096);
			bad += rq(0, VIRTIO_BLK_T_IN, sec, DATA + 0x40000,
				  4096, 1) != 0 ||
			       memcmp(gpa(DATA + 0x40000),
				      gpa(DATA + (i - 10) * 4096), 4096);
		}
	}
	ok(!bad, "%d writes and reads, none kicked, served and read back "
	   "(%d failed)", BUSY_REQS, bad);
	kick_off = 0;
	timeout_ms = 5000;
	bl.num = 0;
	ok(!set_backend(-1) &&
	   !ioctl(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &bl) &&
	   !set_backend(fd) && !backend_read(path, back, 4096, 512 * 512) &&
	   !memcmp(back, gpa(DATA), 4096),
	   "busy polling off again; the data is on the backend");
	close(dev);
	close(fd);
}

/*
 * Dirty log under load, as during live migration: reads on every queue
 * are in flight (a slow device below, e.g. dm-delay) while
 * VHOST_F_LOG_ALL is switched on, and in other rounds off. Whatever the
 * device writes into guest memory once SET_FEATURES with LOG_ALL has
 * returned must be in the log: the data of each IN request, its status
 * byte and the used ring, also for requests fetched before logging
 * started. Each used entry added after that return is checked.
 */
#define DL_ROUNDS	40
#define DL_REQS		16

static int logged(uint64_t a, uint32_t len)
{
	uint64_t p;

	for (p = a / 4096; p <= (a + len - 1) / 4096; p++)
		if (!(log_bits[p / 8] & (1 << p % 8)))
			return 0;
	return 1;
}

/* Used entries of vq q from position `from` on: how many miss the log. */
static int unlogged_since(int q, uint16_t from, uint32_t len, int *seen)
{
	struct vq *v = &vqs[q];
	int miss = 0;
	uint16_t pos;

	for (pos = from; pos != v->used_idx; pos++) {
		unsigned int k = v->used->ring[pos % QSZ].id / 3;
		uint64_t data = DATA + 0x100000 + q * 0x200000 + k * 0x10000;
		uint64_t st = 0xa000 + q * 0x800 + k * 0x40 + 0x20;

		(*seen)++;
		miss += !logged(data, len) || !logged(st, 1) ||
			!logged(v->gpa + 0x2000, 4);
	}
	return miss;
}

static void test_dirty_load(const char *path)
{
	uint64_t on = features | (1ULL << VHOST_F_LOG_ALL);
	uint16_t snap[NVQ];
	uint32_t w = 2, len;
	int fd, r, q, k, bad = 0, fail = 0, seen = 0, miss = 0;

	printf("1..5\n");
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(path);
	open_dev();
	ok(!ioctl(dev, VHOST_BLK_SET_WORKERS, &w), "SET_WORKERS 2");
	for (q = 0; q < NVQ; q++)
		setup_vq(q);
	if (set_backend(fd))
		die("SET_BACKEND");
	for (r = 0; r < DL_ROUNDS; r++) {
		len = r % 4 < 2 ? 8192 : 65536;
		memset(log_bits, 0, MEM_SIZE / 4096 / 8);
		/* odd rounds start with logging on and switch it off */
		if (r % 2 && ioctl(dev, VHOST_SET_FEATURES, &on))
			fail++;
		for (q = 0; q < NVQ; q++)
			post_many(q, DL_REQS, VIRTIO_BLK_T_IN,
				  (r % 8) * 4096 + q * 1024, len);
		if (ioctl(dev, VHOST_SET_FEATURES, r % 2 ? &features : &on))
			fail++;
		for (q = 0; q < NVQ; q++)
			snap[q] = __atomic_load_n(&vqs[q].used->idx,
						  __ATOMIC_ACQUIRE);
		for (q = 0; q < NVQ; q++) {
			for (k = 0; k < DL_REQS; k++)
				bad += reap(q, 10000) < 0;
			bad += bad_status(q, DL_REQS);
			if (!(r % 2))
				miss += unlogged_since(q, snap[q], len, &seen);
		}
		if (!(r % 2) && ioctl(dev, VHOST_SET_FEATURES, &features))
			fail++;
	}
	ok(!fail, "LOG_ALL switched on and off %d times under load "
	   "(%d calls failed)", DL_ROUNDS, fail);
	ok(!bad, "%d reads on %d queues served (%d failed or missing)",
	   DL_ROUNDS * NVQ * DL_REQS, NVQ, bad);
	ok(seen > 0, "%d reads completed after logging was switched on "
	   "(in flight across the switch)", seen);
	ok(!miss, "each of them has its data, status byte and used ring in "
	   "the dirty log (%d do not)", miss);
	close(dev);
	close(fd);
}

int main(int argc, char **argv)
{
	struct vhost_blk_config cfg;
	const char *path;
	int fd, rofd, workers = 1, i;
	uint64_t f;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("usage: %s [--workers N | --activation | --busyloop | --iotlb-workers | --dirty-load] BACKEND\n",
		       argv[0]);
		return 0;
	}
	if (argc == 3 && (!strcmp(argv[1], "--activation") ||
			  !strcmp(argv[1], "--busyloop") ||
			  !strcmp(argv[1], "--iotlb-workers") ||
			  !strcmp(argv[1], "--dirty-load"))) {
		fd = memfd_create("guest", 0);
		if (fd < 0 || ftruncate(fd, MEM_SIZE))
			die("memfd");
		mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
		if (mem == MAP_FAILED)
			die("mmap");
		log_bits = calloc(1, MEM_SIZE / 4096 / 8);
		printf("TAP version 13\n");
		if (!strcmp(argv[1], "--activation"))
			test_activation(argv[2]);
		else if (!strcmp(argv[1], "--busyloop"))
			test_busyloop(argv[2]);
		else if (!strcmp(argv[1], "--dirty-load"))
			test_dirty_load(argv[2]);
		else if (!access("/proc/lockdep", F_OK) &&
			 !getenv("VBLK_CORE_IOTLB"))
			printf("1..0 # SKIP lockdep kernel (see Documentation/vhost-blk.rst; VBLK_CORE_IOTLB=1 runs it)\n");
		else
			test_iotlb_workers(argv[2]);
		printf("# %d of %d failed\n", nfail, ntest);
		return nfail ? 1 : 0;
	}
	if (argc > 3 && !strcmp(argv[1], "--workers")) {
		workers = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s [--workers N | --activation | --busyloop | --iotlb-workers | --dirty-load] BACKEND\n",
			argv[0]);
		return 2;
	}
	path = argv[1];
	printf("TAP version 13\n1..60\n");
	printf("# backend %s, %d worker(s)\n", path, workers);

	fd = memfd_create("guest", 0);
	if (fd < 0 || ftruncate(fd, MEM_SIZE))
		die("memfd");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	log_bits = calloc(1, MEM_SIZE / 4096 / 8);
	open_dev();

	i = ioctl(dev, VHOST_GET_FEATURES, &f);
	ok(!i && (f & (1ULL << VIRTIO_BLK_F_MQ)) &&
	   (f & (1ULL << VHOST_F_LOG_ALL)),
	   "GET_FEATURES offers MQ and LOG_ALL (0x%llx)",
	   (unsigned long long)f);
	ok(ioctl(dev, VHOST_BLK_GET_CONFIG, &cfg) && errno == ENXIO,
	   "GET_CONFIG without backend: ENXIO");
	/* Twice: the second call replaces the first call's workers. */
	ok(!ioctl(dev, VHOST_BLK_SET_WORKERS, &workers) &&
	   !ioctl(dev, VHOST_BLK_SET_WORKERS, &workers), "SET_WORKERS %d",
	   workers);
	for (i = 0; i < NVQ; i++)
		setup_vq(i);

	fd = open(path, O_RDWR);
	rofd = open(path, O_RDONLY);
	if (fd < 0 || rofd < 0)
		die(path);
	ok(set_backend(fd) == 0, "SET_BACKEND rw");
	ok(set_backend(fd) == 0, "SET_BACKEND again (swap)");
	i = ioctl(dev, VHOST_BLK_GET_CONFIG, &cfg);
	ok(!i && cfg.capacity > 4096 &&
	   cfg.seg_max && cfg.size_max >= 65536 && cfg.num_queues == 16 &&
	   !(cfg.flags & VHOST_BLK_CONFIG_F_RO),
	   "GET_CONFIG: %llu sectors, lbs %u, seg_max %u, size_max %u",
	   (unsigned long long)cfg.capacity, cfg.logical_block_size,
	   cfg.seg_max, cfg.size_max);
	ok(ioctl(dev, VHOST_BLK_SET_WORKERS, &workers) && errno == EBUSY,
	   "SET_WORKERS with a backend: EBUSY");

	test_rw(path, cfg.capacity);
	test_id();
	test_zeroes(cfg.max_write_zeroes_sectors);
	test_hostile();
	test_log();
	test_mq();
	test_drain(fd);

	ok(set_backend(-1) == 0, "SET_BACKEND -1");
	timeout_ms = 300;
	ok(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == -1,
	   "no request served without a backend");
	timeout_ms = 5000;
	ok(set_backend(rofd) == 0, "SET_BACKEND read-only");
	ok(reap(0, 5000) >= 0 && *(uint8_t *)gpa(ST) == 0,
	   "pending flush served by the new backend");
	ok(!ioctl(dev, VHOST_BLK_GET_CONFIG, &cfg) &&
	   (cfg.flags & VHOST_BLK_CONFIG_F_RO), "GET_CONFIG: read-only");
	ok(rq(0, VIRTIO_BLK_T_OUT, 0, DATA, 4096, 0) == VIRTIO_BLK_S_IOERR,
	   "write to read-only backend: IOERR");
	ok(rq(0, VIRTIO_BLK_T_IN, 0, DATA, 4096, 1) == 0,
	   "read from read-only backend");
	test_loop();
	ok(rq(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == 0,
	   "other queues still served after a broken one");
	post_many(1, 20, VIRTIO_BLK_T_IN, 0, 65536);
	ok(!ioctl(dev, VHOST_RESET_OWNER), "RESET_OWNER with I/O in flight");
	ok(!ioctl(dev, VHOST_SET_OWNER), "SET_OWNER after reset");
	close(dev);
	test_exit(path, 0);
	test_exit(path, 1);
	/*
	 * vhost.ko locks all 16 vqs with mutex_lock_nested(i) for an IOTLB
	 * message, past lockdep's 8 subclasses: on a lockdep kernel that
	 * reports a BUG and turns lockdep off for everything after it.
	 */
	if (!access("/proc/lockdep", F_OK) && !getenv("VBLK_CORE_IOTLB")) {
		for (i = 0; i < 5; i++)
			printf("ok %d IOTLB # SKIP lockdep kernel (see Documentation/vhost-blk.rst; VBLK_CORE_IOTLB=1 runs it)\n",
			       ++ntest);
	} else {
		test_iotlb(path);
	}
	printf("# %d of %d failed\n", nfail, ntest);
	return nfail ? 1 : 0;
}
