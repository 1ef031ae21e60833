// SPDX-License-Identifier: GPL-2.0
/* The lock-holder process and its pid file. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "holder.h"
#include "util.h"

#define STOP_WAIT_MS	5000
#define START_WAIT_MS	30000

static int pid_file(const char *name, char *buf, size_t len)
{
	return fmt_path(buf, len, "%s/%s.pid", run_dir(), name);
}

/* /proc/PID/@what into @buf, NUL-terminated: its length, <= 0 if none. */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n > 0)
		buf[n] = '\0';
	return n;
}

/* Is pid a holder for name? Compares its command line. */
static int is_holder(pid_t pid, const char *name)
{
	char cmd[512];
	ssize_t n = read_proc(pid, "cmdline", cmd, sizeof(cmd));
	size_t i, arg = 0;
	int ok = 0;

	if (n <= 0)
		return 0;
	/* argv: <prog> hold NAME FD... */
	for (i = 0; i < (size_t)n; i += strlen(cmd + i) + 1, arg++) {
		if (arg == 1 && strcmp(cmd + i, "hold"))
			return 0;
		if (arg == 2) {
			ok = !strcmp(cmd + i, name);
			break;
		}
	}
	return ok;
}

pid_t holder_pid(const char *name)
{
	char path[4096], buf[32];
	ssize_t n;
	long pid;
	int fd;

	if (pid_file(name, path, sizeof(path)))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	if (pid <= 0 || !is_holder((pid_t)pid, name))
		return 0;
	return (pid_t)pid;
}

static int write_pid_file(const char *name, pid_t pid)
{
	char path[4096], tmp[4200], buf[32];
	int fd, n;

	if (mkdir(run_dir(), 0755) && errno != EEXIST)
		return err_errno("mkdir %s", run_dir());
	if (pid_file(name, path, sizeof(path)) ||
	    fmt_path(tmp, sizeof(tmp), "%s.tmp", path))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno("%s", tmp);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, n) != n) {
		err_errno("%s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path)) {
		err_errno("%s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void exec_holder(const char *name, const struct chain *c)
{
	char fds[CHAIN_MAX + 1][16];
	char *argv[CHAIN_MAX + 5];
	const struct chain_file *f;
	sigset_t none;
	int i, a = 0, null;

	/* started while a suspended device holds stop signals: not here */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	argv[a++] = PROG;
	argv[a++] = "hold";
	argv[a++] = (char *)name;
	for (i = 0; i < c->n + c->has_data; i++) {
		f = i < c->n ? &c->files[i] : &c->data;
		/* keep the image fds (and their locks) across exec */
		fcntl(f->fd, F_SETFD, 0);
		snprintf(fds[i], sizeof(fds[i]), "%d", f->fd);
		argv[a++] = fds[i];
	}
	argv[a] = NULL;
	execv("/proc/self/exe", argv);
	_exit(127);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Until the child has exec'd, its command line is ours and holder_stop()
 * would not recognise it: it would go on to hold the locks of a chain
 * the device no longer uses (a backup or snapshot right after attach
 * then found the image "in use"). So return only once it runs as the
 * holder.
 */
static int wait_exec(pid_t pid, const char *name)
{
	int waited;

	for (waited = 0; !is_holder(pid, name); waited += 5) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return err("%s: lock holder exited at start", name);
		if (waited >= START_WAIT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return err("%s: lock holder did not start within %d ms",
				   name, START_WAIT_MS);
		}
		sleep_ms(5);
	}
	return 0;
}

int holder_start(const char *name, const struct chain *c)
{
	pid_t pid = fork();

	if (pid < 0)
		return err_errno("fork");
	if (pid == 0)
		exec_holder(name, c);
	if (wait_exec(pid, name))
		return -1;
	if (write_pid_file(name, pid)) {
		kill(pid, SIGTERM);
		return -1;
	}
	return 0;
}

/*
 * Has @pid exited, its files (and so its locks) closed? Not when its
 * command line reads empty: an exiting task loses its memory map, which
 * /proc/PID/cmdline reads, before it closes its files. A zombie has
 * closed them, whether or not anybody reaps it.
 */
static int exited(pid_t pid)
{
	char buf[512], *p;

	if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
		return 1;
	p = strrchr(buf, ')');	/* the name may hold anything */
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

int holder_stop(const char *name)
{
	char path[4096];
	pid_t pid = holder_pid(name);
	int waited;

	if (pid_file(name, path, sizeof(path)))
		return -1;
	if (pid > 0) {
		if (kill(pid, SIGTERM) && errno != ESRCH)
			return err_errno("%s: stopping lock holder %d", name,
					 (int)pid);
		for (waited = 0; waited < STOP_WAIT_MS && !exited(pid);
		     waited += 20)
			sleep_ms(20);
		if (!exited(pid))
			return err("%s: lock holder %d did not exit", name,
				   (int)pid);
	} else {
		fprintf(stderr, PROG ": %s: warning: no lock holder was running\n",
			name);
	}
	if (unlink(path) && errno != ENOENT)
		return err_errno("%s", path);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int cmd_hold(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block, old;
	uint64_t fd;
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: " PROG " hold NAME FD... (internal: started by attach)\n");
		return 2;
	}
	/* nothing to hold unless every fd was really inherited */
	for (i = 2; i < argc; i++)
		if (parse_u64(argv[i], 3, 65535, &fd) || fcntl((int)fd, F_GETFD) < 0)
			return err("hold: %s is not an inherited file descriptor", argv[i]), 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* whatever mask it inherited, the wait takes both */
	sigdelset(&old, SIGTERM);
	sigdelset(&old, SIGINT);
	while (!stop)
		sigsuspend(&old);
	/* exiting closes the fds, which drops the OFD locks */
	return 0;
}
