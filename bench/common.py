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


def cpu_times():
    """The machine's CPU time so far (all cores), from /proc/stat, as (busy, steal, total) ticks."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return user + nice + system + irq + softirq, steal, total


def steal_percent(before, after):
    """How much of the CPU time between two `cpu_times()` the hypervisor gave to someone else."""
    total = after[2] - before[2]
    return 100.0 * (after[1] - before[1]) / total if total else 0.0
