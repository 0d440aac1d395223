"""Fault tests: nothing acknowledged is lost, nothing is duplicated, every view agrees.

- ``proxy.py``: a fault-injecting loopback TCP proxy (delays, splits, stalls,
  cuts, drops, partitions; seeded).
- ``server_process.py``: the real server as a subprocess, killed with SIGKILL
  and restarted on the same port and data.
- ``clients.py``, ``fault_client.mjs``, ``notebook_ops.py``: Python (pycrdt)
  and Node (Yjs + y-websocket) clients that reconnect, and the edit intents
  they share.
- ``ledger.py``: what "acknowledged" means and what must be in the end state.
- ``scenario.py``: one randomized run and its checks.
- ``test_convergence.py``: that run in CI (``FAULT_SEED``, ``FAULT_SECONDS``);
  ``soak.py``: rounds of it by hand (``python -m tests.faults.soak --minutes 30``).
- ``test_proxy.py``: the proxy keeps its promises.
- ``test_save_crash_window.py``, ``test_rejoin_sees_half_a_move.py``,
  ``test_run_interrupted_by_crash.py``, ``test_split_character_update.py``:
  minimal reproductions of what the randomized runs found.
"""
