/* Tests for lib/sandbox: the seccomp filter is installed in a forked
   child (it cannot be removed), which reports what worked as bits of its
   exit status. Threads keep working; new processes, exec, ptrace, mount,
   bpf, namespaces and keyrings fail with EPERM (exec, fork and ptrace
   stay allowed in sanitizer builds, see sandbox.h); /proc shows the
   filter and NoNewPrivs. The parent is not filtered. */
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/sandbox.h"

extern char **environ;

enum {
	SB_ENTER = 1 << 0,
	SB_THREAD = 1 << 1,
	SB_FORK = 1 << 2,
	SB_EXEC = 1 << 3,
	SB_SPAWN = 1 << 4,
	SB_PTRACE = 1 << 5,
	SB_MOUNT = 1 << 6,
	SB_BPF = 1 << 7,
	SB_UNSHARE = 1 << 8,
	SB_KEYCTL = 1 << 9,
	SB_STATUS = 1 << 10,
	SB_FILES = 1 << 11,
};

static void *
sb_thread(void *arg)
{
	return arg;
}

/* "Seccomp:\t2" and "NoNewPrivs:\t1" in /proc/self/status. */
static bool
sb_status_filtered(void)
{
	char buf[8192];
	FILE *f = fopen("/proc/self/status", "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "\nSeccomp:\t2\n") != NULL &&
	       strstr(buf, "\nNoNewPrivs:\t1\n") != NULL;
}

static bool
sb_eperm(long r)
{
	return r == -1 && errno == EPERM;
}

/* Runs in the child; returns the bits of what behaved as expected. */
static int
sb_child(void)
{
	const char *error;
	int ok = 0;
	pthread_t t;
	void *ret = NULL;
	pid_t pid;
	char *argv[] = { "/bin/true", NULL };
	bool san = sandbox_sanitizer_build();
	FILE *f;

	if (sandbox_enter(&error) < 0)
		return 0;
	ok |= SB_ENTER;
	/* threads: pthread_create (clone3 -> ENOSYS -> clone with
	   CLONE_THREAD) */
	if (pthread_create(&t, NULL, sb_thread, &ok) == 0 &&
	    pthread_join(t, &ret) == 0 && ret == &ok)
		ok |= SB_THREAD;
	/* fork */
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (san ? pid > 0 : sb_eperm(pid))
		ok |= SB_FORK;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	/* exec (in a sanitizer build it would replace this process: not
	   tried there) */
	if (san || sb_eperm(execve("/bin/true", argv, environ)))
		ok |= SB_EXEC;
	if (san) {
		ok |= SB_SPAWN;
	} else {
		int r = posix_spawn(&pid, "/bin/true", NULL, NULL, argv,
				    environ);
		if (r != 0)
			ok |= SB_SPAWN;
		else
			waitpid(pid, NULL, 0);
	}
	if (san || sb_eperm(ptrace(PTRACE_TRACEME, 0, NULL, NULL)))
		ok |= SB_PTRACE;
	/* would be ENOENT without the filter (or work, as root) */
	if (sb_eperm(mount("none", "/nonexistent-tern-test", "tmpfs", 0, NULL)))
		ok |= SB_MOUNT;
	if (sb_eperm(syscall(__NR_bpf, BPF_PROG_LOAD, NULL, 0)))
		ok |= SB_BPF;
	if (sb_eperm(unshare(CLONE_NEWUSER)))
		ok |= SB_UNSHARE;
	if (sb_eperm(syscall(__NR_keyctl, 0, 0, 0, 0, 0)))
		ok |= SB_KEYCTL;
	if (sb_status_filtered())
		ok |= SB_STATUS;
	/* ordinary work goes on */
	f = fopen("/proc/self/stat", "r");
	if (f != NULL && getpid() > 0) {
		ok |= SB_FILES;
		fclose(f);
	}
	return ok;
}

static void
test_sandbox_child(void)
{
	int pipefd[2], ok = -1, status = 0;
	pid_t pid;

	test_assert(pipe(pipefd) == 0);
	pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		int bits = sb_child();
		ssize_t w = write(pipefd[1], &bits, sizeof(bits));
		_exit(w == sizeof(bits) ? 0 : 1);
	}
	close(pipefd[1]);
	test_assert(read(pipefd[0], &ok, sizeof(ok)) == sizeof(ok));
	close(pipefd[0]);
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_assert(ok & SB_ENTER);
	test_assert(ok & SB_THREAD);
	test_assert(ok & SB_FORK);
	test_assert(ok & SB_EXEC);
	test_assert(ok & SB_SPAWN);
	test_assert(ok & SB_PTRACE);
	test_assert(ok & SB_MOUNT);
	test_assert(ok & SB_BPF);
	test_assert(ok & SB_UNSHARE);
	test_assert(ok & SB_KEYCTL);
	test_assert(ok & SB_STATUS);
	test_assert(ok & SB_FILES);
}

/* The keys process's allow list: what it needs works (pipe I/O, large
   and small allocations, random bytes, the clock), anything else fails
   with EPERM: opening a file, making a socket, forking. In sanitizer
   builds it is the workers' filter (sandbox.h), which allows opening. */
static int
sb_keys_child(void)
{
	struct timespec ts;
	unsigned char rnd[16];
	int ok = 0, sv[2];
	void *big, *small;

	if (sandbox_enter_keys(&(const char *){ NULL }) < 0)
		return 0;
	ok |= 1;
	big = malloc(8 << 20);
	small = malloc(100);
	if (big != NULL && small != NULL) {
		memset(big, 1, 8 << 20);
		ok |= 2;
	}
	free(big);
	free(small);
	if (getrandom(rnd, sizeof(rnd), 0) == sizeof(rnd) &&
	    clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		ok |= 4;
	errno = 0;
	if (open("/proc/self/status", O_RDONLY) < 0 && errno == EPERM)
		ok |= 8;
	errno = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 && errno == EPERM)
		ok |= 16;
	errno = 0;
	if (syscall(__NR_getuid) == -1 && errno == EPERM)
		ok |= 32;
	return ok;
}

static void
test_sandbox_keys_child(void)
{
	int pipefd[2], ok = -1, status = 0;
	pid_t pid;

	test_assert(pipe(pipefd) == 0);
	pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		int bits = sb_keys_child();
		ssize_t w = write(pipefd[1], &bits, sizeof(bits));
		_exit(w == sizeof(bits) ? 0 : 1);
	}
	close(pipefd[1]);
	test_assert(read(pipefd[0], &ok, sizeof(ok)) == sizeof(ok));
	close(pipefd[0]);
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_assert((ok & 7) == 7);
	if (!sandbox_sanitizer_build())
		test_assert((ok & 56) == 56);
}

/* The parent (like the master) is untouched by its child's filter. */
static void
test_sandbox_parent_unfiltered(void)
{
	char buf[8192];
	FILE *f = fopen("/proc/self/status", "r");
	size_t n;

	test_assert(f != NULL);
	if (f == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	test_assert(strstr(buf, "\nSeccomp:\t0\n") != NULL);
}

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if __has_feature(address_sanitizer) || defined(__SANITIZE_ADDRESS__)
/* Why sanitizer builds allow fork and ptrace: LeakSanitizer stops the
   threads from a helper task with ptrace at exit. A filtered child that
   leaks must still get its leak report, not "LeakSanitizer has
   encountered a fatal error" (what the strict filter gives: tried). */
static void
test_sandbox_leak_report(void)
{
	int status = 0, p[2];
	char out[65536];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	test_assert(pipe(p) == 0);
	pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		const char *error;
		void *volatile leak;

		dup2(p[1], 2);
		close(p[0]);
		if (sandbox_enter(&error) < 0)
			_exit(3);
		leak = malloc(77);
		leak = NULL;
		(void)leak;
		exit(0);
	}
	close(p[1]);
	while (got < sizeof(out) - 1 &&
	       (n = read(p[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		    WEXITSTATUS(status) != 3);
	test_assert(strstr(out, "ERROR: LeakSanitizer: detected memory leaks") !=
		    NULL);
	test_assert(strstr(out, "77 byte(s) leaked") != NULL);
}
#endif

static const struct test_case tests[] = {
#if __has_feature(address_sanitizer) || defined(__SANITIZE_ADDRESS__)
	{ "sandbox_leak_report", test_sandbox_leak_report },
#endif
	{ "sandbox_child", test_sandbox_child },
	{ "sandbox_keys_child", test_sandbox_keys_child },
	{ "sandbox_parent_unfiltered", test_sandbox_parent_unfiltered },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return test_run(argc, argv, tests);
}
