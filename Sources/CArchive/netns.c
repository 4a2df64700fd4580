#define _GNU_SOURCE
#include "CArchive.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

struct connect_job {
    int nsfd;
    unsigned short port;
    int fd;
    int err;
    int type;
};

/* On a thread of its own: a network namespace is a thread's, so the caller's stays as it was. */
static void *connect_in(void *arg) {
    struct connect_job *job = arg;
    if (setns(job->nsfd, CLONE_NEWNET) != 0) {
        job->err = errno;
        return NULL;
    }
    int fd = socket(AF_INET, job->type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        job->err = errno;
        return NULL;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(job->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        job->err = errno;
        close(fd);
        return NULL;
    }
    job->fd = fd;
    return NULL;
}

static int connect_job_run(int nsfd, unsigned short port, int type) {
    struct connect_job job = {nsfd, port, -1, 0, type};
    pthread_t t;
    int rc = pthread_create(&t, NULL, connect_in, &job);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    pthread_join(t, NULL);
    if (job.fd < 0) errno = job.err;
    return job.fd;
}

int strata_connect_in_netns(int nsfd, unsigned short port) {
    return connect_job_run(nsfd, port, SOCK_STREAM);
}

int strata_udp_connect_in_netns(int nsfd, unsigned short port) {
    return connect_job_run(nsfd, port, SOCK_DGRAM);
}
