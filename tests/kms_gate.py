"""Holding the local KMS's answers to one operation: how the worker tests kill a worker mid-job."""

import threading


class KmsGate:
    """The local KMS answers the first `allow` calls of `operation`, then holds the next ones until `open()`.
    It also counts every such call the server received, whoever made it (a killed worker logs nothing)."""

    def __init__(self, httpd, operation: str, *, allow: int):
        self.httpd, self.app = httpd, httpd.app
        self.target, self.allow = f"TrentService.{operation}", allow
        self.received = self.held = 0
        self.lock, self.opened = threading.Lock(), threading.Event()
        httpd.app = self

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") == self.target:
            with self.lock:
                self.received += 1
                hold = self.received > self.allow
                self.held += hold
            if hold:
                self.opened.wait(120)
        return self.app(environ, start_response)

    def open(self):
        self.opened.set()

    def remove(self):
        self.open()
        self.httpd.app = self.app
