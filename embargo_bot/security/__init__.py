"""Protection: encryption at rest (``vault``), the HMAC-chained ``audit`` log, S/MIME.

Pure functions over bytes and keys; the only I/O is reading key and
certificate files. May import ``domain`` only.
"""
