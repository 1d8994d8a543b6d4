"""Peak *anonymous* resident memory, sampled from ``/proc/<pid>/status``.

``ru_maxrss`` counts file-backed mmap pages, which a streaming converter touches for every byte it reads; the
number that matters (what cannot be dropped under memory pressure) is ``RssAnon``. The kernel does not keep its
peak, so a thread samples it.
"""

from __future__ import annotations

import threading


def rss_anon(pid: int | str = "self") -> int:
    """Current RssAnon of ``pid`` in bytes (0 if unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class AnonPeak:
    """Context manager: ``.peak`` is the highest RssAnon seen (bytes) while inside, sampled every ``interval`` s."""

    def __init__(self, pid: int | str = "self", interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> AnonPeak:
        self.peak = rss_anon(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_anon(self.pid))
