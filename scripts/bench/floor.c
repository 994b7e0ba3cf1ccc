/* The floor for drover's benchmark: the least a program must do to run N
 * processes with at most J at once. posix_spawn (vfork + exec, as drover's
 * spawns) and wait, one thread, nothing else: no pipes, no process groups,
 * no timeouts. The children inherit stdin, stdout and stderr.
 *
 *   floor N J PROGRAM [ARG...]      PROGRAM is a path (no PATH search)
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: floor N J PROGRAM [ARG...]\n");
        return 2;
    }
    long n = atol(argv[1]), j = atol(argv[2]);
    if (n < 0 || j < 1) {
        fprintf(stderr, "floor: N >= 0 and J >= 1\n");
        return 2;
    }
    long started = 0, running = 0, failed = 0;
    while (started < n || running > 0) {
        while (started < n && running < j) {
            pid_t pid;
            int err = posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ);
            if (err != 0) {
                fprintf(stderr, "floor: cannot spawn %s: error %d\n", argv[3], err);
                return 1;
            }
            started++;
            running++;
        }
        int status;
        if (wait(&status) < 0) {
            perror("floor: wait");
            return 1;
        }
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
    }
    return failed > 0;
}
