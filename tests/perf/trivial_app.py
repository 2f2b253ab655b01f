"""The benchmark's baseline: the least a Flask app can do for a WeChat push.

Served by the same gunicorn settings as UnionHub, it reads the body and
answers ``success`` at the same path, so the ratio measures what the real
callback adds on top of Flask + gunicorn + the HTTP round trip.
"""

from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/wechat")
def wechat():
    request.get_data()
    return Response("success", mimetype="text/plain")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
