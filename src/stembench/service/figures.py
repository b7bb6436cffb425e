"""Radar plots, rendered once per (data group, set of jobs) and kept on disk.

Stored results never change, so a figure of a given set of finished jobs never goes stale:
its key is the group and the sorted job ids. Figures are kept as PNG files under
``<data_dir>/figures`` (shared by every process of the service) and the most recent ones
in memory. Matplotlib is not thread-safe, so one render runs at a time per process; a
request for a figure being rendered waits for it instead of rendering it again. The worker
renders the figures of every group after each finished job (:func:`warm_figures`), so
requests normally find them ready.

Requests (:meth:`FigureCache.radar_async`) wait for a render on the event loop while the
cache's own render thread draws it, so no request thread is held. An overlay (a set of
entries other than a group's whole radar or one entry's, which the worker pre-renders) is
kept in memory only, and at most ``overlays_per_minute`` new ones are drawn a minute for each
caller (a signed-in identity, or an anonymous client's address: its IPv6 /64), and ten times
that for all callers together: more are refused (:class:`FigureBusyError`, HTTP 429), so no
caller can stall the service, starve the others or fill its disk with combinations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stembench.atomic import atomic_write_bytes
from stembench.client.analysis import Cutoff
from stembench.errors import StembenchError
from stembench.service.settings import ServiceSettings

__all__ = ["FigureBusyError", "FigureCache", "entry_cutoffs", "figure_cache", "group_radar",
           "warm_figures"]

_MEMORY_ITEMS = 64
#: New overlays all callers together may have drawn a minute, in units of one caller's share.
_CALLERS_PER_MINUTE = 10


class FigureBusyError(StembenchError):
    """More new overlays were asked for than the service draws a minute."""


class FigureCache:
    """PNG bytes of radar plots, keyed by group and job ids, rendered at most once.

    Parameters
    ----------
    folder : Path
        Where PNG files are kept.
    overlays_per_minute : int
        New overlays (sets that are not pre-rendered) drawn per minute for one caller at most
        (ten times as many for all callers together).
    """

    def __init__(self, folder: Path, *, overlays_per_minute: int = 30) -> None:
        self.folder = folder
        self.overlays_per_minute = overlays_per_minute
        self._render_lock = threading.Lock()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_lock = threading.Lock()
        self._drawer = cf.ThreadPoolExecutor(1, thread_name_prefix="radar")
        self._in_flight: dict[str, cf.Future[bytes]] = {}
        self._overlays: dict[str, deque[float]] = {}  # by caller ("" for all callers)

    @staticmethod
    def key(group: str, job_ids: Sequence[str]) -> str:
        """Cache key of the radar of ``job_ids`` on ``group``."""
        return hashlib.sha256(json.dumps([group, sorted(set(job_ids))]).encode()).hexdigest()

    def _remember(self, key: str, data: bytes) -> bytes:
        with self._memory_lock:
            self._memory[key] = data
            self._memory.move_to_end(key)
            while len(self._memory) > _MEMORY_ITEMS:
                self._memory.popitem(last=False)
        return data

    def _cached(self, key: str) -> bytes | None:
        with self._memory_lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        path = self.folder / f"{key}.png"
        return self._remember(key, path.read_bytes()) if path.is_file() else None

    def radar(self, session_factory: sessionmaker[Session], group: str,
              job_ids: Sequence[str], *, keep: bool = True) -> bytes:
        """The radar PNG of ``job_ids`` on ``group``, from the cache or rendered now (kept
        on disk unless ``keep`` is false).

        Parameters
        ----------
        session_factory : sqlalchemy.orm.sessionmaker
            Opens a database session to read the cutoffs.
        group : str
            The data group.
        job_ids : sequence of str
            The entries (job ids) drawn.
        keep : bool, optional
            Keep the PNG on disk; default True.
        """
        key = self.key(group, job_ids)
        found = self._cached(key)
        if found is not None:
            return found
        with self._render_lock:
            found = self._cached(key)
            if found is not None:
                return found
            from stembench.service.analysis import radar_png

            with session_factory() as session:
                cutoffs = entry_cutoffs(session, group, job_ids)
            data = radar_png(cutoffs, group=group)
            if keep:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self.folder / f"{key}.png", data)
        return self._remember(key, data)

    def _count_overlay(self, caller: str) -> None:
        """Count a new overlay against ``caller``'s share and all callers' (under the lock);
        :class:`FigureBusyError` when either is spent this minute."""
        now = time.monotonic()
        for key in list(self._overlays):
            times = self._overlays[key]
            while times and times[0] < now - 60.0:
                times.popleft()
            if not times:
                del self._overlays[key]
        mine, everyone = self._overlays.get(caller, ()), self._overlays.get("", ())
        if len(mine) >= self.overlays_per_minute:
            raise FigureBusyError(f"this service draws at most {self.overlays_per_minute} new "
                                  "radar overlays a minute for you; try again in a minute, or "
                                  "ask for the whole group or one entry")
        if len(everyone) >= self.overlays_per_minute * _CALLERS_PER_MINUTE:
            raise FigureBusyError("this service is drawing as many new radar overlays as it "
                                  "draws in a minute; try again in a minute, or ask for the "
                                  "whole group or one entry")
        for key in (caller, ""):
            self._overlays.setdefault(key, deque()).append(now)

    def _drawing(self, session_factory: sessionmaker[Session], group: str,
                 job_ids: Sequence[str], overlay: bool, caller: str) -> cf.Future[bytes]:
        """The render of a radar in flight on the render thread, started now if none is."""
        key = self.key(group, job_ids)
        with self._memory_lock:
            running = self._in_flight.get(key)
            if running is not None:
                return running
            if overlay:
                self._count_overlay(caller)
            future = self._drawer.submit(self.radar, session_factory, group, job_ids,
                                         keep=not overlay)
            self._in_flight[key] = future

        def landed(_: cf.Future[bytes]) -> None:
            with self._memory_lock:
                self._in_flight.pop(key, None)

        future.add_done_callback(landed)
        return future

    async def radar_async(self, session_factory: sessionmaker[Session], group: str,
                          job_ids: Sequence[str], *, overlay: bool, caller: str = "-") -> bytes:
        """:meth:`radar` for requests: drawn on the render thread while the request waits on
        the event loop; an ``overlay`` is kept in memory only and counts against
        ``caller``'s ``overlays_per_minute`` (:class:`FigureBusyError` when spent).

        Parameters
        ----------
        session_factory, group, job_ids
            As in :meth:`radar`.
        overlay : bool
            A figure drawn on request (kept in memory only, rate-limited per caller).
        caller : str, optional
            Who asks (its share of ``overlays_per_minute``); default ``"-"``.
        """
        found = self._cached(self.key(group, job_ids))
        if found is not None:
            return found
        future = self._drawing(session_factory, group, job_ids, overlay, "caller:" + caller)
        return await asyncio.shield(asyncio.wrap_future(future))


def entry_cutoffs(session: Session, group: str, job_ids: Sequence[str]) -> list[Cutoff]:
    """Leaderboard cutoffs of some entries on a group, each labelled by its entry's model
    name (with the entry id's start when two entries share a name).

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        Reads the cutoff rows and the entries' model names.
    group : str
        The data group drawn.
    job_ids : sequence of str
        The entries (job ids) whose cutoffs to read.
    """
    from collections import Counter

    from sqlalchemy import select

    from stembench.service.leaderboard import LEADERBOARD_METHOD
    from stembench.service.models import CutoffRow, Job

    found = session.execute(
        select(CutoffRow.job_id, CutoffRow.cutoff_json, Job.model)
        .join(Job, Job.id == CutoffRow.job_id)
        .where(CutoffRow.group == group, CutoffRow.method == LEADERBOARD_METHOD,
               CutoffRow.job_id.in_(list(job_ids)))).all()
    names = Counter({job_id: model for job_id, _, model in found}.values())
    return [replace(Cutoff.from_dict(json.loads(text)),
                    model=model if names[model] == 1 else f"{model} ({job_id[:6]})")
            for job_id, text, model in found]


_CACHES: dict[Path, FigureCache] = {}
_CACHES_LOCK = threading.Lock()


def figure_cache(settings: ServiceSettings) -> FigureCache:
    """The process's figure cache of a service (one per data folder)."""
    folder = settings.data_dir / "figures"
    with _CACHES_LOCK:
        if folder not in _CACHES:
            _CACHES[folder] = FigureCache(
                folder, overlays_per_minute=settings.figure_overlays_per_minute)
        return _CACHES[folder]


def group_radar(session: Session, group: str) -> list[str]:
    """Ids of the jobs in a group's radar (those with leaderboard cutoffs), sorted."""
    from sqlalchemy import select

    from stembench.service.leaderboard import LEADERBOARD_METHOD
    from stembench.service.models import CutoffRow

    return sorted(session.scalars(select(CutoffRow.job_id).distinct().where(
        CutoffRow.group == group, CutoffRow.method == LEADERBOARD_METHOD)).all())


def warm_figures(settings: ServiceSettings, sessions: sessionmaker[Session]) -> None:
    """Render every group's radar and each job's own radar that is not cached yet."""
    from stembench.service.leaderboard import list_groups

    cache = figure_cache(settings)
    with sessions() as session:
        plan = [(group, group_radar(session, group)) for group in list_groups(session)]
    for group, job_ids in plan:
        if job_ids:
            cache.radar(sessions, group, job_ids)
            for job_id in job_ids:
                cache.radar(sessions, group, [job_id])
