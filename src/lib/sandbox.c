/* seccomp-BPF deny list for the worker and queue processes (see
   sandbox.h). A deny list, not an allow list: OpenSSL, SQLite, c-ares,
   glibc and the other helper threads use many ordinary calls that change
   between versions, and an allow list that misses one turns a library
   upgrade into an outage; what a compromised mail worker must not do is
   a short, stable list. The program:

     arch != the build's arch     -> kill the process (a 32-bit or
                                     foreign-ABI call is never ours)
     x32 numbers (x86_64)         -> EPERM
     a denied call                -> EPERM
     clone3                       -> ENOSYS (its flags sit behind a
                                     pointer BPF cannot read; glibc then
                                     falls back to clone)
     clone without CLONE_THREAD   -> EPERM (fork, posix_spawn)
     anything else                -> allow */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/sandbox.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __has_feature
#define __has_feature(x) 0
#endif
/* TERN_SANITIZER_BUILD comes from the Makefile whenever SAN is set (UBSan
   alone defines no macro); the others catch builds made another way. */
#if defined(TERN_SANITIZER_BUILD) || defined(__SANITIZE_ADDRESS__) || \
	__has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANDBOX_SANITIZER 1
#else
#define SANDBOX_SANITIZER 0
#endif

#define SANDBOX_PROG_MAX 128

bool
sandbox_sanitizer_build(void)
{
	return SANDBOX_SANITIZER;
}

#ifdef SANDBOX_ARCH
/* Calls that fail with EPERM in every build. */
static const int sandbox_denied[] = {
	__NR_process_vm_readv, __NR_process_vm_writev,
	__NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
	__NR_kexec_load,
#ifdef __NR_kexec_file_load
	__NR_kexec_file_load,
#endif
	__NR_init_module, __NR_finit_module, __NR_delete_module,
	__NR_bpf, __NR_perf_event_open,
	__NR_keyctl, __NR_add_key, __NR_request_key,
	__NR_userfaultfd,
	/* namespaces: a way to new privileges (user namespaces) */
	__NR_unshare, __NR_setns,
#ifdef __NR_pidfd_getfd
	__NR_pidfd_getfd, /* take another process's descriptors */
#endif
#ifdef __NR_fsopen /* the new mount API */
	__NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_move_mount,
	__NR_open_tree,
#endif
#ifdef __NR_mount_setattr
	__NR_mount_setattr,
#endif
};

/* Calls a sanitizer build needs (sandbox.h says why); EPERM otherwise. */
static const int sandbox_denied_unless_sanitizer[] = {
	__NR_execve, __NR_execveat, __NR_ptrace,
#ifdef __NR_fork
	__NR_fork,
#endif
#ifdef __NR_vfork
	__NR_vfork,
#endif
};

struct sandbox_prog {
	struct sock_filter f[SANDBOX_PROG_MAX];
	unsigned short len;
};

static void
sandbox_emit(struct sandbox_prog *p, struct sock_filter f)
{
	/* The program is built from fixed tables: overflowing is a bug in
	   this file, caught by the length check before it is loaded. */
	if (p->len < SANDBOX_PROG_MAX)
		p->f[p->len] = f;
	p->len++;
}

static void
sandbox_deny(struct sandbox_prog *p, int nr, unsigned err)
{
	sandbox_emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						     (unsigned)nr, 0, 1));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_ERRNO | err));
}

static void
sandbox_build(struct sandbox_prog *p)
{
	p->len = 0;
	sandbox_emit(p, (struct sock_filter)BPF_STMT(
				BPF_LD | BPF_W | BPF_ABS,
				offsetof(struct seccomp_data, arch)));
	sandbox_emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						     SANDBOX_ARCH, 1, 0));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_KILL_PROCESS));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(
				BPF_LD | BPF_W | BPF_ABS,
				offsetof(struct seccomp_data, nr)));
#ifdef __x86_64__
	/* x32 system calls share the arch value; ours are never x32. */
	sandbox_emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
						     0x40000000u, 0, 1));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_ERRNO | EPERM));
#endif
	for (size_t i = 0; i < sizeof(sandbox_denied) / sizeof(int); i++)
		sandbox_deny(p, sandbox_denied[i], EPERM);
	if (!SANDBOX_SANITIZER) {
		for (size_t i = 0;
		     i < sizeof(sandbox_denied_unless_sanitizer) / sizeof(int);
		     i++)
			sandbox_deny(p, sandbox_denied_unless_sanitizer[i], EPERM);
	}
#ifdef __NR_clone3
	sandbox_deny(p, __NR_clone3, ENOSYS);
#endif
	if (!SANDBOX_SANITIZER) {
		/* clone: allowed only for threads. flags are the first
		   argument on x86_64 and aarch64; CLONE_THREAD is in its low
		   32 bits, which come first (little-endian). */
		sandbox_emit(p, (struct sock_filter)BPF_JUMP(
					BPF_JMP | BPF_JEQ | BPF_K, __NR_clone,
					0, 3));
		sandbox_emit(p, (struct sock_filter)BPF_STMT(
					BPF_LD | BPF_W | BPF_ABS,
					offsetof(struct seccomp_data, args[0])));
		sandbox_emit(p, (struct sock_filter)BPF_JUMP(
					BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD,
					1, 0));
		sandbox_emit(p, (struct sock_filter)BPF_STMT(
					BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
	}
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_ALLOW));
}

/* The keys process's allow list: what answering signing requests on
   sockets it already holds takes (memory for OpenSSL's numbers, random
   bytes for blinding and ECDSA nonces, the log line on stderr). */
static const int sandbox_keys_allowed[] = {
	__NR_read, __NR_write, __NR_writev, __NR_recvmsg, __NR_sendmsg,
	__NR_recvfrom, __NR_sendto, __NR_close, __NR_ppoll,
#ifdef __NR_poll
	__NR_poll,
#endif
	__NR_brk, __NR_mmap, __NR_munmap, __NR_mremap, __NR_madvise,
	__NR_futex, __NR_getrandom, __NR_clock_gettime, __NR_gettimeofday,
	__NR_getpid, __NR_gettid, __NR_rt_sigreturn, __NR_restart_syscall,
	__NR_exit, __NR_exit_group,
};

static void
sandbox_build_keys(struct sandbox_prog *p)
{
	p->len = 0;
	sandbox_emit(p, (struct sock_filter)BPF_STMT(
				BPF_LD | BPF_W | BPF_ABS,
				offsetof(struct seccomp_data, arch)));
	sandbox_emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						     SANDBOX_ARCH, 1, 0));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_KILL_PROCESS));
	sandbox_emit(p, (struct sock_filter)BPF_STMT(
				BPF_LD | BPF_W | BPF_ABS,
				offsetof(struct seccomp_data, nr)));
	/* x32 numbers have bit 30 set and so match none of these */
	for (size_t i = 0; i < sizeof(sandbox_keys_allowed) / sizeof(int); i++) {
		sandbox_emit(p, (struct sock_filter)BPF_JUMP(
					BPF_JMP | BPF_JEQ | BPF_K,
					(unsigned)sandbox_keys_allowed[i], 0, 1));
		sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
							     SECCOMP_RET_ALLOW));
	}
	sandbox_emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						     SECCOMP_RET_ERRNO | EPERM));
}

static int
sandbox_load(struct sandbox_prog *p, const char **error_r)
{
	struct sock_fprog prog;

	if (p->len > SANDBOX_PROG_MAX) {
		*error_r = "seccomp program too long";
		return -1;
	}
	/* Required for an unprivileged filter, and good anyway: no setuid
	   binary or file capability can raise privileges from here. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		*error_r = "prctl(PR_SET_NO_NEW_PRIVS) failed";
		return -1;
	}
	prog.len = p->len;
	prog.filter = p->f;
	/* TSYNC: threads started before this point (a library's, a commit
	   thread) get the same filter, or the call fails. */
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
		    SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		*error_r = errno == EINVAL ? "seccomp filters not supported by "
					     "this kernel" :
					     "seccomp(SET_MODE_FILTER) failed";
		return -1;
	}
	return 0;
}

int
sandbox_enter(const char **error_r)
{
	static struct sandbox_prog p;

	sandbox_build(&p);
	return sandbox_load(&p, error_r);
}

int
sandbox_enter_keys(const char **error_r)
{
	static struct sandbox_prog p;

	/* The sanitizers' runtime (reports, the leak check at exit) makes
	   calls no allow list of ours can foresee: there the keys process
	   gets the workers' filter instead. */
	if (SANDBOX_SANITIZER)
		return sandbox_enter(error_r);
	sandbox_build_keys(&p);
	return sandbox_load(&p, error_r);
}
#else
int
sandbox_enter(const char **error_r)
{
	*error_r = "seccomp filter not written for this architecture";
	return -1;
}

int
sandbox_enter_keys(const char **error_r)
{
	return sandbox_enter(error_r);
}
#endif
