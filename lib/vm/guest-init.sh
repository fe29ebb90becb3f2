#!/bin/busybox sh
# daxpin's guest /init (lib/vm/initramfs.ts puts it in the initramfs as is).
#
# Kernel command line: `daxpin.probe` only proves the kernel reached userspace (the KVM
# probe). Otherwise the command to run is `<results share>/.daxpin-boot/command.sh`, run
# by the host's /bin/sh inside the chroot, with the results share mounted at the path
# named in `.daxpin-boot/mountpoint` (the host's own path of that directory, so paths
# mean the same on both sides). `.daxpin-boot/prefetch` (optional) lists host files the
# command reads first (node, daxpin's modules): read once in the background while
# modules load, they are in the page cache (9p cache=loose) by the time the command
# starts. `.daxpin-boot/keep` lists host directories under /tmp or /run to bind in.
#
# The host watches the console for the `daxpin-guest: ` lines (GUEST_MARKERS in
# lib/vm/initramfs.ts; a unit test checks they agree). `daxpin-guest: at <uptime> <phase>`
# lines time the phases.
#
# Under TCG every fork costs milliseconds: the script keeps them few (no subshells per
# module, one mkdir for many directories, the release read from a file, not uname).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mark() { read -r up idle < /proc/uptime; echo "daxpin-guest: at $up $*"; }
read -r release < /etc/daxpin/release
mark init
fail() { echo "daxpin-guest: error $*"; sync; poweroff -f; echo o > /proc/sysrq-trigger; }
if grep -qw daxpin.probe /proc/cmdline; then echo "daxpin-guest: probe ok"; poweroff -f; fi
echo 1 > /proc/sys/kernel/sysrq
# busybox's modprobe, reached as /sbin/modprobe, serves the kernel's request_module() calls
# each line of a list: <module name> <path under /lib/modules/$release>
load() {
  while read -r name mod; do
    [ -d /sys/module/$name ] || insmod /lib/modules/$release/$mod || echo "daxpin-guest: insmod $mod failed"
  done < $1
}
load /etc/daxpin/modules.root
mkdir -p /host /rw /newroot /results
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 host0 /host || fail "mount host root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "mount overlay on host root"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /results || fail "mount results share over 9p"
boot=/results/.daxpin-boot
where=$(cat $boot/mountpoint) || fail "no $boot/mountpoint"
for d in /dev /proc /sys; do mount --bind $d /newroot$d; done
mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/lib/modules/$release
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mount -t tmpfs tmpfs /newroot/tmp
mount -t tracefs tracefs /newroot/sys/kernel/tracing
mount -t debugfs debugfs /newroot/sys/kernel/debug
# the kernel's own modules where the host's modprobe looks for them
mount --bind /lib/modules/$release /newroot/lib/modules/$release
# host directories the guest needs that lie under a directory it mounts afresh
# (daxpin checked out under /tmp, say): the host's copy, read-only, over the tmpfs
if [ -f $boot/keep ]; then
  while read -r p; do
    [ -n "$p" ] || continue
    mkdir -p "/newroot$p" && mount --bind "/host$p" "/newroot$p" || fail "bind host $p"
  done < $boot/keep
fi
mkdir -p "/newroot$where" && mount --bind /results "/newroot$where" || fail "bind results share at $where"
mark root
# the page cache warm-up runs beside the module loads (2 vCPUs); the command does not wait for it
[ -s $boot/prefetch ] && { sed 's|^|/host|' $boot/prefetch | xargs cat > /dev/null 2>&1; mark prefetched; } &
chains=
for list in /etc/daxpin/modules.chain*; do
  [ -f $list ] || continue
  load $list &
  chains="$chains $!"
done
[ -z "$chains" ] || wait $chains
mark modules
mount -t fusectl fusectl /newroot/sys/fs/fuse/connections 2>/dev/null
hostname daxpin-guest
ip link set lo up
echo "daxpin-guest: command start"
chroot /newroot /bin/sh "$where/.daxpin-boot/command.sh" </dev/null >/dev/console 2>&1
rc=$?
echo $rc > $boot/exit-status
sync
echo "daxpin-guest: command exit $rc"
poweroff -f
echo o > /proc/sysrq-trigger
