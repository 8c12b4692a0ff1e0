"""Primitives every app shares: sending work after commit and leases on rows.

Nothing here knows about lessons, videos or LMSs; every app may import it and it imports no app.
"""
