"""Which address to put in a trigger so that a device on the network can connect back."""
import fcntl
import ipaddress
import socket
import struct

from .device_rules import host_problem

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
    (`local_addr`, from the MQTT socket): an IPv4-mapped IPv6 one as its IPv4 form, a real IPv6
    one not at all (no IPv6 on an ESP8266). Else the first non-loopback IPv4 interface;
    loopback only when nothing else is up. Every answer is one the device's parser accepts.
    """
    candidates = [_ipv4_form(local_addr)] if local_addr else []
    for addr in candidates + interface_addresses():
        if addr and not ipaddress.ip_address(addr).is_loopback and host_problem(addr) is None:
            return addr
    return "127.0.0.1"


def _ipv4_form(addr):
    """'192.0.2.7' and '::ffff:192.0.2.7' -> '192.0.2.7'; any other address -> None."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if ip.version == 6:
        ip = ip.ipv4_mapped
    return str(ip) if ip else None
