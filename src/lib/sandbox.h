#ifndef TERN_SANDBOX_H
#define TERN_SANDBOX_H
/* A seccomp-BPF filter for processes that serve the network (workers,
   the queue): after start-up they never need to run a program, trace or
   read another process, mount, load kernel code, use BPF, perf, keyrings,
   userfaultfd, namespaces, or make new processes. Those system calls fail
   with EPERM (so a mistake shows as an error in the log, not a silent
   kill); threads (clone with CLONE_THREAD) keep working. PR_SET_NO_NEW_PRIVS
   is set first. The filter applies to every thread of the process
   (SECCOMP_FILTER_FLAG_TSYNC) and to anything it might still create, and
   cannot be removed. */
#include <stdbool.h>

/* Install the filter. 0; -1 with *error_r (static text) when the kernel
   refuses or the architecture is not supported (x86_64 and aarch64 are). */
int sandbox_enter(const char **error_r);

/* The keys process's filter (src/ternd/keys_process.c): an allow list
   of the calls that answering on sockets it already holds needs (read,
   write, recvmsg, sendmsg, poll, close, memory, getrandom, clock, exit);
   everything else fails with EPERM, a foreign architecture kills. In
   sanitizer builds it is sandbox_enter's filter instead. 0 or -1 with
   *error_r. */
int sandbox_enter_keys(const char **error_r);

/* True in sanitizer builds, where execve, ptrace and fork stay allowed:
   AddressSanitizer starts llvm-symbolizer (fork + exec) to print a
   report, and LeakSanitizer stops the threads at exit from a helper task
   (clone without CLONE_THREAD) with ptrace. Denying them would lose the
   very reports the sanitizer builds exist for. */
bool sandbox_sanitizer_build(void);

#endif
