/* The control ioctls of powercutfs, shared by the daemon, its control command and the
 * syncfs preload. FUSE forwards only "restricted" ioctls: the argument size is in the number. */
#ifndef POWERCUT_H
#define POWERCUT_H
#include <stdint.h>
#include <sys/ioctl.h>

struct pc_status {
    uint64_t cut;              /* 1 once the power was cut: everything answers EIO */
    uint64_t pid;              /* the daemon */
    uint64_t dirty_files;      /* inodes with unsynced data */
    uint64_t pending_dir_ops;  /* unsynced directory operations */
};

#define PC_IOC_CUT    _IO('p', 0x71)   /* roll back everything unsynced, then refuse all I/O */
#define PC_IOC_SYNCFS _IO('p', 0x72)   /* what syncfs(2) would do on a disk: commit everything */
#define PC_IOC_STATUS _IOR('p', 0x73, struct pc_status)
#define PC_IOC_EIO    _IO('p', 0x74)   /* on a file: every later read of its inode fails with EIO */

#define FUSE_SUPER_MAGIC_ 0x65735546
#endif
