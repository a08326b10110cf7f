"""Helpers shared by the benchmark scripts."""


def status_kib(pid, field):
    """A memory figure of a process from /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def hwm_kib(pid):
    return status_kib(pid, "VmHWM")
