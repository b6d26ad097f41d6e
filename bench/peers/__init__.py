"""A bench-only app: the same Lead-like row written plain, with our audit row, and with each peer.

Used by bench/audit_peers.py through bench.peers.settings; never installed by the real settings.
"""
