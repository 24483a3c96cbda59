"""Memory and CPU figures of processes, in the same units on every OS (MB = 2**20 bytes).

getrusage's ru_maxrss is KiB on Linux but bytes on macOS, and Windows has neither `resource` nor `os.wait4`:
there psutil (a dependency of DVC) reads the peak working set, Windows' name for the peak resident set.
"""
import os
import subprocess
import sys
import threading
import time

MB = 2 ** 20


def _maxrss_mb(ru_maxrss):
    return ru_maxrss * (1 if sys.platform == "darwin" else 1024) / MB


def peak_rss_mb():
    """This process's peak resident set so far."""
    try:
        import resource
    except ImportError:                                    # Windows
        import psutil
        return psutil.Process().memory_info().peak_wset / MB
    return _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def rss_mb():
    """This process's resident set now."""
    import psutil
    return psutil.Process().memory_info().rss / MB


def reset_peak():
    """Restart this process's peak from its present size where the OS can (Linux: a child's ru_maxrss starts at
    the forking parent's size); True when it did. Read it back with peak_since_reset_mb()."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_since_reset_mb():
    """The peak since reset_peak() on Linux (VmHWM); elsewhere the process's whole peak (peak_rss_mb)."""
    try:
        with open("/proc/self/status") as f:
            return int(f.read().split("VmHWM:")[1].split()[0]) * 1024 / MB
    except (OSError, IndexError):
        return peak_rss_mb()


def wait(proc):
    """Wait for the subprocess.Popen `proc` to end: (exit code, its peak RSS in MB, user and system CPU
    seconds). POSIX: os.wait4's figures for that process (the peak: of the largest process in its tree);
    Windows: psutil's, read every 50 ms while it runs, the peak over it and its children (each peak working set
    is kept by the OS, so only a child that lives less than 50 ms can be missed)."""
    if hasattr(os, "wait4"):
        while True:
            try:
                _, status, usage = os.wait4(proc.pid, 0)
                break
            except InterruptedError:
                continue
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, _maxrss_mb(usage.ru_maxrss), usage.ru_utime, usage.ru_stime
    import psutil
    peak = user = system = 0.0
    try:
        child = psutil.Process(proc.pid)
        while proc.poll() is None:
            user, system = child.cpu_times()[:2]
            for p in [child, *child.children(recursive=True)]:
                try:
                    peak = max(peak, p.memory_info().peak_wset / MB)
                except psutil.Error:                       # it ended between two reads
                    pass
            time.sleep(0.05)
    except psutil.Error:
        pass
    return proc.wait(), peak, user, system


def measure(cmd, cwd=None, env=None, capture=False):
    """Run argv list `cmd` to its end: (wall seconds, exit code, peak RSS MB, user s, system s, output: stdout
    and stderr together when `capture`, else None)."""
    start = time.perf_counter()
    pipe = subprocess.PIPE if capture else None
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=pipe, stderr=subprocess.STDOUT if capture else None,
                            text=capture)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read())) if capture else None
    if reader:
        reader.start()
    code, peak, user, system = wait(proc)
    if reader:
        reader.join()
        proc.stdout.close()
    return time.perf_counter() - start, code, peak, user, system, (out[0] if capture else None)


def total_memory_gib():
    import psutil
    return psutil.virtual_memory().total / 2 ** 30


def load_average():
    """The 1, 5 and 15 minute load averages (psutil emulates them on Windows)."""
    import psutil
    return psutil.getloadavg()
