"""Helpers shared by the interop tests and the server benchmark: real server processes on
loopback (ours and PyKMIP's), their certificates, and TLS readiness checks."""
