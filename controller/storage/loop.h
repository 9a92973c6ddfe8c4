/* loop.h — loop block devices, by ioctl on /dev/loop-control and
 * /dev/loopN (no losetup).
 *
 * Two ways to attach, because a loop device is a kernel object that can
 * outlive the controller:
 *
 *  - loop_attach(): a plain device that stays until loop_detach(). If the
 *    controller dies before recording it, loop_list_backed_under() finds it
 *    again by its backing file (the orphan sweep over the state dir).
 *
 *  - loop_attach_held(): LO_FLAGS_AUTOCLEAR, and the caller gets the open fd
 *    on the device. The kernel detaches the device when its LAST opener
 *    closes — so it disappears by itself when the controller crashes before
 *    handing it to a consumer (the fd dies with the process), and later when
 *    the consumer (a dm-snapshot target) lets go of it. Measured on this
 *    kernel: with AUTOCLEAR the device is gone as soon as the configuring fd
 *    closes if nobody else opened it, which is why the fd must be kept until
 *    the consumer holds the device. This is what root disks use: the base
 *    image lives outside the state dir, so a backing-file sweep could not
 *    tell whose base loop an orphan is; AUTOCLEAR makes orphans impossible.
 *
 * loop_detach() is LOOP_CLR_FD. On current kernels that is lazy: on a device
 * someone still has open it only sets AUTOCLEAR, so detaching never rips a
 * disk from under a running consumer. It is idempotent (an unbound or missing
 * device is success).
 *
 * Attaching uses LOOP_CONFIGURE (Linux >= 5.8; Debian 12 ships 6.1), which
 * sets the backing file and flags in one atomic step.
 *
 * Device names are returned as "/dev/loopN", owned by the caller (free()). */
#pragma once

#include "util/util.h"

/* Attach file as a new loop device (read-only when read_only: the backing
 * file is then also opened O_RDONLY, so the kernel can never write it).
 * Retries when another process takes the free device first (EBUSY). */
int loop_attach(const char *file, bool read_only, char **ret_dev);

/* Like loop_attach() but with LO_FLAGS_AUTOCLEAR; *ret_fd is an O_CLOEXEC fd
 * on the device that keeps it alive. Close it once the consumer has opened
 * the device (or to drop the device on an error path). */
int loop_attach_held(const char *file, bool read_only, char **ret_dev, int *ret_fd);

/* LOOP_CLR_FD; 0 when detached, already unbound, or no such device. */
int loop_detach(const char *dev);

/* Detach dev only if it is still backed by file (compared by realpath of
 * file). A recorded "/dev/loop3" may have been freed and reused by someone
 * else since; detaching that would be wrong. 0 when detached or nothing to
 * do (unbound, other backing file). */
int loop_detach_if_backed_by(const char *dev, const char *file);

/* The backing file path the kernel reports for dev (sysfs). -ENXIO when the
 * device is not bound, -ENOENT when there is no such device. A "(deleted)"
 * suffix is kept as the kernel reports it. */
int loop_backing_file(const char *dev, char **ret_path);

/* 1 when the kernel marks dev read-only, 0 when writable, -errno. */
int loop_is_read_only(const char *dev);

/* Every bound loop device whose backing file is inside dir (component-wise:
 * /stateX is not inside /state). Sorted by name; an empty list when none.
 * *ret_devs is a strv. */
int loop_list_backed_under(const char *dir, char ***ret_devs);

/* Pure: "/dev/loop12" -> "loop12"; NULL when dev is not a loop device path
 * (only /dev/loop<digits> is accepted, so a recorded handle can never make
 * us open some other device). */
const char *loop_dev_name(const char *dev);
