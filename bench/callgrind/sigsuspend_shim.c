/* Preloaded under valgrind only (bench/callgrind/run.sh). Swift's async main parks the main thread
 * in libdispatch's sigsuspend with a signal mask in read-only memory, and valgrind 3.19 writes to
 * that mask and dies ("the 'impossible' happened", SIGSEGV). Handing sigsuspend a copy on the
 * stack is all it takes; the program's behaviour is unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
    static int (*real)(const sigset_t *);
    if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    sigset_t copy = *mask;
    return real(&copy);
}
