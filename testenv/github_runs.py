"""Workflow runs, their jobs and re-runs, for the GitHub stand-in.

Shapes follow GitHub's OpenAPI description (@octokit/openapi,
operations actions/get-workflow-run, actions/list-jobs-for-workflow-run,
actions/list-jobs-for-workflow-run-attempt, actions/re-run-job-for-workflow-run,
actions/re-run-workflow): a run has id, run_attempt, status, conclusion,
event, name, path, head_sha, html_url; a job has id, run_id, run_attempt,
name, status, conclusion, started_at, completed_at, labels, runner_id,
runner_name, runner_group_name, workflow_name, head_branch, steps.

What GitHub checks, as modelled here:

* Reading runs and jobs needs the "Actions" repository permission (read);
  re-running needs it at write, like rerun-failed-jobs
  (https://docs.github.com/en/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens#repository-permissions-for-actions).
  Otherwise 403 "Resource not accessible by integration".
* "Re-run a job and its dependent jobs in a workflow run" (the operation's
  description); "a new workflow run will start for the job and any
  dependents. Any outputs for any other jobs in the previous workflow run
  will be used for the re-run"
  (https://docs.github.com/en/actions/managing-workflow-runs-and-deployments/managing-workflow-runs/re-running-workflows-and-jobs).
  The new attempt's other jobs keep their results.
* Runs can be re-run for 30 days and at most 50 times (same page). The 403
  texts are GitHub's as users report them: "This workflow is already
  running" while an attempt is in progress (metabase/metabase#70916,
  runs-on/runs-on#259), "Only jobs from the current attempt can be re-run"
  (runs-on/runs-on#263), "Unable to retry this workflow run because it was
  created over a month ago" (cli/cli#9989).
* Lists page with per_page (max 100) and page, answer {total_count, jobs}
  with a Link header; `filter=latest` (the default) lists the newest
  attempt's jobs, `all` every attempt's.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

DOCS_RUNS = "https://docs.github.com/rest/actions/workflow-runs"
DOCS_JOBS = "https://docs.github.com/rest/actions/workflow-jobs"
MAX_ATTEMPTS = 50
RERUN_WINDOW = timedelta(days=30)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorkflowRuns:
    """Runs per repository (lower-case owner/name). Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.runs: dict[tuple[str, int], dict[str, Any]] = {}
        self.jobs: dict[int, tuple[str, int]] = {}  # job id -> run
        self.next_run = 9_000_000_001
        self.next_job = 40_000_000_001

    # ------------------------------------------------------------ admin
    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Adds a completed (or given) run with its first attempt's jobs:
        {"repository": "o/r", "name", "path", "conclusion", "created_at",
         "jobs": [{"key", "name", "needs": [keys], "runner_name", "labels",
                   "conclusion", "started_at", "completed_at"}]}."""
        repo = str(spec["repository"]).lower()
        with self.lock:
            run_id = int(spec.get("id") or self.next_run)
            self.next_run = max(self.next_run, run_id) + 1
            created = spec.get("created_at") or _iso(datetime.now(timezone.utc) - timedelta(minutes=10))
            run = {
                "id": run_id,
                "repository": spec["repository"],
                "name": spec.get("name", "CI"),
                "path": spec.get("path", ".github/workflows/ci.yml"),
                "event": spec.get("event", "push"),
                "head_sha": spec.get("head_sha", "0" * 40),
                "head_branch": spec.get("head_branch", "main"),
                "created_at": created,
                "attempts": [],
                "graph": {j["key"]: list(j.get("needs") or []) for j in spec.get("jobs") or []},
                "reruns": [],
            }
            jobs = [self._job(run, 1, j) for j in spec.get("jobs") or []]
            run["attempts"].append({"status": spec.get("status", "completed"), "jobs": jobs})
            self.runs[(repo, run_id)] = run
            return self.public_run(run, "")

    def complete(self, repo: str, run_id: int, results: dict[str, Any]) -> dict[str, Any] | None:
        """Finishes the newest attempt: {"jobs": {key: {"conclusion", "runner_name", …}}}."""
        with self.lock:
            run = self.runs.get((repo.lower(), run_id))
            if run is None:
                return None
            attempt = run["attempts"][-1]
            now = _iso(datetime.now(timezone.utc))
            for job in attempt["jobs"]:
                given = (results.get("jobs") or {}).get(job["_key"])
                if job["status"] != "completed":
                    job.update({"status": "completed", "conclusion": "success",
                                "started_at": job["started_at"] or now, "completed_at": now})
                if isinstance(given, dict):
                    job.update({k: v for k, v in given.items() if k in ("conclusion", "runner_name", "started_at", "completed_at")})
            attempt["status"] = "completed"
            return self.public_run(run, "")

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                f"{r['repository']}#{r['id']}": {
                    "run_attempt": len(r["attempts"]),
                    "reruns": copy.deepcopy(r["reruns"]),
                    "attempts": [
                        {"status": a["status"],
                         "jobs": [{k: j[k] for k in ("id", "name", "status", "conclusion", "runner_name")} | {"key": j["_key"]}
                                  for j in a["jobs"]]}
                        for a in r["attempts"]
                    ],
                }
                for r in self.runs.values()
            }

    def _job(self, run: dict[str, Any], attempt: int, spec: dict[str, Any]) -> dict[str, Any]:
        job_id = self.next_job
        self.next_job += 1
        self.jobs[job_id] = (str(run["repository"]).lower(), run["id"])
        done = spec.get("conclusion") is not None
        return {
            "id": job_id,
            "_key": spec["key"],
            "name": spec.get("name", spec["key"]),
            "run_attempt": attempt,
            "status": "completed" if done else spec.get("status", "queued"),
            "conclusion": spec.get("conclusion"),
            "started_at": spec.get("started_at"),
            "completed_at": spec.get("completed_at"),
            "labels": list(spec.get("labels") or ["ubuntu-latest"]),
            "runner_name": spec.get("runner_name"),
            "runner_id": spec.get("runner_id"),
            "runner_group_name": spec.get("runner_group_name"),
        }

    # ------------------------------------------------------------ views
    def public_run(self, run: dict[str, Any], base: str) -> dict[str, Any]:
        attempt = run["attempts"][-1]
        n = len(run["attempts"])
        status = attempt["status"]
        conclusion = None
        if status == "completed":
            results = {j["conclusion"] for j in attempt["jobs"]}
            conclusion = next((c for c in ("failure", "cancelled", "timed_out") if c in results), "success")
        html = f"https://github.com/{run['repository']}/actions/runs/{run['id']}"
        return {
            "id": run["id"],
            "name": run["name"],
            "path": run["path"],
            "event": run["event"],
            "head_sha": run["head_sha"],
            "head_branch": run["head_branch"],
            "run_attempt": n,
            "status": status,
            "conclusion": conclusion,
            "created_at": run["created_at"],
            "html_url": html,
            "url": f"{base}/repos/{run['repository']}/actions/runs/{run['id']}",
            "jobs_url": f"{base}/repos/{run['repository']}/actions/runs/{run['id']}/jobs",
            "previous_attempt_url": (
                f"{base}/repos/{run['repository']}/actions/runs/{run['id']}/attempts/{n - 1}" if n > 1 else None
            ),
        }

    def public_job(self, run: dict[str, Any], job: dict[str, Any], base: str) -> dict[str, Any]:
        out = {k: v for k, v in job.items() if not k.startswith("_")}
        out.update({
            "run_id": run["id"],
            "workflow_name": run["name"],
            "head_branch": run["head_branch"],
            "head_sha": run["head_sha"],
            "html_url": f"https://github.com/{run['repository']}/actions/runs/{run['id']}/job/{job['id']}",
            "url": f"{base}/repos/{run['repository']}/actions/jobs/{job['id']}",
            "check_run_url": f"{base}/repos/{run['repository']}/check-runs/{job['id']}",
            "steps": [],
        })
        return out

    # ------------------------------------------------------------- REST
    def handle(
        self,
        method: str,
        segs: list[str],
        query: dict[str, str],
        body: bytes,
        base: str,
        path: str,
        permission: Callable[[str], str | None],
        error: Callable[..., Any],
        reply: Callable[..., Any],
        paging: Callable[[dict[str, str]], tuple[int, int]],
        link_header: Callable[..., dict[str, str]],
    ) -> Any:
        """segs: repos/{owner}/{repo}/actions/... ; `permission(level)` is
        None when the credential holds Actions at that level, else why not."""
        owner, repo, rest = segs[1], segs[2], segs[4:]
        key = f"{owner}/{repo}".lower()
        write = method == "POST"
        why = permission("write" if write else "read")
        if why is not None:
            return error(403, "Resource not accessible by integration",
                         f"{DOCS_RUNS}#re-run-a-job-from-a-workflow-run" if write else DOCS_RUNS)
        with self.lock:
            if rest[:1] == ["runs"] and len(rest) >= 2 and rest[1].isdigit():
                run = self.runs.get((key, int(rest[1])))
                if run is None:
                    return error(404, "Not Found", f"{DOCS_RUNS}#get-a-workflow-run")
                tail = rest[2:]
                if method == "GET" and not tail:
                    return reply(200, self.public_run(run, base))
                if method == "GET" and tail == ["jobs"]:
                    if query.get("filter", "latest") not in ("latest", "all"):
                        return error(422, "Invalid filter: must be latest or all", DOCS_JOBS)
                    attempts = run["attempts"] if query.get("filter") == "all" else run["attempts"][-1:]
                    jobs = [j for a in attempts for j in a["jobs"]]
                    return self._page(run, jobs, query, base, path, paging, link_header, reply)
                if method == "GET" and len(tail) == 3 and tail[0] == "attempts" and tail[2] == "jobs":
                    if not tail[1].isdigit() or not 1 <= int(tail[1]) <= len(run["attempts"]):
                        return error(404, "Not Found", f"{DOCS_JOBS}#list-jobs-for-a-workflow-run-attempt")
                    jobs = run["attempts"][int(tail[1]) - 1]["jobs"]
                    return self._page(run, jobs, query, base, path, paging, link_header, reply)
                if method == "POST" and tail == ["rerun"]:
                    refused = self._refused(run, None, body, error)
                    if refused is not None:
                        return refused
                    self._new_attempt(run, set(run["graph"]), "run")
                    return reply(201, {})
                return error(404, "Not Found", DOCS_RUNS)
            if method == "POST" and len(rest) == 3 and rest[0] == "jobs" and rest[1].isdigit() and rest[2] == "rerun":
                where = self.jobs.get(int(rest[1]))
                run = self.runs.get(where) if where and where[0] == key else None
                if run is None:
                    return error(404, "Not Found", f"{DOCS_RUNS}#re-run-a-job-from-a-workflow-run")
                job = next(j for a in run["attempts"] for j in a["jobs"] if j["id"] == int(rest[1]))
                refused = self._refused(run, job, body, error)
                if refused is not None:
                    return refused
                self._new_attempt(run, self._with_dependents(run, job["_key"]), f"job {job['id']}")
                return reply(201, {})
        return error(404, "Not Found", DOCS_RUNS)

    def _page(self, run, jobs, query, base, path, paging, link_header, reply) -> Any:  # type: ignore[no-untyped-def]
        per_page, page = paging(query)
        chunk = jobs[(page - 1) * per_page : page * per_page]
        return reply(
            200,
            {"total_count": len(jobs), "jobs": [self.public_job(run, j, base) for j in chunk]},
            link_header(base, path, query, page, per_page, len(jobs)),
        )

    def _refused(self, run: dict[str, Any], job: dict[str, Any] | None, body: bytes, error: Callable[..., Any]) -> Any:
        doc = f"{DOCS_RUNS}#re-run-a-job-from-a-workflow-run" if job else f"{DOCS_RUNS}#re-run-a-workflow"
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                return error(400, "Problems parsing JSON", doc)
            if data is not None and not isinstance(data, dict):
                return error(422, "Invalid request.\n\nFor 'links/0/schema', is not an object.", doc)
            if isinstance(data, dict) and "enable_debug_logging" in data and not isinstance(data["enable_debug_logging"], bool):
                return error(422, "Invalid request.\n\nFor 'properties/enable_debug_logging', is not a boolean.", doc)
        if run["attempts"][-1]["status"] != "completed":
            return error(403, "This workflow is already running", doc)
        if job is not None and job["run_attempt"] != len(run["attempts"]):
            return error(403, "Only jobs from the current attempt can be re-run", doc)
        created = datetime.strptime(run["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if datetime.now(timezone.utc) - created > RERUN_WINDOW:
            return error(403, "Unable to retry this workflow run because it was created over a month ago", doc)
        if len(run["attempts"]) >= MAX_ATTEMPTS:
            return error(403, "This workflow run cannot be retried", doc)
        return None

    @staticmethod
    def _with_dependents(run: dict[str, Any], key: str) -> set[str]:
        chosen = {key}
        grew = True
        while grew:
            grew = False
            for job, needs in run["graph"].items():
                if job not in chosen and chosen.intersection(needs):
                    chosen.add(job)
                    grew = True
        return chosen

    def _new_attempt(self, run: dict[str, Any], keys: set[str], what: str) -> None:
        n = len(run["attempts"]) + 1
        jobs = []
        for old in run["attempts"][-1]["jobs"]:
            if old["_key"] in keys:
                job = self._job(run, n, {"key": old["_key"], "name": old["name"], "labels": old["labels"]})
            else:  # kept, with its result, as part of the new attempt
                job = dict(old)
            jobs.append(job)
        run["attempts"].append({"status": "queued", "jobs": jobs})
        run["reruns"].append({"attempt": n, "what": what, "jobs": sorted(keys)})
