#define _GNU_SOURCE
#include "CArchive.h"
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* pipe2 and accept4 are GNU extensions, out of Swift's Glibc module: these make them reachable. */

int strata_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int strata_accept_cloexec(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}
