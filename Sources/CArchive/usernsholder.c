#define _GNU_SOURCE
#include "CArchive.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether /proc/<pid>/<file> holds exactly the two lines "0 outer 1" and "1 sub count". */
static int map_is(int pid, const char *file, unsigned outer, unsigned sub, unsigned count) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    unsigned long v[7];
    int n = fscanf(f, "%lu %lu %lu %lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]);
    fclose(f);
    return n == 6 && v[0] == 0 && v[1] == outer && v[2] == 1 && v[3] == 1 && v[4] == sub && v[5] == count;
}

/* Whether <pid> is a live holder: named strata-userns, not a zombie (a zombie's user namespace
 * can still be joined, but nothing would keep it once the zombie is reaped). */
static int is_holder(int pid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0) return 0;
    stat[n] = 0;
    char *close_paren = strrchr(stat, ')');
    return strstr(stat, " (strata-userns) ") != NULL && close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' &&
           close_paren[2] != 'X';
}

/* The holder: keeps the user namespace alive and does nothing else. Its own mount namespace
 * holds only an empty tmpfs (pivot_root, old root detached), so it keeps no filesystem busy. */
static void hold(void) {
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    if (syscall(SYS_close_range, 3U, ~0U, 0) != 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    }
    prctl(PR_SET_NAME, "strata-userns", 0, 0, 0);
    /* SIGTERM stops it, whatever the caller's mask and dispositions were (runuser's child
     * starts with SIGTERM ignored); the terminal's signals do not. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (unshare(CLONE_NEWNS) == 0 && mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
        mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0700") == 0 &&
        mkdir("/proc/old", 0700) == 0 && syscall(SYS_pivot_root, "/proc", "/proc/old") == 0 && chdir("/") == 0) {
        umount2("/old", MNT_DETACH);
        rmdir("/old");
    }
    if (chdir("/") != 0) {}
    for (;;) pause();
}

/* Starts a holder (double fork: it is nobody's child) and returns its pid, or -1. */
static pid_t start_holder(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t mid = fork();
    if (mid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (mid == 0) {
        close(p[0]);
        pid_t h = fork();
        if (h == 0) {
            close(p[1]);
            hold();
        }
        ssize_t w = write(p[1], &h, sizeof h);
        (void)w;
        _exit(0);
    }
    close(p[1]);
    pid_t holder = -1;
    if (read(p[0], &holder, sizeof holder) != sizeof holder) holder = -1;
    close(p[0]);
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR) {}
    return holder;
}

int strata_enter_shared_userns(const char *pid_file, const char *newuidmap, const char *newgidmap, unsigned outer_uid,
                               unsigned outer_gid, unsigned sub_uid, unsigned sub_uid_count, unsigned sub_gid,
                               unsigned sub_gid_count) {
    int fd = open(pid_file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        if (fd >= 0) close(fd);
        return strata_enter_userns(newuidmap, newgidmap, outer_uid, outer_gid, sub_uid, sub_uid_count, sub_gid,
                                   sub_gid_count);
    }
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    int pid = n > 0 ? atoi(buf) : 0;
    /* Join only a namespace mapped exactly as this user's would be (a stale pid names another
     * process: its maps differ, or /proc/<pid>/ns/user is not ours to open). */
    if (pid > 1 && is_holder(pid) && map_is(pid, "uid_map", outer_uid, sub_uid, sub_uid_count) &&
        map_is(pid, "gid_map", outer_gid, sub_gid, sub_gid_count)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns >= 0 && setns(ns, CLONE_NEWUSER) == 0) {
            close(ns);
            close(fd);
            if (unshare(CLONE_NEWNS) != 0) return -2;
            if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) return -2;
            if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -2;
            return 0;
        }
        if (ns >= 0) close(ns);
    }
    int rc = strata_enter_userns(newuidmap, newgidmap, outer_uid, outer_gid, sub_uid, sub_uid_count, sub_gid,
                                 sub_gid_count);
    if (rc == 0) {
        pid_t holder = start_holder();
        if (holder > 0) {
            int len = snprintf(buf, sizeof buf, "%d\n", (int)holder);
            if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) != len) {}
        }
    }
    close(fd);
    return rc;
}
