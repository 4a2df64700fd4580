/* libpowercut-syncfs.so: LD_PRELOAD it into a program under test so that its syncfs(2)
 * calls reach powercutfs. The kernel does not send FUSE_SYNCFS to a /dev/fuse daemon (only
 * to virtiofs), so without this a syncfs on the mount makes nothing durable there.
 * After the real syncfs succeeds on a FUSE filesystem, PC_IOC_SYNCFS is sent on the same
 * descriptor; a FUSE filesystem that is not powercutfs answers ENOTTY, which is ignored. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "powercut.h"

int syncfs(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    int rc = real(fd);
    if (rc != 0) return rc;
    int saved = errno;
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == FUSE_SUPER_MAGIC_) {
        if (ioctl(fd, PC_IOC_SYNCFS) != 0 && errno != ENOTTY && errno != ENOSYS && errno != EBADF)
            return -1; /* EIO after a cut */
    }
    errno = saved;
    return 0;
}
