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
    per_thread = 250
    deadline = time.monotonic() + TIME_LIMIT

    def run(_):
        client = app.test_client()
        answers = []
        for _ in range(per_thread):
            if time.monotonic() > deadline:
                break
            response = client.post("/v1/decisions", json=example_request)
            answers.append((response.status_code, response.get_json()))
        return answers

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = [answer for chunk in pool.map(run, range(THREADS)) for answer in chunk]

    assert len(answers) == THREADS * per_thread
    _assert_all_decided_and_logged(answers, database)


def test_worker_processes(gunicorn_server, example_request):
    """8 client threads against 2 gunicorn workers: 1,200 decisions, none failed, every one in the log."""
    per_thread = 150
    deadline = time.monotonic() + TIME_LIMIT

    def run(_):
        answers = []
        with requests.Session() as session:
            for _ in range(per_thread):
                if time.monotonic() > deadline:
                    break
                response = session.post(f"{gunicorn_server.url}/v1/decisions", json=example_request, timeout=30)
                answers.append((response.status_code, response.json()))
        return answers

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = [answer for chunk in pool.map(run, range(THREADS)) for answer in chunk]

    assert len(answers) == THREADS * per_thread
    _assert_all_decided_and_logged(answers, gunicorn_server.database)


def _assert_all_decided_and_logged(answers, database):
    assert [code for code, _ in answers if code != 200] == []
    assert [body for _, body in answers if body["status"] != "decided"] == []
    returned = {body["decision_id"] for _, body in answers}
    assert len(returned) == len(answers)
    with sqlite3.connect(database) as db:
        logged = {row[0] for row in db.execute("SELECT decision_id FROM decision_log")}
    assert returned - logged == set()
