"""A diagnostic for ``python -m tests.perf signup --floor``: the least a durable sign-up could cost.

Served by the same gunicorn settings as UnionHub, ``POST /api/v1/competitions/<id>/entries`` does
one thing: INSERT a row into ``bench_floor_entries`` (created by the benchmark in its throwaway
database) and COMMIT, over a psycopg connection each server thread keeps, and answers 201 with a
small JSON body.  No authentication, no checks, no places, no ORM, no schema: its throughput
against the trivial endpoint bounds what any implementation of the sign-up on this stack and
this machine can reach.  It is never served for real.
"""

import os
import threading

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
_local = threading.local()
_URL = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(_URL)
    return conn


@app.post("/api/v1/competitions/<int:competition_id>/entries")
def enter(competition_id: int):
    conn = _connection()
    token = request.headers.get("Authorization", "")[-32:]
    with conn.cursor() as cur:
        cur.execute("INSERT INTO bench_floor_entries (competition_id, token) VALUES (%s, %s) RETURNING id",
                    (competition_id, token))
        (entry_id,) = cur.fetchone()
    conn.commit()
    return jsonify(id=entry_id, status="confirmed"), 201


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
