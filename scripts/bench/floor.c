/* The floor for drover's benchmark: the least a program must do to run N
 * processes with at most J at once. posix_spawn (vfork + exec, as drover's
 * spawns) and wait, nothing else: no pipes, no process groups, no timeouts.
 * The children inherit stdin, stdout and stderr.
 *
 *   floor [-t T] N J PROGRAM [ARG...]      PROGRAM is a path (no PATH search)
 *
 * -t T: T threads (default 1), each spawning while fewer than J run and
 * reaping whichever child ends (wait), sharing the counts under a lock.
 * On a machine of several CPUs two threads spawn faster than one: a spawn
 * waits in the kernel (vfork) until the child has exec'd, and the other
 * thread spawns or reaps meanwhile. With T = the CPUs it is the limit of
 * any runner built on posix_spawn and wait.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long n, j, started, running, failed;
static char **argv_job;

static void *loop(void *unused) {
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&mu);
        if (started < n && running < j) {
            started++;
            running++;
            pthread_mutex_unlock(&mu);
            pid_t pid;
            int err = posix_spawn(&pid, argv_job[0], NULL, NULL, argv_job, environ);
            if (err != 0) {
                fprintf(stderr, "floor: cannot spawn %s: %s\n", argv_job[0], strerror(err));
                exit(1);
            }
            continue;
        }
        if (started >= n && running == 0) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        pthread_mutex_unlock(&mu);
        int status;
        if (wait(&status) < 0) {
            /* The other thread reaped the last one, or has not spawned
             * its next yet. */
            if (errno == ECHILD) {
                sched_yield();
                continue;
            }
            perror("floor: wait");
            exit(1);
        }
        pthread_mutex_lock(&mu);
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
        pthread_mutex_unlock(&mu);
    }
}

int main(int argc, char **argv) {
    long threads = 1;
    if (argc > 2 && strcmp(argv[1], "-t") == 0) {
        threads = atol(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: floor [-t T] N J PROGRAM [ARG...]\n");
        return 2;
    }
    n = atol(argv[1]);
    j = atol(argv[2]);
    argv_job = argv + 3;
    if (n < 0 || j < 1 || threads < 1 || threads > 64) {
        fprintf(stderr, "floor: N >= 0, J >= 1, 1 <= T <= 64\n");
        return 2;
    }
    pthread_t t[64];
    for (long i = 1; i < threads; i++) {
        if (pthread_create(&t[i], NULL, loop, NULL) != 0) {
            fprintf(stderr, "floor: cannot start a thread\n");
            return 1;
        }
    }
    loop(NULL);
    for (long i = 1; i < threads; i++) pthread_join(t[i], NULL);
    return failed > 0;
}
