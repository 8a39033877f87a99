"""Support for the browser tests: loopback servers around the real token server, and Chromium."""
