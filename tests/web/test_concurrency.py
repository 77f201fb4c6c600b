"""Under concurrent load, in-process threads and gunicorn worker processes give 0 errors and log every decision."""

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from policy_service import create_app

THREADS = 8
TIME_LIMIT = 120  # seconds; each loop stops at this bound even if requests remain


def test_threads_in_process(tmp_path, example_request):
    """8 threads share one app: 2,000 decisions, none failed, every returned decision_id is in the log."""
    database = tmp_path / "log.sqlite3"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}"})

    def poster():
        client = app.test_client()

        def post():
            response = client.post("/v1/decisions", json=example_request)
            return response.status_code, response.get_json()

        return post

    answers = _hammer(poster, per_thread=250)
    assert len(answers) == THREADS * 250
    _assert_all_decided_and_logged(answers, database)


def test_worker_processes(gunicorn_server, example_request):
    """8 client threads against 2 gunicorn workers: 1,200 decisions, none failed, every one in the log."""
    url = f"{gunicorn_server.url}/v1/decisions"

    def poster():
        # gunicorn's sync workers close every connection, so a session would reuse nothing.
        def post():
            response = requests.post(url, json=example_request, timeout=30)
            return response.status_code, response.json()

        return post

    answers = _hammer(poster, per_thread=150)
    assert len(answers) == THREADS * 150
    _assert_all_decided_and_logged(answers, gunicorn_server.database)


def _hammer(poster, *, per_thread: int) -> list[tuple[int, dict]]:
    """Each of THREADS threads makes its own poster and calls it per_thread times, stopping at TIME_LIMIT."""
    deadline = time.monotonic() + TIME_LIMIT

    def run(_):
        post = poster()
        return [post() for _ in range(per_thread) if time.monotonic() < deadline]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [answer for chunk in pool.map(run, range(THREADS)) for answer in chunk]


def _assert_all_decided_and_logged(answers, database):
    assert [code for code, _ in answers if code != 200] == []
    assert [body for _, body in answers if body["status"] != "decided"] == []
    returned = {body["decision_id"] for _, body in answers}
    assert len(returned) == len(answers)
    with sqlite3.connect(database) as db:
        logged = {row[0] for row in db.execute("SELECT decision_id FROM decision_log")}
    assert returned - logged == set()
