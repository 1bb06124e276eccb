"""Which address to put in a trigger so that a device on the network can connect back."""
import fcntl
import ipaddress
import socket
import struct

_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of an interface


def interface_addresses():
    """IPv4 addresses of this host's interfaces (Linux), loopback last."""
    found = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # interface without an IPv4 address
        found.append(socket.inet_ntoa(packed[20:24]))
    return sorted(found, key=lambda a: ipaddress.ip_address(a).is_loopback)


def advertise_host(local_addr=None):
    """The address devices should connect back to; OTA_ADVERTISE_HOST overrides this guess.

    If we reach the broker over a real network, devices reach us on the address we used for it
    (`local_addr`, from the MQTT socket). If the broker is on this host, the first
    non-loopback interface is the best guess; loopback only when nothing else is up.
    """
    if local_addr and not ipaddress.ip_address(local_addr).is_loopback:
        return local_addr
    addrs = interface_addresses()
    return addrs[0] if addrs else "127.0.0.1"
