"""The yardstick: a Flask endpoint that only answers `success`, served by the
same gunicorn configuration as the real app."""
from flask import Flask, Response

app = Flask(__name__)


@app.route("/wechat/mp", methods=["GET", "POST"])
def mp() -> Response:
    return Response("success", mimetype="text/plain")


def create_app() -> Flask:
    return app
