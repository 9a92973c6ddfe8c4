/* storage.h — everything storage/ offers, in one include.
 *
 * storage/ owns the disks a VM boots with and the kernel objects behind
 * them: loop devices (loop.h), device-mapper snapshot targets (dm.h), the
 * per-VM copy-on-write root disk over a never-written base image (cow.h),
 * the ext4 work disk (workdisk.h), and the rule for which files a spec may
 * name at all (imageroot.h), and which base a kept root disk goes with
 * (rootbase.h), and the spare root disks made ahead of first boots
 * (diskpool.h). It depends on util/ only. Files live in the VM dir and are
 * deleted by the caller with that dir; storage/ deletes a root disk in one
 * case only: the spec's rootfs.path changed (rootbase.h). */
#pragma once

#include "storage/cow.h"
#include "storage/diskpool.h"
#include "storage/dm.h"
#include "storage/imageroot.h"
#include "storage/loop.h"
#include "storage/rootbase.h"
#include "storage/workdisk.h"
