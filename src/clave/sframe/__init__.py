"""SFrame, RFC 9605: end-to-end encryption of media frames (sans-I/O)."""
