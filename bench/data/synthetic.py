"""Deterministic synthetic KuaiRand-style data with a planted "incremental interest" structure.

The generator writes three CSV files whose names, headers, column order and value formats are
those of the official KuaiRand release, so the KuaiRand reader (`bench.data.kuairand`) reads them
like real files (release tag `synth`):

- ``log_standard_<M>_<D>_to_<M>_<D>_synth.csv``   month/day of the first and last day, no padding
- ``user_features_synth.csv``                     every user id 0..n_users-1, 31 columns
- ``video_features_basic_synth.csv``              every video id 0..n_items-1, 12 columns

The same preset and seed always give byte-identical files (one ``numpy.random.default_rng(seed)``
drives everything, in a fixed order); any other seed gives other data.

What the data plants
--------------------
The benchmark asks whether a model retrieves the items a user engages with *outside* the homepage
feed after a homepage visit, the ones a co-visitation item-CF channel (triggers = the user's latest
clicked items) misses. The generator builds a world where such items exist and are learnable:

* Topics. ``n_topics`` latent topics; the last ``n_hidden_topics`` are "niche" topics, the others
  "mainstream". Each item belongs to one topic; authors are nested in topics (an author only
  uploads in one topic). Within a topic, items have Zipf-like popularity (exponent
  ``feed_topic_zipf`` for mainstream topics, the flatter ``hidden_topic_zipf`` for niche ones);
  niche topics hold as many items as mainstream ones but little global popularity, so the hidden targets spread
  over a long tail that a co-visitation budget covers poorly.
  A topic's first tag (``tag`` column) is a noisy, many-to-one label of the topic; video duration
  has a per-topic typical length.
* Users. Each user has 2-6 *feed topics* (mainstream, favouring topics popular with the user's
  ``onehot_feat0`` group) and 1-2 *hidden topics* (niche). The first hidden topic is, with
  probability ``profile_fidelity``, a fixed function of ``onehot_feat2``; the second (half of the
  users) a fixed function of ``onehot_feat9``, with the same fidelity; otherwise random. So the
  profile predicts the hidden interests, and so does the user's earlier activity outside the
  main feed.
* Visits. Active (user, day) cells receive a number of impressions; about ``main_share`` of them
  are main-feed impressions (``tab`` 1). These come in visits: a visit is a burst of tab-1
  impressions a few seconds to about two minutes apart, lasting at most 45 minutes; the day is cut
  into 16 slots of 90 minutes (with a random phase per cell), a visit occupies one slot, so two
  visits are at least 30 minutes apart. Slots are chosen with the diurnal profile of the real log.
* Main feed. 88% of its items come from the user's feed topics, 8% from global popularity, 4%
  from the hidden topics. Clicked feed items co-occur within users: item-CF's home ground.
* Other scenarios (every tab but 1, with the real per-tab shares: 0, 4, 6 and 2 dominate, all 15
  tabs appear from the ``small`` preset up). Each such impression follows one of the user's
  visits by a truncated-exponential delay (mean 45 minutes, at most 4 hours). 80% of these items
  come from the hidden topics, 10% from feed topics, 10% from global popularity.
* Labels. ``is_click`` is a logistic function of a per-tab intercept (calibrated to the real
  per-tab click rates), bonuses for an item in the user's feed topics and in the user's hidden
  topics (the hidden bonus is large outside the main feed), and a per-item quality. ``long_view``,
  ``is_like``, ``is_follow``, ``is_comment``, ``is_forward``, ``is_hate``, ``is_profile_enter``,
  the stay times and ``play_time_ms`` are drawn conditionally on the click with rates close to the
  real log's. ``duration_ms`` is the item's ``video_duration`` (0 where that cell is blank).
  ``is_rand`` is always 0.

Quirks copied from the real files
---------------------------------
* About ``duplicate_share`` (2%) of the log rows are exact duplicates of another row (mostly in
  tabs 6 and 5, as in the real log); the row count *including* duplicates is exactly
  ``n_impressions``.
* ``date`` and ``hourmin`` (``H*100``: 0, 100, ..., 2300) are the Beijing hour of a logging time a
  few minutes (about 12) after ``time_ms``, as in the real log, so ``hourmin`` is often the next
  hour and ``date`` is the next day on about 1% of rows (late-evening rows). On the last day the
  shift is not applied across midnight, so ``date`` stays inside the file's date range.
  ``time_ms`` (epoch milliseconds) is the authoritative time; every row lies inside the period.
* ``user_features``: ``is_live_streamer`` is the out-of-range code -124 on about 77% of users (1
  otherwise), ``user_active_degree`` is ``UNKNOWN`` on a few; ``onehot_feat4`` is blank on about 3%
  and ``onehot_feat12``..``onehot_feat17`` are blank together on about 2.6% of users; these seven
  columns are written as floats (``1.0``). A few percent of users have no log rows at all.
* ``video_features_basic``: ``video_duration`` blank on about 3%, ``music_type`` blank where
  ``music_id`` is 0 (about 2.7%), ``tag`` blank on about 1.3% and a quoted list such as ``"39,68"``
  on about a quarter of the items; ``visible_status``, ``video_duration``, ``server_width``,
  ``server_height`` and ``music_type`` are floats (``720.0``), like the real file.

Days are Beijing calendar days (UTC+8); the log covers ``n_days`` whole days from ``start_date``
and its last day ends the period. Rows are sorted by ``time_ms``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import ConfigError

GENERATOR_VERSION = 3

TZ_MS = 8 * 3_600_000  # Beijing is UTC+8
DAY_MS = 86_400_000
MIN_MS = 60_000
N_TABS = 15
MAIN_TAB = 1

LOG_COLUMNS = (
    "user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
    "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms", "profile_stay_time",
    "comment_stay_time", "is_profile_enter", "is_rand", "tab",
)
USER_COLUMNS = (
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range", "friend_user_num",
    "friend_user_num_range", "register_days", "register_days_range", *(f"onehot_feat{k}" for k in range(18)),
)
VIDEO_COLUMNS = (
    "video_id", "author_id", "video_type", "upload_dt", "upload_type", "visible_status", "video_duration",
    "server_width", "server_height", "music_id", "music_type", "tag",
)
USER_FILE = "user_features_synth.csv"
VIDEO_FILE = "video_features_basic_synth.csv"

# ---------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class SyntheticPreset:
    """Knobs of one synthetic dataset (see the module docstring for what each part plants).

    n_users, n_items, n_impressions: ids 0..n-1 in the feature files; exact log row count
        (duplicates included).
    n_days, start_date: the log covers whole Beijing days start_date .. start_date + n_days - 1.
    n_topics, n_hidden_topics: latent topics; the last n_hidden_topics are niche topics that only
        serve as users' hidden interests.
    main_share: share of impressions in the main feed (tab 1); at least one per active user-day.
    visit_size: mean number of tab-1 impressions per visit (before the cap of 16 visits a day).
    active_day_share: mean share of days on which a user is active.
    silent_user_share: share of users listed in user_features with no log row.
    feed_topic_zipf, hidden_topic_zipf: within-topic popularity exponents (mainstream / niche).
    profile_fidelity: probability that a hidden topic is the one the profile predicts.
    duplicate_share: share of log rows that duplicate another row exactly.
    """

    n_users: int
    n_items: int
    n_impressions: int
    n_days: int
    n_topics: int
    n_hidden_topics: int
    start_date: str = "2022-04-22"
    main_share: float = 0.75
    visit_size: float = 4.0
    active_day_share: float = 0.5
    silent_user_share: float = 0.03
    feed_topic_zipf: float = 1.2
    hidden_topic_zipf: float = 1.2
    profile_fidelity: float = 0.9
    duplicate_share: float = 0.02

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_impressions", "n_days", "n_topics", "n_hidden_topics"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SyntheticPreset.{name} must be a positive integer")
        if self.n_topics - self.n_hidden_topics < 2:
            raise ValueError("SyntheticPreset needs at least 2 mainstream topics (n_topics - n_hidden_topics >= 2)")
        if self.n_items < self.n_topics:
            raise ValueError("SyntheticPreset.n_items must be at least n_topics")
        for name in ("main_share", "active_day_share", "profile_fidelity"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticPreset.{name} must lie in (0, 1]")
        for name in ("silent_user_share", "duplicate_share"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"SyntheticPreset.{name} must lie in [0, 0.5)")
        if self.visit_size < 1:
            raise ValueError("SyntheticPreset.visit_size must be at least 1")
        dt.date.fromisoformat(self.start_date)

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.n_days - 1)

    @property
    def log_file(self) -> str:
        a, b = self.first_day, self.last_day
        return f"log_standard_{a.month}_{a.day}_to_{b.month}_{b.day}_synth.csv"

    @property
    def file_names(self) -> tuple[str, str, str]:
        """(log, user features, video features) file names."""
        return self.log_file, USER_FILE, VIDEO_FILE


PRESETS: dict[str, SyntheticPreset] = {
    # Unit tests: generates in well under a second.
    "tiny": SyntheticPreset(n_users=300, n_items=600, n_impressions=12_000, n_days=8, n_topics=16,
                            n_hidden_topics=6, active_day_share=0.6, visit_size=3.5),
    # The product's default dataset.
    "small": SyntheticPreset(n_users=4_000, n_items=3_000, n_impressions=150_000, n_days=15, n_topics=48,
                             n_hidden_topics=18, active_day_share=0.45),
    # Official KuaiRand-Pure sizes (standard log, 2022-04-08 .. 2022-05-08).
    "pure": SyntheticPreset(n_users=27_285, n_items=7_551, n_impressions=1_436_609, n_days=31, n_topics=80,
                            n_hidden_topics=30, start_date="2022-04-08", active_day_share=0.45),
    # Official KuaiRand-1K sizes: few, very active users over a pool of millions of videos.
    "kuairand1k": SyntheticPreset(n_users=1_000, n_items=4_369_953, n_impressions=11_713_045, n_days=31,
                                  n_topics=160, n_hidden_topics=60, start_date="2022-04-08",
                                  active_day_share=0.85, visit_size=12.0, silent_user_share=0.0),
}


class UnknownPresetError(ConfigError, ValueError):
    """A preset name that is not in PRESETS (a ValueError, and a one-line BenchError)."""


def get_preset(preset: str | SyntheticPreset) -> SyntheticPreset:
    if isinstance(preset, SyntheticPreset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise UnknownPresetError(
            f"unknown synthetic preset {preset!r}; valid presets: {', '.join(PRESETS)}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Fixed shapes borrowed (approximately) from the real log

# Relative activity per Beijing hour 0..23.
HOUR_PROFILE = np.array([46, 27, 18, 11, 9, 10, 18, 28, 38, 45, 51, 57, 66, 64, 57, 58, 63, 67, 66, 61, 62, 66, 72, 70],
                        dtype=np.float64)
# Relative frequency of every tab other than 1 (real sample counts, rounded).
SIDE_TAB_SHARE = {0: 9990, 2: 3340, 3: 171, 4: 6980, 5: 329, 6: 5360, 7: 53, 8: 532, 9: 76, 10: 25, 11: 118,
                  12: 252, 13: 65, 14: 10}
# Target click rate per tab (tabs 9/10/11/14 are near 1 or 0 in the real data; kept off the bounds).
TAB_CTR = np.array([0.116, 0.46, 0.424, 0.021, 0.544, 0.237, 0.178, 0.441, 0.040, 0.98, 0.98, 0.002, 0.122,
                    0.363, 0.002])
# Item source mixtures (feed topics, hidden topics, global popularity) and the click-logit bonuses.
MAIN_SOURCE = np.array([0.88, 0.04, 0.08])
SIDE_SOURCE = np.array([0.10, 0.80, 0.10])
MAIN_BONUS = (1.6, 1.6)  # (item in a feed topic, item in a hidden topic)
SIDE_BONUS = (0.8, 2.5)
# Duplicates: relative chance that a row of each tab is the one duplicated.
DUP_TAB_WEIGHT = np.full(N_TABS, 1e-4)
DUP_TAB_WEIGHT[[6, 5, 0]] = [1.0, 0.6, 0.004]

N_SLOTS = 16  # 90-minute visit slots per day
SLOT_MIN = 1440 // N_SLOTS
START_JITTER_MIN = 15  # a visit starts within the first 15 minutes of its slot
MAX_VISIT_MIN = SLOT_MIN - START_JITTER_MIN - 30  # leaves >= 30 minutes before the next slot
SIDE_DELAY_MEAN_MIN = 45.0
SIDE_DELAY_MAX_MIN = 240.0
LOG_DELAY_MIN = (10.5, 3.0)  # the `date`/`hourmin` logging time runs this far (mean, sd) after time_ms
MAX_FEED_TOPICS = 6
NICHE_SIZE_FACTOR = 1.0  # a niche topic holds this many times the items of a mainstream one, on average

DEGREES = ("full_active", "high_active", "middle_active", "2_14_day_new", "low_active", "single_low_active",
           "30day_retention", "day_new", "UNKNOWN")
DEGREE_SHARE = np.array([0.658, 0.226, 0.078, 0.023, 0.011, 0.0025, 0.0006, 0.0004, 0.0002])
UPLOAD_TYPES = ("LongImport", "Web", "ShortImport", "Kmovie", "LongPicture", "UNKNOWN", "PictureSet", "LongCamera",
                "ShortCamera", "ShareFromOtherApp", "FollowShoot", "AiCutVideo", "PhotoCopy", "LipsSync")
UPLOAD_SHARE = np.array([2925, 2416, 917, 879, 143, 80, 73, 64, 43, 29, 10, 2, 1, 1], dtype=np.float64)
SCREENS = np.array([(720, 1280), (1280, 720), (960, 720), (720, 1282), (720, 960), (720, 720), (1080, 1440),
                    (1080, 720), (1030, 720), (1440, 1440), (576, 1024), (540, 960), (810, 1440), (1080, 1920)],
                   dtype=np.float64)
SCREEN_SHARE = np.array([5090, 1367, 179, 114, 90, 59, 48, 38, 25, 22, 18, 18, 15, 12], dtype=np.float64)
MUSIC_TYPES = np.array([9.0, 4.0, 8.0, 7.0, 11.0])
MUSIC_SHARE = np.array([6665, 657, 41, 14, 3], dtype=np.float64)
N_TAG_VALUES = 68  # tags are 1..68
SECOND_TAGS = np.array([68, 43, 62, 67, 60, 18, 54, 7])

FOLLOW_EDGES = (0, 10, 50, 100, 150, 250, 500)  # right-closed bins
FOLLOW_LABELS = ("0", "(0,10]", "(10,50]", "(50,100]", "(100,150]", "(150,250]", "(250,500]", "500+")
FANS_EDGES = (1, 10, 100, 1_000, 5_000, 10_000, 100_000, 1_000_000)  # left-closed bins
FANS_LABELS = ("0", "[1,10)", "[10,100)", "[100,1k)", "[1k,5k)", "[5k,1w)", "[1w,10w)", "[10w,100w)", "[100w,1000w)")
FRIEND_EDGES = (1, 5, 30, 60, 120, 250)
FRIEND_LABELS = ("0", "[1,5)", "[5,30)", "[30,60)", "[60,120)", "[120,250)", "250+")
REGISTER_EDGES = (7, 14, 30, 60, 90, 180, 365, 730)  # right-closed bins
REGISTER_LABELS = ("0-7", "8-14", "15-30", "31-60", "61-90", "91-180", "181-365", "366-730", "730+")

FEAT1_SHARE = np.array([0.031, 0.220, 0.187, 0.126, 0.265, 0.101, 0.070])
FEAT2_TOP = {2: 0.252, 19: 0.202, 29: 0.198, 10: 0.187, 31: 0.060, 28: 0.030, 9: 0.028, 48: 0.011}
FEAT9_SHARE = np.array([0.0095, 0.223, 0.052, 0.228, 0.116, 0.147, 0.223])
FEAT10_SHARE = np.array([0.158, 0.0013, 0.292, 0.400, 0.149])
FEAT11_SHARE = np.array([0.745, 0.0097, 0.245, 0.0002, 0.0001])
FEAT4_SHARE = np.array([3039, 10083, 5061, 3184, 2021, 1062, 862, 379, 401, 270, 8, 16, 6, 4, 2], dtype=np.float64)
FEAT12_17_ONE = np.array([0.724, 0.068, 0.119, 0.023, 0.040, 0.0145])


def _norm(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum()


def _zipf_codes(rng: np.random.Generator, n_codes: int, size: int, power: float) -> np.ndarray:
    """Codes 0..n_codes-1 with a skewed, shuffled frequency profile."""
    perm = rng.permutation(n_codes)
    return perm[np.minimum((n_codes * rng.random(size) ** power).astype(np.int64), n_codes - 1)]


def _gumbel_topk_mask(rng: np.random.Generator, logw: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Row-wise weighted sampling without replacement: a mask with k[r] True entries in row r."""
    keys = logw + rng.gumbel(size=logw.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(logw.shape[1])[None, :].repeat(len(logw), 0), axis=1)
    return rank < k[:, None]


# ---------------------------------------------------------------------------------------------
# The latent world (items, users, interests)


@dataclass
class SyntheticLatent:
    """The hidden ground truth behind one generated dataset (same preset and seed as the files).

    Topics 0..n_topics-n_hidden_topics-1 are mainstream (feed) topics, the rest niche (hidden) ones.
    """

    preset: SyntheticPreset
    item_topic: np.ndarray  # [n_items] int32, topic of each video_id
    item_author: np.ndarray  # [n_items] int64, author_id of each video_id
    user_feed: np.ndarray  # [n_users, n_topics] bool, the user's feed topics
    user_hidden: np.ndarray  # [n_users, n_topics] bool, the user's hidden topics
    user_profile_topic: np.ndarray  # [n_users] int32, hidden topic the profile (onehot_feat2) predicts
    user_hidden_main: np.ndarray  # [n_users] int32, the user's first hidden topic
    n_feed_topics: int  # number of mainstream topics

    @property
    def hidden_topics(self) -> np.ndarray:
        return np.arange(self.n_feed_topics, self.preset.n_topics)


@dataclass
class _World:
    latent: SyntheticLatent
    videos: pd.DataFrame | None  # the video feature file's rows (dropped once written)
    users: pd.DataFrame | None  # the user feature file's rows
    # item sampling
    item_at: np.ndarray  # [n_items] video id at each topic-sorted position
    topic_lo: np.ndarray  # [n_topics] first position of each topic
    topic_hi: np.ndarray  # [n_topics] one past the last position
    within_cum: np.ndarray  # [n_items + 1] cumulative within-topic popularity over positions
    global_cum: np.ndarray  # [n_items + 1] cumulative global popularity over positions
    item_quality: np.ndarray  # [n_items] click-logit offset, by video id
    item_duration_ms: np.ndarray  # [n_items] int64, 0 where the video_duration cell is blank
    # user sampling
    user_weight: np.ndarray  # [n_users] activity weight (0 for silent users)
    user_day_share: np.ndarray  # [n_users] probability of being active on a day
    feed_topics: np.ndarray  # [n_users, MAX_FEED_TOPICS] int32, -1 padded
    feed_cum: np.ndarray  # [n_users, MAX_FEED_TOPICS] cumulative weights, 2.0 padded
    feed_count: np.ndarray  # [n_users]
    hidden_topics: np.ndarray  # [n_users, 2] int32, -1 padded
    hidden_cum: np.ndarray  # [n_users, 2]
    hidden_count: np.ndarray  # [n_users]


def _build_items(p: SyntheticPreset, rng: np.random.Generator):
    n, T, H = p.n_items, p.n_topics, p.n_hidden_topics
    n_main = T - H
    # Topic sizes and global shares: mainstream topics share most of the popularity (Zipf-like over
    # topics); niche topics hold as many items but little popularity.
    size_w = rng.lognormal(0.0, 0.5, T)
    size_w[n_main:] *= NICHE_SIZE_FACTOR
    sizes = rng.multinomial(n - T, _norm(size_w)) + 1
    lo = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    hi = lo + sizes
    topic_mass = np.empty(T)
    topic_mass[:n_main] = rng.permutation((np.arange(n_main) + 1.0) ** -0.8)
    topic_mass[n_main:] = 0.3 * topic_mass[:n_main].mean() * rng.lognormal(0.0, 0.3, H)
    topic_mass = _norm(topic_mass)

    pos_topic = np.repeat(np.arange(T, dtype=np.int32), sizes)
    rank = np.arange(n) - lo[pos_topic] + 1.0
    alpha = np.where(pos_topic < n_main, p.feed_topic_zipf, p.hidden_topic_zipf)
    w = rank ** -alpha
    topic_w = np.bincount(pos_topic, weights=w, minlength=T)
    within_cum = np.concatenate([[0.0], np.cumsum(w)])
    global_cum = np.concatenate([[0.0], np.cumsum(w / topic_w[pos_topic] * topic_mass[pos_topic])])

    item_at = rng.permutation(n)  # position -> video id; ids carry no topic order
    item_topic = np.empty(n, dtype=np.int32)
    item_topic[item_at] = pos_topic

    # Authors nested in topics: about 1.15 videos per author, a few prolific ones.
    n_auth = np.maximum(1, np.round(sizes / 1.15)).astype(np.int64)
    auth_lo = np.concatenate([[0], np.cumsum(n_auth)[:-1]])
    local = np.minimum((n_auth[pos_topic] * rng.random(n) ** 1.6).astype(np.int64), n_auth[pos_topic] - 1)
    slots = int(n_auth.sum())
    id_range = max(9_000_000, 3 * slots)
    author_ids = rng.choice(id_range, size=slots, replace=False) + 1
    item_author = np.empty(n, dtype=np.int64)
    item_author[item_at] = author_ids[auth_lo[pos_topic] + local]

    # Side features, by video id.
    topic_log_dur = rng.normal(np.log(75_000.0), 0.5, T)
    dur = np.exp(topic_log_dur[item_topic] + rng.normal(0.0, 0.85, n))
    dur = np.clip(np.round(dur), 5_000, 1_200_000)
    dur_blank = rng.random(n) < 0.032
    video_duration = np.where(dur_blank, np.nan, dur)

    video_type = np.array(["NORMAL", "AD", "UNKNOWN"], dtype=object)[
        rng.choice(3, size=n, p=_norm([0.98987, 0.01, 0.00013]))]
    first = p.first_day
    upload_days = np.array([(first - dt.timedelta(days=k)).isoformat() for k in (3, 2, 1)], dtype=object)
    upload_dt = upload_days[rng.choice(3, size=n, p=_norm([0.37, 0.45, 0.18]))]
    upload_type = np.array(UPLOAD_TYPES, dtype=object)[rng.choice(len(UPLOAD_TYPES), size=n, p=_norm(UPLOAD_SHARE))]
    screen = SCREENS[rng.choice(len(SCREENS), size=n, p=_norm(SCREEN_SHARE))]

    no_music = rng.random(n) < 0.027
    hits = rng.integers(4_000_000_000, 9_170_000_000, size=max(1, n // 20))
    own = rng.integers(4_000_000_000, 9_170_000_000, size=n)
    reuse = rng.random(n) < 0.3
    music_id = np.where(reuse, hits[np.minimum((len(hits) * rng.random(n) ** 2).astype(np.int64), len(hits) - 1)], own)
    music_id = np.where(no_music, 0, music_id)
    music_type = np.where(no_music, np.nan, MUSIC_TYPES[rng.choice(len(MUSIC_TYPES), size=n, p=_norm(MUSIC_SHARE))])

    # Tags: a topic's primary tag (several topics may share one) plus sometimes secondary tags.
    topic_tag = rng.integers(1, N_TAG_VALUES + 1, T)
    topic_second = SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), T)]
    prim = np.where(rng.random(n) < 0.1, rng.integers(1, N_TAG_VALUES + 1, n), topic_tag[item_topic])
    n_tags = 1 + (rng.random(n) < 0.232) + (rng.random(n) < 0.02)
    sec = np.where(rng.random(n) < 0.8, topic_second[item_topic], SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), n)])
    third = SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), n)]
    sec = np.where(n_tags >= 2, sec, 0)
    third = np.where((n_tags >= 3) & (third != sec) & (third != prim), third, 0)
    sec = np.where(sec == prim, 0, sec)
    key = (prim * 100 + sec) * 100 + third
    tag_blank = rng.random(n) < 0.013
    uniq, inv = np.unique(key, return_inverse=True)
    texts = np.array([",".join(str(v) for v in (k // 10_000, (k // 100) % 100, k % 100) if v) for k in uniq.tolist()],
                     dtype=object)
    tag = np.where(tag_blank, np.nan, texts[inv])

    videos = pd.DataFrame({
        "video_id": np.arange(n, dtype=np.int64),
        "author_id": item_author,
        "video_type": video_type,
        "upload_dt": upload_dt,
        "upload_type": upload_type,
        "visible_status": np.zeros(n),
        "video_duration": video_duration,
        "server_width": screen[:, 0],
        "server_height": screen[:, 1],
        "music_id": music_id.astype(np.int64),
        "music_type": music_type,
        "tag": tag,
    })
    quality = rng.normal(0.0, 0.4, n)
    duration_ms = np.where(dur_blank, 0, dur).astype(np.int64)
    return dict(videos=videos, item_at=item_at, topic_lo=lo, topic_hi=hi, within_cum=within_cum,
                global_cum=global_cum, item_topic=item_topic, item_author=item_author, item_quality=quality,
                item_duration_ms=duration_ms, topic_mass=topic_mass)


def _range_labels(values: np.ndarray, edges, labels, right: bool) -> np.ndarray:
    idx = np.searchsorted(np.asarray(edges), values, side="left" if right else "right")
    return np.array(labels, dtype=object)[idx]


def _build_users(p: SyntheticPreset, rng: np.random.Generator, topic_mass: np.ndarray):
    U, T, H = p.n_users, p.n_topics, p.n_hidden_topics
    n_main = T - H

    # Activity and the activity-degree label.
    z = rng.normal(0.0, 1.0, U)
    weight = np.exp(z)
    silent = rng.random(U) < p.silent_user_share
    weight[silent] = 0.0
    base = np.log(p.active_day_share / (1.0 - p.active_day_share + 1e-9) + 1e-9)
    day_share = np.clip(1.0 / (1.0 + np.exp(-(base + 0.8 * z + rng.normal(0.0, 0.5, U)))), 0.03, 1.0)
    order = np.argsort(-(z + rng.normal(0.0, 0.7, U)), kind="stable")
    cuts = np.round(np.cumsum(DEGREE_SHARE / DEGREE_SHARE.sum()) * U).astype(np.int64)
    degree_idx = np.empty(U, dtype=np.int64)
    degree_idx[order] = np.searchsorted(cuts, np.arange(U), side="right")
    degree_idx = np.minimum(degree_idx, len(DEGREES) - 1)

    # Profile codes (marginals close to the real file's).
    f = {}
    f[0] = (rng.random(U) < 0.563).astype(np.int64)
    f[1] = rng.choice(7, size=U, p=_norm(FEAT1_SHARE))
    rest = [c for c in range(50) if c not in FEAT2_TOP]
    codes2 = np.array(list(FEAT2_TOP) + rest)
    share2 = np.array(list(FEAT2_TOP.values()) + [(1.0 - sum(FEAT2_TOP.values())) / len(rest)] * len(rest))
    f[2] = codes2[rng.choice(50, size=U, p=_norm(share2))]
    f[3] = _zipf_codes(rng, 1471, U, 2.5)
    f[4] = rng.choice(len(FEAT4_SHARE), size=U, p=_norm(FEAT4_SHARE)).astype(np.float64)
    f[4][rng.random(U) < 0.032] = np.nan
    f[5] = np.where(rng.random(U) < 0.994, 0, rng.integers(1, 34, U))
    f[6] = rng.choice(3, size=U, p=_norm([0.54, 0.454, 0.006]))
    f[7] = _zipf_codes(rng, 118, U, 2.0)
    f[8] = _zipf_codes(rng, 454, U, 1.5)
    f[9] = rng.choice(7, size=U, p=_norm(FEAT9_SHARE))
    f[10] = rng.choice(5, size=U, p=_norm(FEAT10_SHARE))
    f[11] = rng.choice(5, size=U, p=_norm(FEAT11_SHARE))
    blank = rng.random(U) < 0.026
    for k, one in zip(range(12, 18), FEAT12_17_ONE):
        f[k] = np.where(blank, np.nan, (rng.random(U) < one).astype(np.float64))

    follow = np.clip(np.round(rng.lognormal(np.log(155.0), 1.5, U)), 0, 5003).astype(np.int64)
    fans = np.clip(np.floor(rng.lognormal(np.log(48.0), 2.0, U) - 0.5), 0, 2_000_000).astype(np.int64)
    friend = np.clip(np.floor(rng.lognormal(np.log(16.0), 2.2, U) - 1.0), 0, 4995).astype(np.int64)
    young = rng.random(U) < 0.08
    register = np.where(young, rng.integers(14, 366, U), np.round(rng.normal(1250.0, 600.0, U)))
    register = np.clip(register, 14, 3624).astype(np.int64)

    users = pd.DataFrame({
        "user_id": np.arange(U, dtype=np.int64),
        "user_active_degree": np.array(DEGREES, dtype=object)[degree_idx],
        "is_lowactive_period": np.zeros(U, dtype=np.int64),
        "is_live_streamer": np.where(rng.random(U) < 0.774, -124, 1).astype(np.int64),
        "is_video_author": (rng.random(U) < 0.816).astype(np.int64),
        "follow_user_num": follow,
        "follow_user_num_range": _range_labels(follow, FOLLOW_EDGES, FOLLOW_LABELS, right=True),
        "fans_user_num": fans,
        "fans_user_num_range": _range_labels(fans, FANS_EDGES, FANS_LABELS, right=False),
        "friend_user_num": friend,
        "friend_user_num_range": _range_labels(friend, FRIEND_EDGES, FRIEND_LABELS, right=False),
        "register_days": register,
        "register_days_range": _range_labels(register, REGISTER_EDGES, REGISTER_LABELS, right=True),
        **{f"onehot_feat{k}": f[k] for k in range(18)},
    })

    # Feed topics: 2..6 mainstream topics, the preference order depending on onehot_feat0.
    pref = np.stack([topic_mass[:n_main], topic_mass[:n_main].copy()])
    swap = rng.random(n_main) < 0.4
    pref[1, swap] = rng.permutation(pref[1, swap])
    k_feed = np.clip(2 + rng.poisson(1.5, U), 2, min(MAX_FEED_TOPICS, n_main))
    mask = _gumbel_topk_mask(rng, np.log(pref[f[0]]), k_feed)
    raw_w = rng.gamma(1.0, 1.0, (U, n_main)) * mask
    feed_topics = np.full((U, MAX_FEED_TOPICS), -1, dtype=np.int32)
    feed_w = np.zeros((U, MAX_FEED_TOPICS))
    r, c = np.nonzero(mask)
    slot = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    feed_topics[r, slot] = c
    feed_w[r, slot] = raw_w[r, c]
    feed_cum = np.cumsum(feed_w / feed_w.sum(1, keepdims=True), axis=1)
    feed_cum[feed_topics < 0] = 2.0

    # Hidden topics: functions of profile codes, kept with probability `profile_fidelity`.
    table1 = rng.integers(0, H, 50)
    table2 = rng.integers(0, H, 7)
    profile_topic = table1[f[2]]
    h1 = np.where(rng.random(U) < p.profile_fidelity, profile_topic, rng.integers(0, H, U))
    h2 = np.where(rng.random(U) < p.profile_fidelity, table2[f[9]], rng.integers(0, H, U))
    if H > 1:
        h2 = np.where(h2 == h1, (h1 + rng.integers(1, H, U)) % H, h2)
        has2 = rng.random(U) < 0.5
    else:
        has2 = np.zeros(U, dtype=bool)
    hidden_topics = np.stack([h1 + n_main, np.where(has2, h2 + n_main, -1)], axis=1).astype(np.int32)
    hidden_cum = np.where(has2[:, None], np.array([[0.65, 1.0]]), np.array([[1.0, 2.0]]))

    user_feed = np.zeros((U, T), dtype=bool)
    user_feed[r, c] = True
    user_hidden = np.zeros((U, T), dtype=bool)
    user_hidden[np.arange(U), hidden_topics[:, 0]] = True
    user_hidden[np.flatnonzero(has2), hidden_topics[has2, 1]] = True

    return dict(users=users, weight=weight, day_share=day_share, feed_topics=feed_topics, feed_cum=feed_cum,
                feed_count=k_feed, hidden_topics=hidden_topics, hidden_cum=hidden_cum,
                hidden_count=1 + has2.astype(np.int64), user_feed=user_feed, user_hidden=user_hidden,
                profile_topic=(profile_topic + n_main).astype(np.int32), hidden_main=hidden_topics[:, 0].copy())


def _build_world(p: SyntheticPreset, rng: np.random.Generator) -> _World:
    it = _build_items(p, rng)
    us = _build_users(p, rng, it["topic_mass"])
    latent = SyntheticLatent(
        preset=p, item_topic=it["item_topic"], item_author=it["item_author"], user_feed=us["user_feed"],
        user_hidden=us["user_hidden"], user_profile_topic=us["profile_topic"], user_hidden_main=us["hidden_main"],
        n_feed_topics=p.n_topics - p.n_hidden_topics,
    )
    return _World(
        latent=latent, videos=it["videos"], users=us["users"], item_at=it["item_at"], topic_lo=it["topic_lo"],
        topic_hi=it["topic_hi"], within_cum=it["within_cum"], global_cum=it["global_cum"],
        item_quality=it["item_quality"], item_duration_ms=it["item_duration_ms"], user_weight=us["weight"],
        user_day_share=us["day_share"], feed_topics=us["feed_topics"], feed_cum=us["feed_cum"],
        feed_count=us["feed_count"], hidden_topics=us["hidden_topics"], hidden_cum=us["hidden_cum"],
        hidden_count=us["hidden_count"],
    )


def latent_structure(preset: str | SyntheticPreset, seed: int) -> SyntheticLatent:
    """The latent assignments (topics, interests) behind `generate(preset, seed, ...)`'s files."""
    return _build_world(get_preset(preset), np.random.default_rng(seed)).latent


# ---------------------------------------------------------------------------------------------
# The log


def _tab_intercepts() -> np.ndarray:
    """Per-tab click-logit intercept so that the expected click rate matches TAB_CTR."""
    src = np.where(np.arange(N_TABS)[:, None] == MAIN_TAB, MAIN_SOURCE[None, :], SIDE_SOURCE[None, :])
    bonus = np.array([[MAIN_BONUS[0], MAIN_BONUS[1], 0.0] if t == MAIN_TAB else [SIDE_BONUS[0], SIDE_BONUS[1], 0.0]
                      for t in range(N_TABS)])
    lo, hi = np.full(N_TABS, -20.0), np.full(N_TABS, 20.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        ctr = (src / (1.0 + np.exp(-(mid[:, None] + bonus)))).sum(1)
        lo, hi = np.where(ctr < TAB_CTR, mid, lo), np.where(ctr < TAB_CTR, hi, mid)
    return (lo + hi) / 2


def _sample_in_topics(w: _World, rng: np.random.Generator, topic: np.ndarray) -> np.ndarray:
    a, b = w.within_cum[w.topic_lo[topic]], w.within_cum[w.topic_hi[topic]]
    pos = np.searchsorted(w.within_cum, a + rng.random(len(topic)) * (b - a), side="right") - 1
    return w.item_at[np.clip(pos, w.topic_lo[topic], w.topic_hi[topic] - 1)]


def _sample_global(w: _World, rng: np.random.Generator, size: int) -> np.ndarray:
    pos = np.searchsorted(w.global_cum, rng.random(size) * w.global_cum[-1], side="right") - 1
    return w.item_at[np.clip(pos, 0, len(w.item_at) - 1)]


def _pick(rng: np.random.Generator, choices: np.ndarray, cum: np.ndarray, count: np.ndarray) -> np.ndarray:
    idx = (cum <= rng.random(len(cum))[:, None]).sum(1)
    return choices[np.arange(len(choices)), np.minimum(idx, count - 1)]


def _day_events(p: SyntheticPreset, w: _World, rng: np.random.Generator, users: np.ndarray, n: np.ndarray,
                main_p: float, day_start: int, last_day: bool, period_end: int) -> dict[str, np.ndarray]:
    """Every impression of one day's active (user, day) cells: users[c] has n[c] impressions."""
    C = len(users)
    # Main-feed impressions (>= 1 per cell) and visits.
    m = 1 + rng.binomial(n - 1, main_p)
    s = n - m
    V = np.minimum(N_SLOTS, 1 + rng.binomial(m - 1, 1.0 / p.visit_size))
    phase = rng.random(C) * (15.0 if last_day else SLOT_MIN)
    slot_start = phase[:, None] + SLOT_MIN * np.arange(N_SLOTS)[None, :]  # minutes after midnight
    hour = (slot_start // 60).astype(np.int64) % 24
    chosen = _gumbel_topk_mask(rng, np.log(HOUR_PROFILE[hour]), V)
    vc, vk = np.nonzero(chosen)  # visits, chronological within a cell
    n_vis = len(vc)
    v_start = day_start + (slot_start[vc, vk] + rng.random(n_vis) * START_JITTER_MIN) * MIN_MS
    cell_first_visit = np.concatenate([[0], np.cumsum(V)[:-1]])

    # Spread each cell's extra main impressions over its visits.
    extra = m - V
    ec = np.repeat(np.arange(C), extra)
    ev = cell_first_visit[ec] + (rng.random(len(ec)) * V[ec]).astype(np.int64)
    v_count = 1 + np.bincount(ev, minlength=n_vis)
    mv = np.repeat(np.arange(n_vis), v_count)  # visit of each main impression
    v_first = np.concatenate([[0], np.cumsum(v_count)[:-1]])
    gap = np.exp(rng.normal(np.log(20_000.0), 0.9, len(mv)))  # ms between consecutive impressions
    gap[v_first] = 0.0
    v_dur = np.bincount(mv, weights=gap, minlength=n_vis)
    scale = np.minimum(1.0, MAX_VISIT_MIN * MIN_MS / np.maximum(v_dur, 1.0))
    cum = np.cumsum(gap)
    offset = (cum - cum[v_first][mv]) * scale[mv]
    main_t = v_start[mv] + offset
    v_end = v_start + v_dur * scale

    # Other scenarios: after one of the cell's visits, by a truncated exponential delay.
    sc = np.repeat(np.arange(C), s)
    sv = cell_first_visit[sc] + (rng.random(len(sc)) * V[sc]).astype(np.int64)
    mean = SIDE_DELAY_MEAN_MIN * MIN_MS
    cap = np.minimum(SIDE_DELAY_MAX_MIN * MIN_MS, period_end - 1 - v_end[sv])
    delay = -mean * np.log1p(-rng.random(len(sc)) * (1.0 - np.exp(-cap / mean)))
    side_t = v_end[sv] + np.minimum(delay, cap)
    side_tabs = np.array(list(SIDE_TAB_SHARE), dtype=np.int64)
    side_tab = side_tabs[rng.choice(len(side_tabs), size=len(sc), p=_norm(list(SIDE_TAB_SHARE.values())))]

    user = np.concatenate([users[vc[mv]], users[sc]])
    t_ms = np.floor(np.concatenate([main_t, side_t])).astype(np.int64)
    tab = np.concatenate([np.full(len(mv), MAIN_TAB, dtype=np.int64), side_tab])
    N = len(user)
    is_main = tab == MAIN_TAB

    # Items: feed topics / hidden topics / global popularity.
    u = rng.random(N)
    main_c, side_c = np.cumsum(MAIN_SOURCE), np.cumsum(SIDE_SOURCE)
    source = np.where(is_main, (u >= main_c[0]).astype(np.int64) + (u >= main_c[1]),
                      (u >= side_c[0]).astype(np.int64) + (u >= side_c[1]))
    item = np.empty(N, dtype=np.int64)
    for k, (choices, cum, count) in enumerate(((w.feed_topics, w.feed_cum, w.feed_count),
                                               (w.hidden_topics, w.hidden_cum, w.hidden_count))):
        sel = np.flatnonzero(source == k)
        topic = _pick(rng, choices[user[sel]], cum[user[sel]], count[user[sel]])
        item[sel] = _sample_in_topics(w, rng, topic)
    sel = np.flatnonzero(source == 2)
    item[sel] = _sample_global(w, rng, len(sel))

    # Labels.
    topic = w.latent.item_topic[item]
    in_feed = w.latent.user_feed[user, topic]
    in_hidden = w.latent.user_hidden[user, topic]
    b_feed = np.where(is_main, MAIN_BONUS[0], SIDE_BONUS[0])
    b_hidden = np.where(is_main, MAIN_BONUS[1], SIDE_BONUS[1])
    logit = _TAB_INTERCEPT[tab] + b_feed * in_feed + b_hidden * in_hidden + w.item_quality[item]
    click = rng.random(N) < 1.0 / (1.0 + np.exp(-logit))
    match = in_feed | in_hidden

    def draw(p_click, p_other):
        return (rng.random(N) < np.where(click, p_click, p_other)).astype(np.int64)

    long_view = draw(0.70, 0.002)
    like = draw(np.where(match, 0.035, 0.02), 0.005)
    follow = draw(0.0028, 0.0004)
    comment = draw(0.0056, 0.0001)
    forward = draw(0.0015, 0.00018)
    hate = draw(0.0009, np.where(match, 0.0004, 0.0012))
    profile_enter = draw(0.04, 0.0022)
    profile_stay = np.where((profile_enter == 1) & (rng.random(N) < 0.005),
                            np.round(rng.lognormal(np.log(3_000.0), 1.0, N)), 0).astype(np.int64)
    comment_stay = np.where((draw(0.09, 0.003) == 1) | (comment == 1),
                            np.maximum(8, np.round(rng.lognormal(np.log(6_200.0), 1.0, N))), 0).astype(np.int64)
    duration = w.item_duration_ms[item]
    base_dur = np.where(duration > 0, duration, np.minimum(rng.lognormal(np.log(75_000.0), 0.9, N), 1_200_000.0))
    ratio = np.where(long_view == 1, np.clip(rng.lognormal(np.log(0.9), 0.45, N), 0.05, 2.5),
                     np.clip(rng.lognormal(np.log(0.035), 1.3, N), 0.0, 0.6))
    ratio = np.where(~click & (long_view == 0) & (rng.random(N) < 0.13), 0.0, ratio)
    play = np.round(ratio * base_dur).astype(np.int64)

    return {
        "user_id": user, "video_id": item, "time_ms": t_ms, "is_click": click.astype(np.int64),
        "is_like": like, "is_follow": follow, "is_comment": comment, "is_forward": forward, "is_hate": hate,
        "long_view": long_view, "play_time_ms": play, "duration_ms": duration, "profile_stay_time": profile_stay,
        "comment_stay_time": comment_stay, "is_profile_enter": profile_enter, "is_rand": np.zeros(N, np.int64),
        "tab": tab,
    }


_TAB_INTERCEPT = _tab_intercepts()


def _take(ev: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in ev.items()}


def _write_log(p: SyntheticPreset, w: _World, rng: np.random.Generator, path: Path, progress: bool) -> None:
    U, D = p.n_users, p.n_days
    first = p.first_day
    day0 = (first - dt.date(1970, 1, 1)).days  # Beijing day number of the first day
    period_start = day0 * DAY_MS - TZ_MS
    period_end = period_start + D * DAY_MS
    date_of_day = np.array([int((first + dt.timedelta(days=k)).strftime("%Y%m%d")) for k in range(-1, D + 1)])

    n_dup = int(round(p.duplicate_share * p.n_impressions))
    n0 = p.n_impressions - n_dup
    weekday = np.array([(first + dt.timedelta(days=k)).weekday() for k in range(D)])
    day_factor = (1.0 + 0.2 * (weekday >= 5)) * rng.lognormal(0.0, 0.05, D)
    active = rng.random((U, D)) < w.user_day_share[:, None]
    none = ~active.any(1)
    active[np.flatnonzero(none), rng.integers(0, D, int(none.sum()))] = True
    cell_w = (w.user_weight[:, None] * day_factor[None, :] * active).ravel()
    if cell_w.sum() <= 0:
        raise ValueError("synthetic preset has no active user")
    counts = rng.multinomial(n0, cell_w / cell_w.sum()).reshape(U, D)
    n_cells = int((counts > 0).sum())
    # One global probability that a further impression of a cell is main-feed, so that the tab-1
    # share is main_share overall (every active cell already holds one main-feed impression).
    # Duplicates are almost all outside the main feed, hence the target counts every row.
    main_p = float(np.clip((p.main_share * p.n_impressions - n_cells) / max(n0 - n_cells, 1), 0.0, 1.0))
    per_day = counts.sum(0)
    dup_per_day = rng.multinomial(n_dup, per_day / max(per_day.sum(), 1))

    carry: dict[str, np.ndarray] | None = None
    seq_base = 0
    header = True
    days = range(D)
    if progress:
        from tqdm.auto import tqdm

        days = tqdm(days, desc=f"synthetic log {path.name}", unit="day")
    with open(path, "w", newline="") as fh:
        for d in days:
            col = counts[:, d]
            users = np.flatnonzero(col > 0)
            day_start = period_start + d * DAY_MS
            ev = _day_events(p, w, rng, users, col[users], main_p, day_start, d == D - 1, period_end)
            n_ev = len(ev["user_id"])
            ev["seq"] = seq_base + np.arange(n_ev, dtype=np.int64)
            seq_base += n_ev
            if dup_per_day[d]:
                keys = np.log(DUP_TAB_WEIGHT[ev["tab"]]) + rng.gumbel(size=n_ev)
                dup = np.argpartition(-keys, dup_per_day[d] - 1)[: dup_per_day[d]]
                ev = _take(ev, np.concatenate([np.arange(n_ev), np.sort(dup)]))
            if carry is not None:
                ev = {k: np.concatenate([carry[k], ev[k]]) for k in ev}
            order = np.lexsort((ev["seq"], ev["time_ms"]))
            ev = _take(ev, order)
            cut = len(order) if d == D - 1 else int(np.searchsorted(ev["time_ms"], day_start + DAY_MS, side="left"))
            carry = _take(ev, np.arange(cut, len(order)))
            out = _take(ev, np.arange(cut))
            _write_log_chunk(out, rng, fh, header, date_of_day, day0, D)
            header = False
        if header:  # no day at all: still write the header
            fh.write(",".join(LOG_COLUMNS) + "\n")


def _write_log_chunk(ev: dict[str, np.ndarray], rng: np.random.Generator, fh, header: bool,
                     date_of_day: np.ndarray, day0: int, n_days: int) -> None:
    t = ev["time_ms"]
    # The logged hour runs a few minutes behind time_ms (drawn per distinct event: duplicates agree).
    first = np.r_[True, (ev["seq"][1:] != ev["seq"][:-1])]
    lag = np.maximum(0.0, rng.normal(LOG_DELAY_MIN[0], LOG_DELAY_MIN[1], int(first.sum()))) * MIN_MS
    lag = lag[np.cumsum(first) - 1]
    hours = (t + TZ_MS) // 3_600_000
    logged = (t + lag.astype(np.int64) + TZ_MS) // 3_600_000
    logged = np.where(logged // 24 - day0 >= n_days, hours, logged)  # never past the last day
    frame = pd.DataFrame({c: ev[c] for c in LOG_COLUMNS if c in ev})
    frame.insert(2, "date", date_of_day[logged // 24 - day0 + 1])
    frame.insert(3, "hourmin", (logged % 24) * 100)
    frame = frame[list(LOG_COLUMNS)]
    frame.to_csv(fh, header=header, index=False, lineterminator="\n")


# ---------------------------------------------------------------------------------------------
# Public entry points


def _install(tmp: Path, out_dir: Path, *, replace_existing: bool) -> bool:
    """Rename the finished temporary directory to out_dir; False if another writer got there first.

    With replace_existing, an existing out_dir is first renamed aside (and put back if the final
    rename fails), then deleted.
    """
    if replace_existing and out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not out_dir.exists():
                os.rename(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return True
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if out_dir.is_dir():
            return False
        raise
    return True


_OWN_FILE = re.compile(
    r"^(log_standard_\d+_\d+_to_\d+_\d+_synth\.csv|user_features_synth\.csv|video_features_basic_synth\.csv)$"
)


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory that holds anything but synthetic dataset files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a directory")
    foreign = sorted(f.name for f in out_dir.iterdir() if not _OWN_FILE.match(f.name))
    if foreign:
        raise FileExistsError(f"{out_dir}: holds files the generator did not write ({', '.join(foreign[:3])}); "
                              "choose an empty or new directory")


def _generate(p: SyntheticPreset, seed: int, out_dir: Path, progress: bool, replace_existing: bool) -> Path:
    out_dir = Path(out_dir)
    if replace_existing:
        _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        rng = np.random.default_rng(seed)
        world = _build_world(p, rng)
        world.videos[list(VIDEO_COLUMNS)].to_csv(tmp / VIDEO_FILE, index=False, lineterminator="\n")
        world.users[list(USER_COLUMNS)].to_csv(tmp / USER_FILE, index=False, lineterminator="\n")
        world.videos = world.users = None  # free the feature tables before the log
        _write_log(p, world, rng, tmp / p.log_file, progress)
        del world
        _install(tmp, out_dir, replace_existing=replace_existing)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def generate(preset: str | SyntheticPreset, seed: int, out_dir: Path, progress: bool = False) -> Path:
    """Write the three KuaiRand-schema files of `preset` (a name or a SyntheticPreset) into `out_dir`.

    The files are built in a temporary sibling directory and renamed into place, so `out_dir` either
    holds a complete dataset or is left as it was. An existing `out_dir` is replaced when it holds
    only synthetic dataset files (FileExistsError otherwise). Returns out_dir.
    """
    return _generate(get_preset(preset), int(seed), Path(out_dir), progress, replace_existing=True)


def cache_path(preset: str, seed: int, cache_dir: Path) -> Path:
    """Where ensure_generated keeps (preset, seed): `<cache_dir>/<preset>-seed<seed>-v<GENERATOR_VERSION>`."""
    get_preset(preset)
    return Path(cache_dir) / f"{preset}-seed{int(seed)}-v{GENERATOR_VERSION}"


def is_complete(path: Path, preset: str | SyntheticPreset) -> bool:
    return all((Path(path) / name).is_file() for name in get_preset(preset).file_names)


def ensure_generated(preset: str, seed: int, cache_dir: Path, progress: bool = True) -> Path:
    """The cached dataset of (preset, seed), generated first if it is missing. Returns its directory."""
    p = get_preset(preset)
    if not isinstance(preset, str):
        raise UnknownPresetError(f"ensure_generated needs a preset name; valid presets: {', '.join(PRESETS)}")
    path = cache_path(preset, seed, cache_dir)
    if is_complete(path, p):
        return path
    replace_existing = path.exists()  # an incomplete directory someone left there
    _generate(p, int(seed), path, progress, replace_existing=replace_existing)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.data.synthetic PRESET [--seed S] [--out DIR]`: generate and time one dataset."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", choices=list(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: .cache/synthetic/<name>)")
    args = ap.parse_args(argv)
    out = args.out or cache_path(args.preset, args.seed, Path(".cache") / "synthetic")
    t0 = time.perf_counter()
    generate(args.preset, args.seed, out, progress=True)
    print(f"{args.preset} seed {args.seed}: {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
