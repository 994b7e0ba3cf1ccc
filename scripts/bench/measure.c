/* Runs one command and prints its wall time, peak RSS and exit status:
 *
 *   measure [-i IN] [-o OUT | -p] [-e ERR] -- PROGRAM [ARG...]
 *
 *   -i IN   stdin from the file IN (default /dev/null)
 *   -o OUT  stdout to the file OUT (default /dev/null)
 *   -p      stdout to a pipe that measure reads and discards (a consumer
 *           that keeps up, as `| cat >/dev/null` would)
 *   -e ERR  stderr to the file ERR (default: inherited)
 *
 * Prints "WALL_SECONDS MAXRSS_KIB STATUS CPU_SECONDS": wall time from just
 * before the spawn to the reap (clock_gettime MONOTONIC), ru_maxrss from
 * wait4 (the largest of the command and the descendants it reaped, as
 * /usr/bin/time %M), the exit status (128 + signal if killed), and the CPU
 * time (user + system) of the command and every descendant it reaped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int open_or_die(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "measure: cannot open %s: ", path);
        perror(NULL);
        exit(2);
    }
    return fd;
}

int main(int argc, char **argv) {
    const char *in = "/dev/null", *out = "/dev/null", *err = NULL;
    int drain = 0, opt;
    while ((opt = getopt(argc, argv, "+i:o:pe:")) != -1) {
        switch (opt) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'p': drain = 1; break;
        case 'e': err = optarg; break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: measure [-i IN] [-o OUT | -p] [-e ERR] -- PROGRAM [ARG...]\n");
        return 2;
    }
    int in_fd = open_or_die(in, O_RDONLY);
    int out_fd, pipe_fds[2] = {-1, -1};
    if (drain) {
        if (pipe2(pipe_fds, O_CLOEXEC) < 0) { perror("measure: pipe"); return 2; }
        out_fd = pipe_fds[1];
    } else {
        out_fd = open_or_die(out, O_WRONLY | O_CREAT | O_TRUNC);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (err) posix_spawn_file_actions_adddup2(&fa, open_or_die(err, O_WRONLY | O_CREAT | O_APPEND), 2);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[optind], &fa, NULL, argv + optind, environ);
    if (e != 0) {
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[optind], strerror(e));
        return 2;
    }
    if (drain) {
        close(pipe_fds[1]);
        static char buf[1 << 20];
        while (read(pipe_fds[0], buf, sizeof buf) > 0) {}
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("measure: wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
        + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("%.6f %ld %d %.6f\n", wall, ru.ru_maxrss, code, cpu);
    return 0;
}
