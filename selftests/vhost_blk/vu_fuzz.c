// SPDX-License-Identifier: GPL-2.0
/*
 * vu_fuzz: a message-stream fuzzer for vhost-blkd. Each session connects,
 * sometimes sets up a valid ring first (then fills guest memory with
 * noise and kicks, so the kernel chews on garbage descriptors), then sends
 * messages made from valid templates and mutated: unknown requests, wrong
 * sizes and flags, payload bytes flipped, odd memory tables, fds of the
 * wrong kind or too many. The daemon may refuse and close the connection
 * at any point, but it must stay alive and close every connection once
 * the fuzzer stops sending.
 *
 *   vu_fuzz SOCK PID [--sessions N] [--messages N] [--seed S]
 *
 * Prints the seed (so a failure reproduces) and counts; exit 0 when the
 * daemon survived every session, 1 otherwise, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../tools/libvblk/vuser.h"

#define MEM_SIZE	(1U << 20)
#define GPA_BASE	0x100000ULL
#define FE_BASE		0x7f0000000000ULL	/* our pretend addresses */
#define RING_NUM	256
#define CLOSE_WAIT_MS	10000

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static unsigned int pick(unsigned int n)
{
	return n ? rnd() % n : 0;
}

/* A ring index: mostly one of the daemon's, sometimes not. */
static unsigned int ring_idx(void)
{
	return pick(8) ? pick(4) : pick(300);
}

struct session {
	int sock;
	int memfd;
	uint8_t *mem;
	int fds[16];		/* fds to attach to the next message */
	unsigned int nfds;
	int owned[64];		/* every fd made for this session */
	unsigned int nowned;
	int kick;
	bool closed;		/* the daemon closed on us */
};

struct stats {
	unsigned long sessions, messages, refused, prologues, kicks;
};

static int own(struct session *s, int fd)
{
	if (fd >= 0 && s->nowned < 64)
		s->owned[s->nowned++] = fd;
	else if (fd >= 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* An fd of a random kind, often not the one the message wants. */
static int wrong_fd(struct session *s)
{
	int p[2], fd = -1;

	switch (pick(7)) {
	case 0:
		if (!pipe(p)) {
			own(s, p[1]);
			fd = p[0];
		}
		break;
	case 1:
		fd = open("/dev/null", O_RDWR);
		break;
	case 2:
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		break;
	case 3:
		fd = open("/proc/self/stat", O_RDONLY);
		break;
	case 4:
		fd = open("/", O_RDONLY | O_DIRECTORY);
		break;
	case 5:
		/* a memfd too small for what it is said to hold */
		fd = memfd_create("vu-fuzz-small", 0);
		if (fd >= 0 && ftruncate(fd, pick(3) * 4096)) {
			close(fd);
			fd = -1;
		}
		break;
	default:
		fd = eventfd(0, 0);
		break;
	}
	return own(s, fd);
}

static void add_fd(struct session *s, int fd)
{
	if (s->nfds < 16)
		s->fds[s->nfds++] = fd;
}

static void mutate_fds(struct session *s)
{
	unsigned int i;

	if (pick(8) == 0 && s->nfds)
		s->fds[pick(s->nfds)] = wrong_fd(s);
	if (pick(12) == 0)
		s->nfds = pick(s->nfds + 1);
	if (pick(16) == 0)
		for (i = pick(10); i; i--)
			add_fd(s, wrong_fd(s));
}

/* Read and drop whatever the daemon replied; notice a close. */
static void drain(struct session *s)
{
	char buf[512];
	ssize_t n;

	for (;;) {
		n = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			s->closed = true;
		return;
	}
}

static void send_msg(struct session *s, uint32_t req, uint32_t flags,
		     const void *payload, uint32_t size, uint32_t sent)
{
	char ctl[CMSG_SPACE(sizeof(int) * 16)];
	uint8_t buf[VU_HDR_SIZE + 512];
	struct iovec iov = { buf, VU_HDR_SIZE + sent };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	memcpy(buf + VU_HDR_SIZE, payload, sent);
	if (s->nfds) {
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * s->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * s->nfds);
		memcpy(CMSG_DATA(c), s->fds, sizeof(int) * s->nfds);
	}
	if (sendmsg(s->sock, &mh, MSG_NOSIGNAL) < 0)
		s->closed = true;
	s->nfds = 0;
	if (!s->closed)
		drain(s);
}

/* A well-formed message, waiting for the reply or ack it gets. */
static void valid(struct session *s, uint32_t req, const void *p,
		  uint32_t size)
{
	struct pollfd pfd = { s->sock, POLLIN, 0 };
	bool answered = req == VU_GET_FEATURES ||
			req == VU_GET_PROTOCOL_FEATURES ||
			req == VU_GET_QUEUE_NUM || req == VU_GET_CONFIG;

	send_msg(s, req, VU_VERSION | (answered ? 0 : VU_FLAG_NEED_REPLY),
		 p, size, size);
	if (!s->closed && poll(&pfd, 1, CLOSE_WAIT_MS) > 0)
		drain(s);
}

static void ring_layout(struct vu_addr *a, unsigned int idx)
{
	memset(a, 0, sizeof(*a));
	a->index = idx;
	a->desc = FE_BASE + 0x10000 * idx;
	a->avail = a->desc + 0x1000;
	a->used = a->desc + 0x2000;
}

static void mem_table(struct vu_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->nregions = 1;
	m->regions[0].gpa = GPA_BASE;
	m->regions[0].size = MEM_SIZE;
	m->regions[0].uaddr = FE_BASE;
}

/* A correct setup of ring 0, then noise in guest memory and a kick. */
static void prologue(struct session *s, struct stats *st)
{
	uint64_t f = (1ULL << 32) | (1ULL << VU_F_PROTOCOL_FEATURES);
	uint64_t pf = (1ULL << VU_PROTO_F_REPLY_ACK) | (1ULL << VU_PROTO_F_MQ) |
		      (1ULL << VU_PROTO_F_CONFIG);
	struct vu_state num = { 0, RING_NUM }, en = { 0, 1 };
	struct vu_addr a;
	struct vu_mem m;
	uint64_t idx = 0, one = 1;
	unsigned int i;
	int call;

	send_msg(s, VU_SET_PROTOCOL_FEATURES, VU_VERSION, &pf, 8, 8);
	valid(s, VU_SET_FEATURES, &f, 8);
	mem_table(&m);
	add_fd(s, s->memfd);
	valid(s, VU_SET_MEM_TABLE, &m, 8 + sizeof(m.regions[0]));
	valid(s, VU_SET_VRING_NUM, &num, sizeof(num));
	ring_layout(&a, 0);
	valid(s, VU_SET_VRING_ADDR, &a, sizeof(a));
	call = own(s, eventfd(0, 0));
	add_fd(s, call);
	valid(s, VU_SET_VRING_CALL, &idx, 8);
	s->kick = own(s, eventfd(0, 0));
	add_fd(s, s->kick);
	valid(s, VU_SET_VRING_KICK, &idx, 8);
	valid(s, VU_SET_VRING_ENABLE, &en, sizeof(en));
	for (i = 0; i < MEM_SIZE / 8; i++)
		((uint64_t *)s->mem)[i] = pick(4) ? rnd() : 0;
	if (write(s->kick, &one, 8) == 8)
		st->kicks++;
	st->prologues++;
}

static const uint32_t known[] = {
	VU_GET_FEATURES, VU_SET_FEATURES, VU_SET_OWNER, VU_RESET_OWNER,
	VU_SET_MEM_TABLE, VU_SET_LOG_BASE, VU_SET_LOG_FD, VU_SET_VRING_NUM,
	VU_SET_VRING_ADDR, VU_SET_VRING_BASE, VU_GET_VRING_BASE,
	VU_SET_VRING_KICK, VU_SET_VRING_CALL, VU_SET_VRING_ERR,
	VU_GET_PROTOCOL_FEATURES, VU_SET_PROTOCOL_FEATURES, VU_GET_QUEUE_NUM,
	VU_SET_VRING_ENABLE, VU_GET_CONFIG, VU_SET_CONFIG, VU_RESET_DEVICE,
};

/* The payload and fds a request would normally carry. */
static uint32_t template(struct session *s, uint32_t req, uint8_t *p)
{
	struct vu_state st = { ring_idx(), 1U << pick(16) };
	struct vu_config cfg = { 0, 60, 0, { 0 } };
	struct vu_log lg = { 4096U << pick(4), pick(2) * 4096 };
	uint64_t u = ring_idx() | (pick(8) ? 0 : VU_VRING_NOFD);
	struct vu_addr a;
	struct vu_mem m;
	int fd;

	switch (req) {
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
		u = rnd() & rnd();
		if (pick(4))
			u = req == VU_SET_FEATURES ?
			    (1ULL << 32) | (1ULL << VU_F_PROTOCOL_FEATURES) :
			    (1ULL << VU_PROTO_F_REPLY_ACK);
		memcpy(p, &u, 8);
		return 8;
	case VU_SET_MEM_TABLE:
		mem_table(&m);
		m.nregions = pick(4) ? 1 + pick(3) : pick(12);
		for (unsigned int i = 1; i < m.nregions && i < VU_MAX_FDS; i++) {
			m.regions[i].gpa = pick(2) ? GPA_BASE + i * MEM_SIZE : rnd();
			m.regions[i].size = pick(2) ? MEM_SIZE / 2 : rnd();
			m.regions[i].uaddr = rnd();
			m.regions[i].mmap_offset = pick(2) ? 0 : rnd();
		}
		for (unsigned int i = 0; i < m.nregions; i++)
			add_fd(s, s->memfd);
		memcpy(p, &m, sizeof(m));
		return 8 + 32 * (m.nregions < VU_MAX_FDS ? m.nregions : VU_MAX_FDS);
	case VU_SET_LOG_BASE:
		fd = own(s, memfd_create("vu-fuzz-log", 0));
		if (fd >= 0 && ftruncate(fd, pick(3) * 8192))
			fd = -1;
		add_fd(s, fd);
		memcpy(p, &lg, sizeof(lg));
		return sizeof(lg);
	case VU_SET_LOG_FD:
		add_fd(s, own(s, eventfd(0, 0)));
		return 0;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		if (req == VU_SET_VRING_ENABLE)
			st.num = pick(3);
		memcpy(p, &st, sizeof(st));
		return sizeof(st);
	case VU_SET_VRING_ADDR:
		ring_layout(&a, ring_idx() % 300);
		if (pick(4) == 0)
			a.used = FE_BASE + MEM_SIZE - pick(4096);
		if (pick(6) == 0) {
			a.flags = 1;
			a.log = rnd() >> pick(64);
		}
		memcpy(p, &a, sizeof(a));
		return sizeof(a);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		if (!(u & VU_VRING_NOFD))
			add_fd(s, own(s, eventfd(0, 0)));
		memcpy(p, &u, 8);
		return 8;
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		cfg.offset = pick(8) ? 0 : pick(300);
		cfg.size = pick(8) ? 60 : pick(300);
		memcpy(p, &cfg, 12 + (cfg.size < 256 ? cfg.size : 256));
		return 12 + (cfg.size < 256 ? cfg.size : 256);
	default:
		return 0;
	}
}

static void fuzz_one(struct session *s)
{
	uint8_t p[512];
	uint32_t req, flags = VU_VERSION, size, sent;
	unsigned int i;

	req = pick(10) ? known[pick(sizeof(known) / sizeof(known[0]))] :
	      pick(2) ? pick(64) : (uint32_t)rnd();
	memset(p, 0, sizeof(p));
	size = template(s, req, p);
	if (pick(6) == 0)
		for (i = 1 + pick(4); i; i--)
			p[pick(size ? size : 1)] ^= 1 << pick(8);
	if (pick(10) == 0)
		size = pick(300);
	if (pick(4) == 0)
		flags |= VU_FLAG_NEED_REPLY;
	if (pick(20) == 0)
		flags = rnd();
	mutate_fds(s);
	sent = size;
	if (pick(40) == 0) {
		size = rnd();	/* announce more than will ever come */
		sent = pick(64);
	}
	if (sent > 300)
		sent = 300;
	send_msg(s, req, flags, p, size, sent);
}

/* Stop sending; the daemon must close the connection in time. */
static int finish(struct session *s)
{
	struct pollfd pfd = { s->sock, POLLIN, 0 };
	char buf[512];
	int waited = 0;
	ssize_t n;

	shutdown(s->sock, SHUT_WR);
	while (waited < CLOSE_WAIT_MS) {
		if (poll(&pfd, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		n = recv(s->sock, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return 0;
	}
	return -1;
}

static int sock_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, i;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (i = 0; i < 100; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		usleep(50000);
	}
	return -1;
}

static int session(const char *path, unsigned int nmsg, struct stats *st)
{
	struct session s;
	unsigned int i;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	s.kick = -1;
	s.sock = sock_connect(path);
	s.memfd = memfd_create("vu-fuzz-mem", 0);
	if (s.sock < 0 || s.memfd < 0 || ftruncate(s.memfd, MEM_SIZE)) {
		fprintf(stderr, "vu_fuzz: cannot connect to %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	s.mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		     s.memfd, 0);
	if (s.mem == MAP_FAILED)
		return -1;
	if (pick(2))
		prologue(&s, st);
	for (i = 0; i < nmsg && !s.closed; i++) {
		fuzz_one(&s);
		st->messages++;
		if (s.kick >= 0 && pick(8) == 0) {
			uint64_t one = 1;

			if (write(s.kick, &one, 8) == 8)
				st->kicks++;
		}
	}
	if (s.closed)
		st->refused++;
	else if (finish(&s)) {
		fprintf(stderr, "vu_fuzz: session %lu: the daemon did not close "
			"the connection within %d ms\n", st->sessions,
			CLOSE_WAIT_MS);
		rc = -1;
	}
	close(s.sock);
	munmap(s.mem, MEM_SIZE);
	close(s.memfd);
	for (i = 0; i < s.nowned; i++)
		close(s.owned[i]);
	st->sessions++;
	return rc;
}

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: vu_fuzz SOCK PID [--sessions N] [--messages N] "
		"[--seed S]\n"
		"Fuzz the vhost-user message stream of the vhost-blkd with\n"
		"pid PID listening on SOCK; exit 0 when it survived.\n");
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long sessions = 200, nmsg = 40, i;
	struct stats st = { 0 };
	pid_t pid;
	int a;

	if (argc > 1 && !strcmp(argv[1], "--help"))
		return usage(stdout, 0);
	if (argc < 3)
		return usage(stderr, 2);
	pid = atoi(argv[2]);
	rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (a = 3; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--sessions"))
			sessions = strtoul(argv[a + 1], NULL, 0);
		else if (!strcmp(argv[a], "--messages"))
			nmsg = strtoul(argv[a + 1], NULL, 0);
		else if (!strcmp(argv[a], "--seed"))
			rng = strtoull(argv[a + 1], NULL, 0);
		else
			return usage(stderr, 2);
	}
	if (a != argc || pid <= 0)
		return usage(stderr, 2);
	if (!rng)
		rng = 1;
	printf("vu_fuzz: seed %llu, %lu sessions of up to %lu messages\n",
	       (unsigned long long)rng, sessions, nmsg);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sessions; i++) {
		if (session(argv[1], nmsg, &st) || kill(pid, 0)) {
			printf("vu_fuzz: FAILED in session %lu (daemon %s)\n", i,
			       kill(pid, 0) ? "gone" : "alive");
			return 1;
		}
	}
	/*
	 * The daemon usually reads a bad message only after the whole
	 * session was sent: its close then ends finish(), not a send, and
	 * the test counts refusals in the daemon's log instead.
	 */
	printf("vu_fuzz: %lu sessions, %lu messages, %lu cut off early, "
	       "%lu with a running ring, %lu kicks: daemon alive\n",
	       st.sessions, st.messages, st.refused, st.prologues, st.kicks);
	return 0;
}
