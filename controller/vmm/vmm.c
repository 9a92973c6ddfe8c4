/* vmm.c — driver lookup and what both drivers share (kernel command line,
 * KVM probe). */
#include "vmm/vmm.h"
#include "util/ip4.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>

static const VmmDriver *const drivers[] = {
	&vmm_firecracker_driver,
	&vmm_qemu_driver,
};

const VmmDriver *vmm_driver_by_name(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(drivers); i++)
		if (streq(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

bool vmm_kvm_usable(void)
{
	_cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return false;
	int vm = ioctl(fd, KVM_CREATE_VM, 0);
	if (vm < 0)
		return false;
	close(vm);
	return true;
}

const VmmDriver *vmm_driver_auto(const VmmSettings *s)
{
	if (vmm_firecracker_driver.available(s) && vmm_kvm_usable())
		return &vmm_firecracker_driver;
	return &vmm_qemu_driver;
}

char *vmm_kernel_cmdline(const VmmLaunchConfig *c, const char *vmm_args)
{
	_cleanup_free_ char *ip = NULL;
	if (c->tap && c->guest_ip) {
		_cleanup_free_ char *mask = ip4_format(ip4_prefix_mask(c->prefix_len));
		ip = xasprintf(" ip=%s::%s:%s:%s:eth0:off", c->guest_ip,
			       c->gateway_ip ? c->gateway_ip : "", mask, c->name);
	}
	return xasprintf("console=ttyS0 reboot=k panic=-1 root=/dev/vda rw%s%s%s%s%s",
			 vmm_args ? " " : "", vmm_args ? vmm_args : "", ip ? ip : "",
			 c->user_args ? " " : "", c->user_args ? c->user_args : "");
}
