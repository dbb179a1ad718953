"""What the demo and the tests run: a stand-in SMTP relay on loopback, a sample PDF.

Never used by the service itself. May import ``domain`` only.
"""
