"""Outbound HTTP on behalf of others (LTI platforms now, webhooks later): see outbound/client.py."""
