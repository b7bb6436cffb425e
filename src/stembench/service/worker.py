"""The job worker: claims queued jobs from the database and runs them through the client.

A job is claimed with a lease that a heartbeat renews; a worker that dies stops renewing,
and once the lease runs out any worker claims the job again and :func:`evaluate` resumes it
from the job's results file (finished shards are not redone). Cancellation is seen by the
heartbeat (every ``cancel_poll_s``), which ends the job's shards in flight (a local pool's
worker processes are ended) and submits no more; a job whose cancellation arrives while its
results are being stored ends cancelled, never on the leaderboard. The heartbeat lasts until
the job's final state is written (re-scoring, report and storing included, uploads too), and
a renewal that fails (a database hiccup) is logged and tried again at the next beat. A
worker asked to stop (the service stopping) stops the running job's shards and puts the job
back in the queue, not counted as an attempt; a job claimed ``max_job_attempts`` times (its
workers died) ends failed. On Globus Compute the worker also revokes each user's kept
Compute token once no job of theirs needs it: after each job, and while it waits for work
(a job cancelled while queued).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from stembench.client.compute_functions import RegisteredFunctionExecutor
from stembench.client.executors import submitter_wait
from stembench.client.orchestrate import (
    DEFAULT_TASK_DEADLINE_S,
    Target,
    evaluate,
    list_images,
)
from stembench.client.results_file import ResultsFile
from stembench.client.run import exit_status
from stembench.endpoints.requests import FEATURES, DatasetRef
from stembench.errors import InputError
from stembench.service import leases
from stembench.service.job_executor import CancellableExecutor, JobProgress
from stembench.service.models import Job
from stembench.service.settings import ServiceSettings

__all__ = ["Worker", "import_function", "job_folder"]

log = logging.getLogger(__name__)
#: Attempts after the first of a worker's call to the Globus Compute web service.
_COMPUTE_RETRIES = 2
#: Seconds a stopping worker waits for a batch of tasks being sent to Globus Compute (a
#: batch still in flight then is left to the process's exit).
STOP_SUBMITTER_WAIT_S = 5.0


def import_function(dotted: str) -> Callable[..., Any]:
    """The function named by ``module:function`` (an administrator setting, never user input)."""
    module, _, name = dotted.partition(":")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise InputError(f"service settings: {dotted!r} is not a callable")
    return function


def job_folder(settings: ServiceSettings, job_id: str) -> Path:
    """Folder holding a job's results file and report."""
    return settings.data_dir / "jobs" / job_id


class Worker:
    """Runs queued jobs one at a time in a background thread.

    Parameters
    ----------
    settings : ServiceSettings
        Executor, lease, poll interval, data folder and shard functions.
    sessions : sessionmaker
        Database sessions.
    """

    def __init__(self, settings: ServiceSettings, sessions: sessionmaker[Session]) -> None:
        self.settings, self.sessions = settings, sessions
        self.worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: CancellableExecutor | None = None  # the running job's

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="stembench-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop, stop the running job's shards, and wait for the loop; the
        job goes back to the queue, and a worker resumes it from its results file."""
        self._stop.set()
        running = self._executor
        if running is not None:
            with submitter_wait(STOP_SUBMITTER_WAIT_S):  # not the SDK's 60 s per request
                running.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("worker %s: unexpected error", self.worker_id)
                ran = False
            if not ran:
                self._stop.wait(self.settings.poll_interval_s)

    def run_once(self) -> bool:
        """Claim and run one job; False when none was waiting."""
        with self.sessions() as session:
            job = leases.claim_job(session, worker_id=self.worker_id,
                                  lease_s=self.settings.lease_s,
                                  max_attempts=self.settings.max_job_attempts)
        if job is None:  # waiting for work: release the tokens no job needs any more
            if self.settings.executor == "globus":
                for owner in self.settings.credential_store().owners():
                    self._release_credentials(owner)
            return False
        try:
            self._run(job)
        except Exception as exc:  # a bug or an unforeseen failure: the job ends, with a log id
            log_id = uuid.uuid4().hex[:12]
            log.exception("worker %s: job %s failed unexpectedly (log id %s)", self.worker_id,
                          job.id, log_id)
            first_line = (str(exc).splitlines() or [""])[0][:300]
            self._fail(job, f"internal error: {type(exc).__name__}: {first_line} "
                            f"(log id {log_id})")
        finally:
            if self.settings.executor == "globus" and job.source == "worker":
                self._release_credentials(job.owner)
        return True

    def _release_credentials(self, owner: str) -> None:
        """Revoke and delete ``owner``'s Compute token once no job of theirs needs it (one
        attempt per token with Globus Auth, bounded by the introspection timeout)."""
        from stembench.service.auth import bounded_auth_client
        from stembench.service.credentials import release_credentials

        settings = self.settings
        auth = bounded_auth_client(str(settings.globus_client_id),
                                   str(settings.globus_client_secret),
                                   timeout_s=settings.introspection_timeout_s)
        with self.sessions() as session:
            release_credentials(settings, session, owner, auth.oauth2_revoke_token)

    def _target(self, job: Job) -> tuple[Target, CancellableExecutor]:
        settings = self.settings
        inner: cf.Executor
        gone = None  # a Compute endpoint's status watch says when it went offline
        features: frozenset[str] | None = frozenset(FEATURES)  # a local pool runs this code
        if settings.executor == "thread":
            inner = cf.ThreadPoolExecutor(settings.workers, thread_name_prefix=f"job-{job.id[:8]}")
        elif settings.executor == "local":
            from stembench.client.executors import local_executor

            inner = local_executor(settings.workers)
        else:
            inner = self._compute_executor(job)
            gone, features = inner.watch.gone, None  # the endpoint's dataset listing says
        executor = CancellableExecutor(inner)
        return Target(job.endpoint_id or settings.executor, executor,
                      max_in_flight=2 * settings.workers, gone=gone,
                      features=features), executor

    def _compute_executor(self, job: Job) -> RegisteredFunctionExecutor:
        """An executor on an allowed endpoint, submitting with the job owner's own token."""
        from stembench.client.remote_endpoints import remote_targets
        from stembench.service.credentials import compute_client_for

        settings = self.settings
        endpoint = job.endpoint_id or settings.default_endpoint_id
        if not endpoint:
            raise InputError(f"job {job.id}: no Globus Compute endpoint id given")
        refusal = settings.endpoint_refusal(endpoint)
        if refusal:
            raise InputError(f"job {job.id}: {refusal}")
        assert settings.globus_client_id and settings.globus_client_secret  # checked by settings
        client = compute_client_for(settings.globus_client_id, settings.globus_client_secret,
                                    settings.credential_store(), job.owner,
                                    timeout_s=settings.compute_timeout_s,
                                    max_retries=_COMPUTE_RETRIES)
        (target,) = remote_targets([endpoint], client=client,
                                   options=json.loads(job.endpoint_options or "{}") or None,
                                   option_schema=settings.compute_endpoint_schema,
                                   task_timeout_s=DEFAULT_TASK_DEADLINE_S,
                                   function_id=settings.compute_function_id,
                                   offline_hint="the job can be submitted again once the "
                                   "endpoint is back online")
        assert isinstance(target.executor, RegisteredFunctionExecutor)  # with its watch
        return target.executor

    def _heartbeat(self, job: Job, executors: list[CancellableExecutor], progress: JobProgress,
                   done: threading.Event, lost: threading.Event) -> None:
        """Renew the lease until ``done`` (the job's final state is written): a failed
        renewal is logged and tried again at the next beat; a lost lease or a cancellation
        stops the job's executor (in ``executors`` once it is built)."""
        while not done.wait(min(self.settings.lease_s / 3.0, self.settings.cancel_poll_s)):
            try:
                with self.sessions() as session:
                    cancel = leases.renew_lease(session, job.id, worker_id=self.worker_id,
                                               lease_s=self.settings.lease_s,
                                               n_done=progress.images())
            except Exception as exc:  # a database hiccup: the next beat tries again
                log.warning("worker %s: renewing the lease of job %s failed (%s: %s); "
                            "trying again", self.worker_id, job.id, type(exc).__name__, exc)
                continue
            if cancel is None:
                lost.set()
            if cancel is None or cancel:
                for executor in list(executors):
                    executor.stop()

    def _run(self, job: Job) -> None:
        """Run a job under a heartbeat that lasts until its final state is written."""
        folder = job_folder(self.settings, job.id)
        progress, done, lost = (JobProgress(folder / "results.jsonl"), threading.Event(),
                                threading.Event())
        executors: list[CancellableExecutor] = []  # the job's, once built
        beat = threading.Thread(target=self._heartbeat, daemon=True,
                                args=(job, executors, progress, done, lost))
        beat.start()  # before the executor is built: building it may take a while
        try:
            if job.source == "upload":
                self._finish_upload(job, folder)
                return
            try:
                target, executor = self._target(job)
            except Exception as exc:
                self._fail(job, f"cannot start an executor: {exc}")
                return
            executors.append(executor)
            self._executor = executor
            if self._stop.is_set():  # stopping began while the executor was built
                executor.stop()
            self._evaluate(job, target, executor, progress.path, lost)
        finally:
            self._executor = None
            done.set()

    def _evaluate(self, job: Job, target: Target, executor: CancellableExecutor,
                  results_path: Path, lost: threading.Event) -> None:
        folder = results_path.parent
        try:
            dataset = DatasetRef(name=job.dataset_name, preset=job.dataset_preset,
                                 version=job.dataset_version or None,
                                 cache_dir=self.settings.dataset_cache_dir)
            ids = list_images(target, dataset, DEFAULT_TASK_DEADLINE_S,
                              describe=import_function(self.settings.describe_function))
            with self.sessions() as session:
                leases.renew_lease(session, job.id, worker_id=self.worker_id,
                                  lease_s=self.settings.lease_s, n_images=len(ids))
            outcome = evaluate(job.model, results_path=results_path, dataset=dataset,
                               targets=[target], image_ids=ids,
                               model_options=json.loads(job.model_options), progress=False,
                               shard_function=import_function(self.settings.shard_function),
                               identify=None)  # one results file per job: nothing stale
        except Exception as exc:
            if not self._requeued(job, lost):
                self._fail(job, f"{type(exc).__name__}: {exc}",
                           cancelled=executor.stopped.is_set() and not lost.is_set())
            return
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        if self._requeued(job, lost):
            return
        if lost.is_set():
            log.warning("worker %s lost the lease of job %s", self.worker_id, job.id)
        elif executor.stopped.is_set():
            self._fail(job, "cancelled by its owner", cancelled=True)
        elif exit_status([outcome])[0]:  # as ``evaluate`` exits: an image without a result
            reasons = "; ".join(f"{k}: {v}" for k, v in sorted(outcome.failed_shards.items()))
            self._fail(job, f"{exit_status([outcome])[1]}; {len(outcome.failed_shards)} "
                       f"shard(s) failed: {reasons}")
        else:  # every image has a result (those of a shard that failed as a whole: failed)
            results = ResultsFile(results_path)
            self._finish(job, results.current_shards(outcome.shard_ids), folder)

    def _requeued(self, job: Job, lost: threading.Event) -> bool:
        """Give the job back to the queue if this worker is stopping (True then), or end it
        cancelled there if its owner asked to cancel it."""
        if not self._stop.is_set() or lost.is_set():
            return False
        with self.sessions() as session:
            requeued = leases.requeue_job(session, job.id, worker_id=self.worker_id)
        if requeued:
            log.warning("worker %s stopping: job %s goes back to the queue", self.worker_id,
                        job.id)
        else:
            self._fail(job, "cancelled by its owner", cancelled=True)
        return True

    def _fail(self, job: Job, error: str, *, cancelled: bool = False) -> None:
        with self.sessions() as session:
            leases.fail_job(session, job.id, worker_id=self.worker_id, error=error,
                           cancelled=cancelled)

    def _finish_upload(self, job: Job, folder: Path) -> None:
        from stembench.service.entries import INFLATION, read_upload, upload_file

        path = upload_file(self.settings, job.submission_key)
        try:
            shards = read_upload(path.read_bytes(),
                                 max_bytes=self.settings.max_upload_bytes * INFLATION)
        except (OSError, InputError) as exc:
            self._fail(job, f"cannot read the uploaded results: {exc}")
        else:
            self._finish(job, shards, folder)
        path.unlink(missing_ok=True)  # stored or refused: the upload is no longer needed

    def _finish(self, job: Job, shards: list[dict[str, Any]], folder: Path) -> None:
        """Re-score the shards from their coordinates, then store records, cutoffs and card."""
        from stembench.model_cards import builtin_card
        from stembench.service.analysis import job_cutoffs, write_job_report
        from stembench.service.entries import score_job
        from stembench.service.figures import warm_figures

        try:
            records = score_job(self.settings, job, shards)
        except InputError as exc:
            self._fail(job, f"results refused: {exc}")
            return
        if job.source == "upload":  # an uploaded entry is named by its model card
            records = [{**r, "model": job.model} for r in records]
        card = (json.loads(job.model_card_json) if job.model_card_json
                else builtin_card(job.model))
        failed = [{"image_id": r["image_id"], "model": job.model, "error": r["error"]}
                  for r in records if r.get("error")]
        try:
            cutoffs, note = job_cutoffs(records, bootstrap=self.settings.report_bootstrap)
            write_job_report(records, folder / "report", job=job,
                             bootstrap=self.settings.report_bootstrap, image_errors=failed)
            with self.sessions() as session:
                leases.finish_job(session, job, worker_id=self.worker_id, records=records,
                                 cutoffs=[c.to_dict() for c in cutoffs], card=card, error=note)
        except Exception as exc:
            log.exception("job %s: storing results failed", job.id)
            self._fail(job, f"storing results failed: {type(exc).__name__}: {exc}")
            return
        warm_figures(self.settings, self.sessions)
