"""Audio I/O, the log-mel front end, pitch estimation and spectral distances."""
