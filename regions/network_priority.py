"""The processes that stand in for the network run ahead of the regions' on a shared host.

On one machine, the delay proxies (netem, in the kernel, where netem exists) and the edge
routers (Route 53 and the CDN: other machines in production) share the cores with every
region's processes, and so do the drill's simulated users (their own devices). A network
does not slow down because the servers at its ends are busy; a user-space stand-in does, by
waiting behind them for a core at each of its wake-ups. Measured in the drill on two cores
(load average 8): the edge added 16 ms to a read that the same 10 ms link without the edge
took 19 ms for. These processes ask for a higher scheduling priority at start, before any
thread (Linux keeps a nice value per thread; new threads inherit it). Without the
privilege (not root, no CAP_SYS_NICE) they run as they are, and say so once at debug level.
"""

from __future__ import annotations

import logging
import os
from typing import Final

log = logging.getLogger(__name__)

# Ahead of the regions' processes (nice 0), not of the system's own.
NETWORK_NICENESS: Final = -5


def run_as_network() -> bool:
    """Raise this process's priority to NETWORK_NICENESS; False when it may not."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NETWORK_NICENESS)
    except OSError as error:  # PermissionError without the privilege
        log.debug("network stand-in left at its priority: %s", error)
        return False
    return True
