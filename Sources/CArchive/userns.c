#define _GNU_SOURCE
#include "CArchive.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts argv[0] with argv; the child's pid, or -1. */
static pid_t spawn(char *const argv[]) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid; 0 when it exited 0. */
static int wait_ok(pid_t pid) {
    if (pid < 0) return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int strata_enter_userns(const char *newuidmap, const char *newgidmap, unsigned outer_uid, unsigned outer_gid,
                        unsigned sub_uid, unsigned sub_uid_count, unsigned sub_gid, unsigned sub_gid_count) {
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) return -1;
    pid_t self = getpid();
    pid_t helper = fork();
    if (helper < 0) {
        int e = errno;
        close(go[0]);
        close(go[1]);
        errno = e;
        return -1;
    }
    if (helper == 0) {
        /* Still in the initial namespace: wait for the parent's unshare, then map its ids. */
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1 || c != 'u') _exit(2);
        char pid[16], ou[16], og[16], su[16], suc[16], sg[16], sgc[16];
        snprintf(pid, sizeof pid, "%d", (int)self);
        snprintf(ou, sizeof ou, "%u", outer_uid);
        snprintf(og, sizeof og, "%u", outer_gid);
        snprintf(su, sizeof su, "%u", sub_uid);
        snprintf(suc, sizeof suc, "%u", sub_uid_count);
        snprintf(sg, sizeof sg, "%u", sub_gid);
        snprintf(sgc, sizeof sgc, "%u", sub_gid_count);
        char *uidv[] = {(char *)newuidmap, pid, "0", ou, "1", "1", su, suc, NULL};
        char *gidv[] = {(char *)newgidmap, pid, "0", og, "1", "1", sg, sgc, NULL};
        /* Both at once: each is a setuid program's start, paid by every rootless command. */
        pid_t u = spawn(uidv), g = spawn(gidv);
        int uok = wait_ok(u), gok = wait_ok(g);
        _exit(uok != 0 ? 3 : gok != 0 ? 4 : 0);
    }
    close(go[0]);
    int failed = unshare(CLONE_NEWUSER | CLONE_NEWNS);
    int e = errno;
    /* 'u': go on and map; anything else: the helper exits without mapping. */
    ssize_t w = write(go[1], failed ? "x" : "u", 1);
    (void)w;
    close(go[1]);
    int status = 0;
    while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {}
    if (failed) {
        errno = e;
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = EPERM;
        return -2; /* in the new namespace, but without a mapping: the caller must stop */
    }
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) return -2;
    /* Mounts made here (overlay, runc's) never reach the parent namespace. */
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -2;
    return 0;
}
