"""The benchmark's baseline: a bare functions-framework HTTP function and nothing else."""

import flask
import functions_framework


@functions_framework.http
def handle(request: flask.Request) -> str:
    return "hello"
