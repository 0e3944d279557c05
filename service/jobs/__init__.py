"""Asynchronous video jobs: create, poll progress, stream or fetch the result, cancel."""
