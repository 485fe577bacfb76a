"""The daemon: dispatcher, executor, leases, events, logging and its services."""
