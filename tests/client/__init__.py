"""Client library tests: transports against real servers over mutual TLS on loopback."""
