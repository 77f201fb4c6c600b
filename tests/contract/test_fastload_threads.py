"""The typed load is safe when its first uses come from several threads at once (a gthread worker's first requests).

msgspec builds a Struct type's decoding information on first use, calling back into Python; two threads doing
that at once crashed a gunicorn worker with SIGSEGV (tests/web/test_concurrency.py saw "Remote end closed
connection"). contract.fastload builds it while the module is imported. Each run here is a fresh interpreter
(nothing built yet) switching threads every microsecond, with 8 threads released together into their first
typed loads: before the fix about half of such runs crashed.
"""

import subprocess
import sys

RUNS = 10

PROGRAM = """
import sys, threading
sys.setswitchinterval(1e-6)
from policy_service.contract import fastload
send = {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
        "template": {"name": "order_update", "language": "en_US", "category": "utility", "status": "APPROVED"}}
history = [{"direction": "outbound", "at": "2025-08-12T09:00:00+00:00", "type": "template",
            "template": {"name": "t", "language": "en", "category": "utility", "status": "APPROVED"}},
           {"direction": "inbound", "at": "2025-08-12T09:30:00+00:00", "type": "text"}]
start = threading.Barrier(8)
loaded = []

def first_loads():
    start.wait()
    loaded.append((fastload._send(send) is not None, fastload.typed_history(history) is not None))

threads = [threading.Thread(target=first_loads) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(set(loaded)))
"""


def test_eight_threads_making_the_first_typed_loads_at_once_do_not_crash():
    for run in range(RUNS):
        result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"run {run}: exit {result.returncode}\n{result.stderr[-2000:]}"
        assert result.stdout.strip() == "[(True, True)]", result.stdout
