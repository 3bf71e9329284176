#!/bin/busybox sh
# PID 1 of the Linux VM: load the IPsec modules, bring up the network, run the kernel test suite, report, power off.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/net
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
ln -sf /bin/busybox /sbin/modprobe

echo "natt-vm: kernel $(uname -r)"
while read -r mod; do
  [ -n "$mod" ] || continue
  out=$(insmod "$mod" 2>&1) || case "$out" in *exist*) ;; *) echo "natt-vm: insmod $mod: $out" ;; esac
done < /etc/natt-modules
echo "natt-vm: modules loaded: $(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
[ -c /dev/net/tun ] || mknod /dev/net/tun c 10 200

/usr/sbin/ip link set lo up
/usr/sbin/ip link set eth0 up
/usr/sbin/ip addr add 10.0.2.15/24 dev eth0
/usr/sbin/ip route add default via 10.0.2.2
# Settings passed by the host on the kernel command line (natt.ctl=PORT natt.fwd=PORT natt.filter=...).
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    natt.ctl=*) export NATT_VM_CTL="10.0.2.2:${arg#natt.ctl=}" ;;
    natt.fwd=*) export NATT_VM_HOSTFWD="${arg#natt.fwd=}" ;;
    natt.filter=*) NATT_VM_FILTER="${arg#natt.filter=}" ;;
  esac
done
export NATT_VM=1 CI=1 NO_COLOR=1 FORCE_COLOR=0

cd /natt
echo "natt-vm: running the kernel suite (node $(node --version))"
# the host joined its filters with commas (the kernel command line splits on spaces)
node scripts/vm/guest/run-suite.js $(echo "${NATT_VM_FILTER:-}" | tr ',' ' ')
status=$?
echo "natt-vm: kernel XFRM counters (non-zero): $(awk '$2 != 0 {printf "%s=%s ", $1, $2}' /proc/net/xfrm_stat)"
if [ "$status" -ne 0 ]; then
  echo "natt-vm: last kernel messages:"
  dmesg | tail -n 30
fi
echo "natt-vm: exit status $status"
echo "NATT-VM-EXIT $status"
sync
poweroff -f
sleep 5
